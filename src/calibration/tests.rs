//! Tests of the calibration stage against the scikit-learn / scipy oracle
//! (`tests/fixtures/calibration/calibration.json`, written by
//! `tests/reference/make_calibration_fixtures.py`), plus properties and errors.

use super::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    platt: Vec<PlattCase>,
    isotonic: Vec<IsoCase>,
    temperature: Vec<TempCase>,
    combine: CombineCase,
}

#[derive(Deserialize)]
struct PlattCase {
    name: String,
    scores: Vec<f32>,
    labels: Vec<u8>,
    weights: Option<Vec<f32>>,
    a_sklearn: f64,
    b_sklearn: f64,
    objective_sklearn: f64,
    a_exact: f64,
    b_exact: f64,
    objective_exact: f64,
    probes: Vec<f32>,
    probs: Vec<f64>,
}

#[derive(Deserialize)]
struct IsoCase {
    name: String,
    scores: Vec<f32>,
    labels: Vec<u8>,
    weights: Option<Vec<f32>>,
    /// Parsed as f32: the thresholds are scores, i.e. f32 values (serde_json's
    /// default f64 parser can be 1 ulp off, the f32 it rounds to is exact).
    x_thresholds: Vec<f32>,
    y_thresholds: Vec<f64>,
    probes: Vec<f32>,
    predictions: Vec<f64>,
}

#[derive(Deserialize)]
struct TempCase {
    name: String,
    n: usize,
    k: usize,
    logits: Vec<f32>,
    labels: Vec<u32>,
    t: f64,
    nll: f64,
    nll_at_1: f64,
}

#[derive(Deserialize)]
struct CombineCase {
    n: usize,
    k: usize,
    logits: Vec<f32>,
    isotonic_calibrators: Vec<BinaryCalibrator>,
    platt_calibrators: Vec<BinaryCalibrator>,
    calibrated_argmax_isotonic: Expected,
    calibrated_argmax_platt: Expected,
    raw_argmax: Expected,
    softmax_logits: Expected,
    softmax_nll_labels: Vec<u32>,
    softmax_nll: f64,
}

#[derive(Deserialize)]
struct Expected {
    probs: Vec<f64>,
    preds: Vec<u32>,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/calibration/calibration.json"
    );
    let text = std::fs::read_to_string(path).expect("read calibration fixture");
    serde_json::from_str(&text).expect("parse calibration fixture")
}

fn bools(labels: &[u8]) -> Vec<bool> {
    labels.iter().map(|&l| l != 0).collect()
}

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-300)
}

fn max_abs_diff(got: impl IntoIterator<Item = f64>, want: &[f64]) -> f64 {
    got.into_iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max)
}

#[test]
fn platt_matches_sklearn_sigmoid_calibration() {
    for c in fixture().platt {
        let y = bools(&c.labels);
        let p = Platt::fit(&c.scores, &y, c.weights.as_deref()).unwrap();
        let obj = p.objective(&c.scores, &y, c.weights.as_deref()).unwrap();
        let probs = c.probes.iter().map(|&s| f64::from(p.prob(s)));
        let prob_gap = max_abs_diff(probs, &c.probs);
        let (ra, rb) = (rel(p.a, c.a_sklearn), rel(p.b, c.b_sklearn));
        let (ea, eb) = (rel(p.a, c.a_exact), rel(p.b, c.b_exact));
        eprintln!(
            "platt {}: a={} b={} | rel gap vs sklearn a {ra:.1e} b {rb:.1e} | vs exact a {ea:.1e} \
             b {eb:.1e} | objective {obj} (exact {}, sklearn {}) | probe probs {prob_gap:.1e}",
            c.name, p.a, p.b, c.objective_exact, c.objective_sklearn
        );
        assert!(ra < 1e-4 && rb < 1e-4, "{}: vs sklearn {ra} {rb}", c.name);
        assert!(ea < 1e-8 && eb < 1e-8, "{}: vs exact {ea} {eb}", c.name);
        assert!(obj <= c.objective_exact * (1.0 + 1e-12), "{}", c.name);
        assert!(obj <= c.objective_sklearn * (1.0 + 1e-12), "{}", c.name);
        assert!(prob_gap < 1e-6, "{}: probs {prob_gap}", c.name);
    }
}

#[test]
fn isotonic_matches_sklearn_isotonic_regression() {
    for c in fixture().isotonic {
        let y = bools(&c.labels);
        let iso = Isotonic::fit(&c.scores, &y, c.weights.as_deref()).unwrap();
        assert_eq!(iso.x, c.x_thresholds, "{}: thresholds", c.name);
        let y_gap = max_abs_diff(iso.y.iter().map(|&v| f64::from(v)), &c.y_thresholds);
        assert_eq!(iso.y.len(), c.y_thresholds.len(), "{}", c.name);
        let pred = c.probes.iter().map(|&s| f64::from(iso.prob(s)));
        let pred_gap = max_abs_diff(pred, &c.predictions);
        let pred64 = c.probes.iter().map(|&s| iso.prob_f64(f64::from(s)));
        let pred64_gap = max_abs_diff(pred64, &c.predictions);
        eprintln!(
            "isotonic {}: {} thresholds, y gap {y_gap:.1e}, prediction gap {pred_gap:.1e} \
             (f64 path {pred64_gap:.1e}) at {} probes",
            c.name,
            iso.x.len(),
            c.probes.len()
        );
        assert!(y_gap < 1e-6 && pred_gap < 1e-6, "{}", c.name);
        assert!(pred64_gap < 1e-6, "{}: f64 path {pred64_gap}", c.name);
    }
}

