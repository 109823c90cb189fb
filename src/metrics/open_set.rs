//! Metrics stage, "none of these": a known-ness score per image of one
//! approach (higher = more likely one of the trained classes) on known rows
//! (test images of the ensemble's classes) and unknown rows (held-out
//! classes, `compare --unknown`) -> AUROC known-vs-unknown, FPR at 95 % TPR,
//! the area under the risk–coverage curve on the known rows, and a paired
//! bootstrap of the AUROC difference between two approaches.
//!
//! * AUROC: known rows are the positives (`sklearn.metrics.roc_auc_score`
//!   with ties as half, see [`super::binary`]).
//! * FPR at 95 % TPR: the threshold is the largest score t with at least
//!   95 % of known rows at ≥ t; FPR = fraction of unknown rows at ≥ t (the
//!   first point of `sklearn.metrics.roc_curve` with TPR ≥ 0.95).
//! * AURC (Geifman & El-Yaniv): known rows by decreasing score; at coverage
//!   i/n the risk is the error rate of the first i; AURC = mean over i = 1..n.
//!   Inside a tie group the errors are spread evenly (the expectation over
//!   orders of the group), so the figure does not depend on row order.
//! * Bootstrap: known and unknown rows are resampled separately (the class
//!   balance of the test is kept), the same draws for both approaches.

use rand::distr::{Distribution, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::binary::auroc;
use super::significance::interval;
use super::{check_same_len, Interval, MetricError, Result};

/// TPR at which [`OpenSetResult::fpr_at_95_tpr`] is read.
pub const TPR_TARGET: f64 = 0.95;
/// Bins of the known / unknown score histograms.
pub const HIST_BINS: usize = 20;
/// Points of the risk–coverage curve kept for plots.
pub const CURVE_POINTS: usize = 50;

/// One approach's known-ness scores.
#[derive(Debug, Clone)]
pub struct OpenSetInput {
    /// Approach id, e.g. `specialists-calibrated`.
    pub approach: String,
    /// Which score: `max-probability`, `max-sigmoid`, `energy`.
    pub score: String,
    pub known: Vec<f32>,
    /// Whether the approach's prediction of each known row is right.
    pub known_correct: Vec<bool>,
    pub unknown: Vec<f32>,
}

/// Open-set figures of one approach and score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenSetResult {
    pub approach: String,
    pub score: String,
    pub auroc: f64,
    pub fpr_at_95_tpr: f64,
    pub aurc: f64,
    /// (coverage, risk) at up to [`CURVE_POINTS`] coverages.
    pub risk_coverage: Vec<(f64, f64)>,
    /// Histogram edges (`HIST_BINS + 1`) and the counts of each side.
    pub hist_edges: Vec<f64>,
    pub known_hist: Vec<usize>,
    pub unknown_hist: Vec<usize>,
}

fn check(x: &OpenSetInput) -> Result<()> {
    if x.known.is_empty() {
        return Err(MetricError::Empty { what: "known rows" });
    }
    if x.unknown.is_empty() {
        return Err(MetricError::Empty {
            what: "unknown rows",
        });
    }
    check_same_len("known_correct", x.known_correct.len(), x.known.len())?;
    for (what, v) in [("known scores", &x.known), ("unknown scores", &x.unknown)] {
        if let Some(index) = v.iter().position(|s| !s.is_finite()) {
            return Err(MetricError::NonFinite {
                what,
                index,
                value: v[index],
            });
        }
    }
    Ok(())
}

fn labelled(known: &[f32], unknown: &[f32]) -> (Vec<bool>, Vec<f32>) {
    let positive = (0..known.len() + unknown.len())
        .map(|i| i < known.len())
        .collect();
    (positive, known.iter().chain(unknown).copied().collect())
}

/// FPR at the largest threshold that keeps ≥ [`TPR_TARGET`] of known rows.
/// (The threshold is [`threshold_at_coverage`] at coverage `tpr`; NaN
/// without known rows or for a `tpr` outside 0..=1.)
pub fn fpr_at_tpr(known: &[f32], unknown: &[f32], tpr: f64) -> f64 {
    match threshold_at_coverage(known, tpr) {
        Some(t) => unknown.iter().filter(|&&u| u >= t).count() as f64 / unknown.len() as f64,
        None => f64::NAN,
    }
}

/// Cumulative errors after each of the known rows sorted by decreasing
/// score, errors spread evenly inside tie groups.
fn cumulative_errors(score: &[f32], correct: &[bool]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let mut out = Vec::with_capacity(score.len());
    let (mut i, mut errors) = (0, 0.0f64);
    while i < order.len() {
        let s = score[order[i]];
        let end = (i..order.len())
            .find(|&j| score[order[j]] != s)
            .unwrap_or(order.len());
        let group_errors = (i..end).filter(|&j| !correct[order[j]]).count() as f64;
        let width = (end - i) as f64;
        for j in i..end {
            out.push(errors + group_errors * (j + 1 - i) as f64 / width);
        }
        errors += group_errors;
        i = end;
    }
    out
}

/// Area under the risk–coverage curve of the known rows.
pub fn aurc(score: &[f32], correct: &[bool]) -> f64 {
    let cum = cumulative_errors(score, correct);
    cum.iter()
        .enumerate()
        .map(|(i, e)| e / (i + 1) as f64)
        .sum::<f64>()
        / cum.len() as f64
}

