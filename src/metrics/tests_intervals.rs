//! Tests of [`super::intervals`]: the arithmetic against the numpy oracle on
//! the oracle's own draws (`tests/fixtures/metrics/intervals.json`, from
//! `tests/reference/make_interval_fixtures.py`), to 1e-9; the seeded draws
//! against the ECE interval of `calibration_uncertainty` (same draws);
//! degenerate data, where every interval collapses to its point; and
//! coverage of a known true NLL / Brier over 200 seeds.

use super::intervals::{intervals, intervals_on_draws, FigureIntervals, Scored};
use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

#[derive(Deserialize)]
struct Side {
    observed: f64,
    low: f64,
    high: f64,
}

#[derive(Deserialize)]
struct Figures {
    ece: Side,
    mce: Side,
    nll: Side,
    brier: Side,
    f1: Vec<Side>,
}

#[derive(Deserialize)]
struct InputApproach {
    name: String,
    probs: Vec<f32>,
    preds: Vec<u32>,
}

#[derive(Deserialize)]
struct Fixture {
    bins: usize,
    k: usize,
    labels: Vec<u32>,
    approaches: Vec<InputApproach>,
    draws: Vec<Vec<usize>>,
    figures: Vec<Figures>,
    pairs: Vec<Figures>,
}

fn same(what: &str, got: &Interval, want: &Side) {
    for (part, g, w) in [
        ("observed", got.observed, want.observed),
        ("low", got.low, want.low),
        ("high", got.high, want.high),
    ] {
        assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{what} {part}: {g} vs numpy {w}"
        );
    }
}

fn same_figures(what: &str, got: &FigureIntervals, want: &Figures) {
    same(&format!("{what} ECE"), &got.ece, &want.ece);
    same(&format!("{what} MCE"), &got.mce, &want.mce);
    same(&format!("{what} NLL"), &got.nll, &want.nll);
    same(&format!("{what} Brier"), &got.brier, &want.brier);
    assert_eq!(got.f1.len(), want.f1.len());
    for (c, (g, w)) in got.f1.iter().zip(&want.f1).enumerate() {
        same(&format!("{what} F1 of class {c}"), g, w);
    }
}

#[test]
fn intervals_match_numpy_on_the_same_draws() {
    let text = include_str!("../../tests/fixtures/metrics/intervals.json");
    let f: Fixture = serde_json::from_str(text).expect("fixture parses");
    let scored: Vec<Scored> = f
        .approaches
        .iter()
        .map(|a| Scored {
            name: &a.name,
            probs: &a.probs,
            preds: &a.preds,
        })
        .collect();
    let got = intervals_on_draws(&f.labels, &scored, f.k, f.bins, &f.draws).unwrap();
    assert_eq!(got.resamples, f.draws.len());
    assert_eq!(got.approaches.len(), 3);
    for (g, w) in got.approaches.iter().zip(&f.figures) {
        same_figures(&g.name, &g.figures, w);
    }
    assert_eq!(got.pairs.len(), 3);
    for (g, w) in got.pairs.iter().zip(&f.pairs) {
        same_figures(&format!("{} - {}", g.a, g.b), &g.difference, w);
    }
    // The observed MCE / ECE are the reliability module's figures.
    for (a, g) in f.approaches.iter().zip(&got.approaches) {
        let c = calibration_error(&f.labels, &a.probs, f.k, f.bins).unwrap();
        assert!((g.figures.mce.observed - c.mce).abs() < 1e-9);
        assert!((g.figures.ece.observed - c.ece).abs() < 1e-9);
    }
    // A draw pointing past the rows is an error naming it.
    let bad = vec![vec![f.labels.len(); f.labels.len()]];
    let e = intervals_on_draws(&f.labels, &scored, f.k, f.bins, &bad).unwrap_err();
    assert!(e.to_string().contains("row index"), "{e}");
}

fn random_case(seed: u64, n: usize, k: usize) -> (Vec<u32>, Vec<Vec<f32>>, Vec<Vec<u32>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..k as u32)).collect();
    let mut probs = Vec::new();
    let mut preds = Vec::new();
    for a in 0..2 {
        let mut p = Vec::with_capacity(n * k);
        let mut pr = Vec::with_capacity(n);
        for &y in &labels {
            let raw: Vec<f32> = (0..k)
                .map(|j| rng.random::<f32>() + if j as u32 == y { 0.5 + a as f32 } else { 0.0 })
                .collect();
            let s: f32 = raw.iter().sum();
            let row: Vec<f32> = raw.iter().map(|v| v / s).collect();
            pr.push(super::argmax(&row) as u32);
            p.extend(row);
        }
        probs.push(p);
        preds.push(pr);
    }
    (labels, probs, preds)
}

