//! Tests of the joint calibration (vector scaling, Dirichlet, the combiner
//! choice) against `tests/fixtures/calibration/joint.json`, written by
//! `tests/reference/make_joint_calibration_fixtures.py` (dirichletcal 0.5.3
//! and a scipy fit of the same objectives), plus properties with known answers.

use serde::Deserialize;

use super::joint::{mean_nll, stratified_folds};
use super::*;

#[derive(Deserialize)]
struct DirCase {
    lambda: f64,
    dirichletcal_probs: Vec<f64>,
    dirichletcal_probe_probs: Vec<f64>,
    scipy_objective: f64,
    scipy_probs: Vec<f64>,
    scipy_probe_probs: Vec<f64>,
}

#[derive(Deserialize)]
struct Dir {
    k: usize,
    n: usize,
    p: Vec<f64>,
    labels: Vec<u32>,
    probe: Vec<f64>,
    cases: Vec<DirCase>,
}

#[derive(Deserialize)]
struct VecCase {
    lambda: f64,
    objective: f64,
    probs: Vec<f64>,
    dirichletcal_probs: Option<Vec<f64>>,
}

#[derive(Deserialize)]
struct Vector {
    k: usize,
    n: usize,
    s: Vec<f64>,
    labels: Vec<u32>,
    cases: Vec<VecCase>,
}

#[derive(Deserialize)]
struct Fixture {
    dirichlet: Dir,
    vector: Vector,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/calibration/joint.json"
    );
    let text = std::fs::read_to_string(path).expect("joint.json (run the reference script)");
    serde_json::from_str(&text).expect("joint.json parses")
}