fn risk_coverage(score: &[f32], correct: &[bool]) -> Vec<(f64, f64)> {
    let cum = cumulative_errors(score, correct);
    let n = cum.len();
    let step = n.div_ceil(CURVE_POINTS).max(1);
    let mut v: Vec<(f64, f64)> = (step - 1..n)
        .step_by(step)
        .map(|i| ((i + 1) as f64 / n as f64, cum[i] / (i + 1) as f64))
        .collect();
    if v.last().map(|p| p.0) != Some(1.0) {
        v.push((1.0, cum[n - 1] / n as f64));
    }
    v
}

fn histogram(known: &[f32], unknown: &[f32]) -> (Vec<f64>, Vec<usize>, Vec<usize>) {
    let all = known.iter().chain(unknown).map(|&v| f64::from(v));
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let width = if hi > lo {
        (hi - lo) / HIST_BINS as f64
    } else {
        1.0
    };
    let edges = (0..=HIST_BINS).map(|b| lo + width * b as f64).collect();
    let count = |v: &[f32]| {
        let mut h = vec![0usize; HIST_BINS];
        for &x in v {
            let b = ((f64::from(x) - lo) / width) as usize;
            h[b.min(HIST_BINS - 1)] += 1;
        }
        h
    };
    (edges, count(known), count(unknown))
}

/// Every open-set figure of one approach's scores.
pub fn open_set(x: &OpenSetInput) -> Result<OpenSetResult> {
    check(x)?;
    let (positive, scores) = labelled(&x.known, &x.unknown);
    let (hist_edges, known_hist, unknown_hist) = histogram(&x.known, &x.unknown);
    Ok(OpenSetResult {
        approach: x.approach.clone(),
        score: x.score.clone(),
        auroc: auroc(&positive, &scores).unwrap_or(f64::NAN),
        fpr_at_95_tpr: fpr_at_tpr(&x.known, &x.unknown, TPR_TARGET),
        aurc: aurc(&x.known, &x.known_correct),
        risk_coverage: risk_coverage(&x.known, &x.known_correct),
        hist_edges,
        known_hist,
        unknown_hist,
    })
}

/// Paired bootstrap of AUROC(a) − AUROC(b) over the same known and unknown rows.
pub fn auroc_difference(
    a: &OpenSetInput,
    b: &OpenSetInput,
    resamples: usize,
    seed: u64,
) -> Result<Interval> {
    check(a)?;
    check(b)?;
    check_same_len("known rows of b", b.known.len(), a.known.len())?;
    check_same_len("unknown rows of b", b.unknown.len(), a.unknown.len())?;
    if resamples == 0 {
        return Err(MetricError::ZeroParameter {
            what: "the number of bootstrap resamples",
        });
    }
    let diff = |ka: &[f32], ua: &[f32], kb: &[f32], ub: &[f32]| -> f64 {
        let (pa, sa) = labelled(ka, ua);
        let (pb, sb) = labelled(kb, ub);
        auroc(&pa, &sa).unwrap_or(f64::NAN) - auroc(&pb, &sb).unwrap_or(f64::NAN)
    };
    let observed = diff(&a.known, &a.unknown, &b.known, &b.unknown);
    let (nk, nu) = (a.known.len(), a.unknown.len());
    let (uk, uu) = (
        Uniform::new(0, nk).map_err(|_| MetricError::Empty { what: "known rows" })?,
        Uniform::new(0, nu).map_err(|_| MetricError::Empty {
            what: "unknown rows",
        })?,
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut samples = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let ik: Vec<usize> = (0..nk).map(|_| uk.sample(&mut rng)).collect();
        let iu: Vec<usize> = (0..nu).map(|_| uu.sample(&mut rng)).collect();
        let pick = |v: &[f32], idx: &[usize]| -> Vec<f32> { idx.iter().map(|&i| v[i]).collect() };
        samples.push(diff(
            &pick(&a.known, &ik),
            &pick(&a.unknown, &iu),
            &pick(&b.known, &ik),
            &pick(&b.unknown, &iu),
        ));
    }
    Ok(interval(observed, samples))
}

/// The score threshold that keeps `coverage` of `known` rows (e.g. of the
/// calibration split): rows at ≥ the threshold are kept.
pub fn threshold_at_coverage(known: &[f32], coverage: f64) -> Option<f32> {
    if known.is_empty() || !(0.0..=1.0).contains(&coverage) {
        return None;
    }
    let mut k = known.to_vec();
    k.sort_by(|a, b| b.total_cmp(a));
    let need = ((coverage * k.len() as f64) - 1e-9).ceil().max(1.0) as usize;
    Some(k[need.min(k.len()) - 1])
}

/// AUROC(a) − AUROC(b), `a` and `b` named `approach/score`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AurocPair {
    pub a: String,
    pub b: String,
    pub auroc_difference: Interval,
}

/// A known-ness threshold chosen on held-out known rows: keeps `coverage`
/// of them (`score --abstain` takes it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    pub approach: String,
    pub score: String,
    pub split: String,
    pub coverage: f64,
    pub value: f32,
}

/// Everything `compare` reports on "none of these".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenSetReport {
    pub known_rows: usize,
    pub unknown_rows: usize,
    /// Where the unknown rows come from (held-out classes, `--unknown` inputs).
    pub unknown_sources: Vec<String>,
    pub results: Vec<OpenSetResult>,
    pub pairs: Vec<AurocPair>,
    pub thresholds: Vec<Threshold>,
    pub resamples: usize,
    pub seed: u64,
}