#[test]
fn temperature_matches_scipy_minimize_scalar() {
    for c in fixture().temperature {
        let t = Temperature::fit(&c.logits, &c.labels, c.n, c.k).unwrap();
        let nll = t.nll(&c.logits, &c.labels, c.n, c.k).unwrap();
        let nll1 = Temperature { t: 1.0 }
            .nll(&c.logits, &c.labels, c.n, c.k)
            .unwrap();
        eprintln!(
            "temperature {}: T {} (scipy {}, rel gap {:.1e}) | NLL {nll} (scipy {}, gap {:.1e}) \
             | NLL at T=1 gap {:.1e}",
            c.name,
            t.t,
            c.t,
            rel(t.t, c.t),
            c.nll,
            (nll - c.nll).abs(),
            (nll1 - c.nll_at_1).abs()
        );
        assert!(rel(t.t, c.t) < 1e-4, "{}", c.name);
        assert!((nll - c.nll).abs() < 1e-6, "{}", c.name);
        assert!(
            nll <= c.nll + 1e-12,
            "{}: not at least as good as scipy",
            c.name
        );
        assert!((nll1 - c.nll_at_1).abs() < 1e-9, "{}", c.name);
    }
}

#[test]
fn temperature_does_not_change_the_argmax() {
    for c in fixture().temperature {
        let t = Temperature::fit(&c.logits, &c.labels, c.n, c.k).unwrap();
        let probs = t.probs(&c.logits, c.n, c.k);
        let before = argmax_rows(&c.logits, c.n, c.k);
        assert_eq!(argmax_rows(&probs, c.n, c.k), before, "{}", c.name);
        for row in probs.chunks_exact(c.k) {
            assert!((row.iter().map(|&p| f64::from(p)).sum::<f64>() - 1.0).abs() < 1e-6);
        }
    }
}

/// A joint calibration holding the fixture's per-specialist calibrators.
fn joint_with(c: &CombineCase) -> JointCalibration {
    let platt = c
        .platt_calibrators
        .iter()
        .map(|b| match b {
            BinaryCalibrator::Platt(p) => p.clone(),
            other => panic!("not Platt: {other:?}"),
        })
        .collect();
    let isotonic = c
        .isotonic_calibrators
        .iter()
        .map(|b| match b {
            BinaryCalibrator::Isotonic(i) => i.clone(),
            other => panic!("not isotonic: {other:?}"),
        })
        .collect();
    JointCalibration {
        platt,
        isotonic,
        platt_temperature: Temperature::default(),
        vector_scaling: ScoreMap::identity(MapKind::Vector, c.k),
        dirichlet: ScoreMap::identity(MapKind::Full, c.k),
    }
}

#[test]
fn combiners_match_reference() {
    let c = fixture().combine;
    let cases = [
        (&c.isotonic_calibrators, &c.calibrated_argmax_isotonic),
        (&c.platt_calibrators, &c.calibrated_argmax_platt),
    ];
    for (cals, want) in cases {
        let probs = normalized_calibrated(&c.logits, c.n, c.k, cals);
        let gap = max_abs_diff(probs.iter().map(|&p| f64::from(p)), &want.probs);
        assert_eq!(probs.len(), c.n * c.k);
        assert!(gap < 1e-6, "{gap}");
        assert_eq!(argmax_rows(&probs, c.n, c.k), want.preds);
    }
    // The same through the joint calibration's combiners (f64 end to end).
    let joint = joint_with(&c);
    for (combiner, want) in [
        (Combiner::Platt, &c.calibrated_argmax_platt),
        (Combiner::Isotonic, &c.calibrated_argmax_isotonic),
        (Combiner::SoftmaxLogits, &c.softmax_logits),
    ] {
        let p = joint.probs(combiner, &c.logits, c.n);
        // Isotonic thresholds are f32 in the fixture: 1e-6, as the f32 path.
        assert!(
            max_abs_diff(p.iter().copied(), &want.probs) < 1e-6,
            "{combiner:?}"
        );
        let preds: Vec<u32> = p
            .chunks_exact(c.k)
            .map(|r| (0..c.k).fold(0, |b, j| if r[j] > r[b] { j } else { b }) as u32)
            .collect();
        assert_eq!(preds, want.preds, "{combiner:?}");
    }
    // Identity maps reproduce their inputs' softmax: Dirichlet at W = I is
    // the normalised Platt, vector scaling at a = 1 the raw softmax.
    let d = joint.probs(Combiner::Dirichlet, &c.logits, c.n);
    assert!(max_abs_diff(d.iter().copied(), &c.calibrated_argmax_platt.probs) < 1e-9);
    let v = joint.probs(Combiner::VectorScaling, &c.logits, c.n);
    assert!(max_abs_diff(v.iter().copied(), &c.softmax_logits.probs) < 1e-9);
    assert_eq!(c.raw_argmax.preds, c.softmax_logits.preds);
    // Row 0 is below every isotonic calibrator's range: exactly uniform.
    let probs = normalized_calibrated(&c.logits, c.n, c.k, &c.isotonic_calibrators);
    assert_eq!(&probs[..3], &[1.0 / 3.0f32; 3]);
    // NLL of the softmax combiner vs numpy.
    let sm = softmax_rows(&c.logits, c.n, c.k);
    let nll = c
        .softmax_nll_labels
        .iter()
        .enumerate()
        .map(|(i, &y)| -f64::from(sm[i * c.k + y as usize]).ln())
        .sum::<f64>()
        / c.n as f64;
    assert!(
        (nll - c.softmax_nll).abs() < 1e-6,
        "{nll} {}",
        c.softmax_nll
    );
}