fn max_gap(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The mean NLL + penalty of a fitted map, recomputed here from its formula.
fn objective(m: &ScoreMap, x: &[f64], labels: &[u32], k: usize) -> f64 {
    let q = m.probs(x, labels.len());
    let nll = mean_nll(&q, labels, k);
    let pen = match m.kind {
        MapKind::Vector => {
            m.lambda / k as f64
                * (m.w.iter().map(|a| (a - 1.0).powi(2)).sum::<f64>()
                    + m.b.iter().map(|b| b * b).sum::<f64>())
        }
        MapKind::Full => {
            let off: f64 = (0..k * k)
                .filter(|i| i / k != i % k)
                .map(|i| m.w[i] * m.w[i])
                .sum();
            m.lambda / (k * (k - 1)) as f64 * off
                + m.lambda / k as f64 * m.b.iter().map(|b| b * b).sum::<f64>()
        }
    };
    nll + pen
}

#[test]
fn dirichlet_matches_dirichletcal_and_scipy() {
    let f = fixture().dirichlet;
    let x: Vec<f64> = f.p.iter().map(|p| p.ln()).collect();
    let xp: Vec<f64> = f.probe.iter().map(|p| p.ln()).collect();
    for c in &f.cases {
        let m = ScoreMap::fit(MapKind::Full, &x, &f.labels, f.n, f.k, c.lambda).unwrap();
        let obj = objective(&m, &x, &f.labels, f.k);
        assert!(
            obj <= c.scipy_objective + 1e-9,
            "lambda {}: objective {obj} vs scipy {}",
            c.lambda,
            c.scipy_objective
        );
        let q = m.probs(&x, f.n);
        let qp = m.probs(&xp, f.probe.len() / f.k);
        assert!(max_gap(&q, &c.scipy_probs) < 1e-5, "lambda {}", c.lambda);
        assert!(
            max_gap(&qp, &c.scipy_probe_probs) < 1e-5,
            "lambda {}",
            c.lambda
        );
        // dirichletcal stops earlier and clips its outputs at eps; 5e-4 is
        // its own distance from the scipy optimum, with margin.
        assert!(
            max_gap(&q, &c.dirichletcal_probs) < 5e-4,
            "lambda {}",
            c.lambda
        );
        assert!(
            max_gap(&qp, &c.dirichletcal_probe_probs) < 5e-4,
            "lambda {}",
            c.lambda
        );
    }
}

#[test]
fn vector_scaling_matches_scipy_and_dirichletcal() {
    let f = fixture().vector;
    for c in &f.cases {
        let m = ScoreMap::fit(MapKind::Vector, &f.s, &f.labels, f.n, f.k, c.lambda).unwrap();
        let obj = objective(&m, &f.s, &f.labels, f.k);
        assert!(
            obj <= c.objective + 1e-9,
            "lambda {}: {obj} vs {}",
            c.lambda,
            c.objective
        );
        let q = m.probs(&f.s, f.n);
        assert!(max_gap(&q, &c.probs) < 1e-5, "lambda {}", c.lambda);
        if let Some(d) = &c.dirichletcal_probs {
            assert!(max_gap(&q, d) < 5e-4, "dirichletcal, lambda {}", c.lambda);
        }
    }
}

#[test]
fn a_huge_penalty_keeps_the_identity() {
    let f = fixture().vector;
    let m = ScoreMap::fit(MapKind::Vector, &f.s, &f.labels, f.n, f.k, 1e9).unwrap();
    assert!(m.w.iter().all(|a| (a - 1.0).abs() < 1e-6), "{:?}", m.w);
    assert!(m.b.iter().all(|b| b.abs() < 1e-6), "{:?}", m.b);
    let d = fixture().dirichlet;
    let x: Vec<f64> = d.p.iter().map(|p| p.ln()).collect();
    let m = ScoreMap::fit(MapKind::Full, &x, &d.labels, d.n, d.k, 1e9).unwrap();
    let off = (0..d.k * d.k)
        .filter(|i| i / d.k != i % d.k)
        .map(|i| m.w[i].abs());
    assert!(off.fold(0.0, f64::max) < 1e-6);
}

#[test]
fn the_lambda_path_equals_fits_from_scratch() {
    let f = fixture().vector;
    let rows = score_map::Rows::new(&f.s, &f.labels, f.n, f.k).unwrap();
    let lambdas = [0.01, 10.0, 1.0];
    let path = ScoreMap::fit_path(&rows, MapKind::Vector, &lambdas);
    for (m, &l) in path.iter().zip(&lambdas) {
        let alone = ScoreMap::fit(MapKind::Vector, &f.s, &f.labels, f.n, f.k, l).unwrap();
        assert_eq!(m.lambda, l);
        assert!(max_gap(&m.probs(&f.s, f.n), &alone.probs(&f.s, f.n)) < 1e-6);
    }
}

#[test]
fn folds_are_stratified_and_balanced() {
    let labels: Vec<u32> = (0..103).map(|i| (i % 7) as u32).collect();
    let rows: Vec<u64> = (0..103).collect();
    let f = stratified_folds(&labels, &rows, 7, 5, 3);
    let mut sizes = [0usize; 5];
    f.iter().for_each(|&x| sizes[x] += 1);
    assert!(
        sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
        "{sizes:?}"
    );
    for c in 0..7u32 {
        let mut per = [0usize; 5];
        (0..103)
            .filter(|&i| labels[i] == c)
            .for_each(|i| per[f[i]] += 1);
        assert!(
            per.iter().max().unwrap() - per.iter().min().unwrap() <= 1,
            "{per:?}"
        );
    }
    assert_eq!(f, stratified_folds(&labels, &rows, 7, 5, 3));
    assert_ne!(f, stratified_folds(&labels, &rows, 7, 5, 4));
    // Pairs of rows sharing a group always share a fold.
    let pairs: Vec<u64> = (0..103).map(|i| i / 2).collect();
    let labels2: Vec<u32> = (0..103).map(|i| ((i / 2) % 7) as u32).collect();
    let g = stratified_folds(&labels2, &pairs, 7, 5, 3);
    for i in (0..102).step_by(2) {
        assert_eq!(g[i], g[i + 1], "rows {i} and {}", i + 1);
    }
    let mut sizes = [0usize; 5];
    g.iter().for_each(|&x| sizes[x] += 1);
    assert!(sizes.iter().all(|&s| s >= 18), "{sizes:?}");
}

/// Raw one-vs-rest logits that are over-confident by a factor of 10: the
/// joint maps must learn to shrink them, and beat the raw softmax.
fn overconfident(n: usize, k: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
    let mut z = vec![0f32; n * k];
    for (i, &y) in labels.iter().enumerate() {
        for j in 0..k {
            let signal = if j == y as usize { 1.0 } else { 0.0 };
            z[i * k + j] = 10.0 * (signal + rng.random_range(-1.0..1.0f32)) - 5.0;
        }
    }
    (z, labels)
}

#[test]
fn joint_combiners_beat_the_raw_softmax_on_overconfident_scores() {
    let (k, n) = (5, 400);
    let (z, y) = overconfident(n, k, 1);
    let (zt, yt) = overconfident(n, k, 2);
    let p = JointParams::default();
    let groups: Vec<u64> = (0..n as u64).collect();
    let (cal, sel) = calibrate(&z, &y, &groups, k, &p).unwrap();
    let nll = |c: Combiner| mean_nll(&cal.probs(c, &zt, n), &yt, k);
    let raw = nll(Combiner::SoftmaxLogits);
    for c in [
        Combiner::VectorScaling,
        Combiner::Dirichlet,
        Combiner::PlattTemperature,
    ] {
        assert!(nll(c) < raw - 0.05, "{c:?}: {} vs raw {raw}", nll(c));
    }
    assert_ne!(sel.chosen, Combiner::SoftmaxLogits);
    let least = sel
        .candidates
        .iter()
        .map(|c| c.cv_nll)
        .fold(f64::INFINITY, f64::min);
    let chosen = sel
        .candidates
        .iter()
        .find(|c| c.combiner == sel.chosen)
        .unwrap();
    assert_eq!(chosen.cv_nll, least);
    assert_eq!(sel.candidates.len(), Combiner::ALL.len());
    // Rows of every combiner are distributions.
    for c in Combiner::ALL {
        for row in cal.probs(c, &zt, n).chunks_exact(k) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{c:?}");
        }
    }
}