#[test]
fn seeded_draws_are_the_calibration_bootstrap_draws() {
    let (k, n) = (5, 150);
    let (labels, probs, preds) = random_case(3, n, k);
    let scored: Vec<Scored> = (0..2)
        .map(|a| Scored {
            name: if a == 0 { "a" } else { "b" },
            probs: &probs[a],
            preds: &preds[a],
        })
        .collect();
    let got = intervals(&labels, &scored, k, ECE_BINS, 300, 11).unwrap();
    assert_eq!((got.resamples, got.seed), (300, 11));
    let cal = calibration_uncertainty(&labels, &probs[0], k, ECE_BINS, 300, 11).unwrap();
    assert_eq!(got.approaches[0].figures.ece, cal.ece);
    let diff =
        paired_calibration_bootstrap(&labels, &probs[0], &probs[1], k, ECE_BINS, 300, 11).unwrap();
    let d = &got.pairs[0].difference;
    assert!((d.nll.low - diff.nll.low).abs() < 1e-12 && (d.nll.high - diff.nll.high).abs() < 1e-12);
    assert!((d.ece.low - diff.ece.low).abs() < 1e-9);
    // Another seed moves the interval, not the point.
    let other = intervals(&labels, &scored, k, ECE_BINS, 300, 12).unwrap();
    let (x, y) = (
        &got.approaches[1].figures.mce,
        &other.approaches[1].figures.mce,
    );
    assert_eq!(x.observed, y.observed);
    assert_ne!((x.low, x.high), (y.low, y.high));
    for f in &got.approaches[0].figures.f1 {
        assert!(f.low <= f.observed.max(f.low) && f.low <= f.high, "{f:?}");
    }
}

#[test]
fn identical_rows_collapse_every_interval_to_its_point() {
    // Every row the same image: every resample is the full sample.
    let (k, n) = (3, 40);
    let labels = vec![1u32; n];
    let probs: Vec<f32> = (0..n).flat_map(|_| [0.2f32, 0.7, 0.1]).collect();
    let preds = vec![1u32; n];
    let wrong = vec![0u32; n];
    let scored = [
        Scored {
            name: "right",
            probs: &probs,
            preds: &preds,
        },
        Scored {
            name: "wrong",
            probs: &probs,
            preds: &wrong,
        },
    ];
    let got = intervals(&labels, &scored, k, ECE_BINS, 50, 1).unwrap();
    let point = |i: &Interval, v: f64| {
        assert!((i.observed - v).abs() < 1e-9, "{i:?} vs {v}");
        assert!((i.low - i.observed).abs() < 1e-9 && (i.high - i.observed).abs() < 1e-9);
    };
    let f = &got.approaches[0].figures;
    let gap = 100.0 * (1.0 - f64::from(0.7f32));
    point(&f.ece, gap);
    point(&f.mce, gap);
    point(&f.nll, -f64::from(0.7f32).ln());
    point(&f.f1[1], 1.0);
    point(&f.f1[0], 0.0);
    let d = &got.pairs[0].difference;
    point(&d.f1[1], 1.0);
    point(&d.ece, 0.0);
}

#[test]
fn intervals_cover_the_true_nll_and_brier_in_about_95_percent_of_seeds() {
    // Every row has p = (0.7, 0.3); its label is 0 with probability 0.7. The
    // true mean NLL is the entropy -0.7 ln 0.7 - 0.3 ln 0.3, the true Brier
    // 2 * 0.7 * 0.3 * ... = E[(p0 - y0)^2 + (p1 - y1)^2] = 2 * 0.21 = 0.42.
    let (p, n, seeds) = (0.7f32, 200, 200);
    let q = f64::from(p);
    let true_nll = -(q * q.ln() + (1.0 - q) * (1.0 - f64::from(p)).ln());
    let pr = f64::from(p);
    let true_brier = pr * 2.0 * (1.0 - pr).powi(2) + (1.0 - pr) * 2.0 * pr.powi(2);
    let probs: Vec<f32> = (0..n).flat_map(|_| [p, 1.0 - p]).collect();
    let preds = vec![0u32; n];
    let (mut nll_hits, mut brier_hits) = (0, 0);
    for seed in 0..seeds {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        let labels: Vec<u32> = (0..n)
            .map(|_| u32::from(rng.random::<f32>() >= p))
            .collect();
        let scored = [Scored {
            name: "x",
            probs: &probs,
            preds: &preds,
        }];
        let got = intervals(&labels, &scored, 2, ECE_BINS, 400, seed).unwrap();
        let f = &got.approaches[0].figures;
        nll_hits += usize::from(f.nll.low <= true_nll && true_nll <= f.nll.high);
        brier_hits += usize::from(f.brier.low <= true_brier && true_brier <= f.brier.high);
    }
    let rate = |h: usize| h as f64 / seeds as f64;
    // 95 % nominal; the binomial sd over 200 seeds is 1.5 points.
    for (what, r) in [("NLL", rate(nll_hits)), ("Brier", rate(brier_hits))] {
        assert!((0.90..=0.99).contains(&r), "{what} coverage {r}");
    }
}