#[test]
fn already_calibrated_scores_choose_no_large_change() {
    // Logits that are the true log-probabilities of the labels' generator:
    // the softmax over them is calibrated; vector scaling stays near a = 1.
    use rand::{Rng, SeedableRng};
    let (k, n) = (3, 3000);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut z = vec![0f32; n * k];
    let mut y = vec![0u32; n];
    for i in 0..n {
        let row: Vec<f64> = (0..k).map(|_| rng.random_range(-2.0..2.0)).collect();
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let u: f64 = rng.random_range(0.0..1.0);
        let mut acc = 0.0;
        y[i] = (k - 1) as u32;
        for (j, ej) in e.iter().enumerate() {
            acc += ej / s;
            if u < acc {
                y[i] = j as u32;
                break;
            }
        }
        for j in 0..k {
            z[i * k + j] = row[j] as f32;
        }
    }
    let groups: Vec<u64> = (0..n as u64).collect();
    let (cal, _) = calibrate(&z, &y, &groups, k, &JointParams::default()).unwrap();
    assert!(
        cal.vector_scaling.w.iter().all(|a| (a - 1.0).abs() < 0.15),
        "{:?}",
        cal.vector_scaling.w
    );
}

#[test]
fn a_class_missing_from_the_rows_still_fits() {
    // Class 2 never occurs: Platt/isotonic fall back to constants.
    let z: Vec<f32> = (0..30).map(|i| (i as f32 * 0.37).sin()).collect();
    let y: Vec<u32> = (0..10).map(|i| (i % 2) as u32).collect();
    let cal = JointCalibration::fit(&z, &y, 10, 3, 0.01, 1.0).unwrap();
    assert_eq!(cal.platt[2].a, 0.0);
    for c in Combiner::ALL {
        assert!(cal.probs(c, &z, 10).iter().all(|p| p.is_finite()), "{c:?}");
    }
}
