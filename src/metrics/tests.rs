//! Tests of the metrics stage against the numpy / scipy / scikit-learn oracle
//! (`tests/fixtures/metrics/metrics.json`, written by
//! `tests/reference/make_metric_fixtures.py`). Tolerance 1e-6: absolute for
//! reference values in [−1, 1], relative otherwise; each test prints its
//! largest gap (`cargo test --release --lib metrics -- --nocapture`).

use super::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    eps: f64,
    multiclass: Vec<MultiCase>,
    calibration: Vec<CalibCase>,
    binary: Vec<BinaryCase>,
    mcnemar: Vec<McNemarCase>,
    percentile: Vec<PercentileCase>,
}

#[derive(Deserialize)]
struct TopK {
    k: usize,
    ours: f64,
    sklearn: f64,
}

#[derive(Deserialize)]
struct Bin {
    bin: usize,
    count: usize,
    confidence: f64,
    accuracy: f64,
}

#[derive(Deserialize)]
struct Ovr {
    auroc: Option<f64>,
    average_precision: Option<f64>,
    brier: f64,
}

#[derive(Deserialize)]
struct MultiCase {
    name: String,
    n: usize,
    k: usize,
    bins: usize,
    labels: Vec<u32>,
    probs: Vec<f32>,
    probs_sum: f64,
    preds: Vec<u32>,
    accuracy: f64,
    top_k: Vec<TopK>,
    macro_f1: f64,
    balanced_accuracy: f64,
    precision: Vec<f64>,
    recall: Vec<f64>,
    f1: Vec<f64>,
    support: Vec<usize>,
    confusion: Vec<Vec<usize>>,
    nll: f64,
    brier: f64,
    ece: f64,
    mce: f64,
    reliability: Vec<Bin>,
    ovr: Vec<Ovr>,
}

#[derive(Deserialize)]
struct CalibCase {
    name: String,
    n: usize,
    k: usize,
    bins: usize,
    labels: Vec<u32>,
    probs: Vec<f32>,
    probs_sum: f64,
    ece: f64,
    mce: f64,
    reliability: Vec<Bin>,
}

#[derive(Deserialize)]
struct BinaryCase {
    name: String,
    positive: Vec<bool>,
    scores: Vec<f32>,
    probs: Vec<f32>,
    auroc: Option<f64>,
    average_precision: Option<f64>,
    brier: f64,
}

#[derive(Deserialize)]
struct McNemarCase {
    b: usize,
    c: usize,
    p_value: f64,
}

#[derive(Deserialize)]
struct PercentileCase {
    values: Vec<f64>,
    low: f64,
    high: f64,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/metrics/metrics.json"
    );
    let text = std::fs::read_to_string(path).expect("read metrics fixture");
    serde_json::from_str(&text).expect("parse metrics fixture")
}

/// Tracks the largest gap seen; panics past 1e-6 (absolute within [−1, 1]).
#[derive(Default)]
struct Gap(f64);

impl Gap {
    fn check(&mut self, got: f64, want: f64, what: &str) {
        let gap = if want.abs() <= 1.0 {
            (got - want).abs()
        } else {
            (got - want).abs() / want.abs()
        };
        assert!(gap <= 1e-6, "{what}: got {got}, want {want} (gap {gap:e})");
        self.0 = self.0.max(gap);
    }

    fn opt(&mut self, got: Option<f64>, want: Option<f64>, what: &str) {
        match (got, want) {
            (Some(g), Some(w)) => self.check(g, w, what),
            (None, None) => {}
            _ => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }

    fn table(&mut self, got: &Calibration, want: &[Bin], bins: usize, what: &str) {
        assert_eq!(got.bins.len(), want.len(), "{what}: non-empty bins");
        for (g, w) in got.bins.iter().zip(want) {
            assert_eq!(g.count, w.count, "{what}: count of bin {}", w.bin);
            self.check(g.lower, w.bin as f64 / bins as f64, what);
            self.check(g.upper, (w.bin + 1) as f64 / bins as f64, what);
            self.check(g.confidence, w.confidence, what);
            self.check(g.accuracy, w.accuracy, what);
        }
    }
}

fn parsed_sum(probs: &[f32]) -> f64 {
    probs.iter().map(|&v| f64::from(v)).sum()
}

#[test]
fn multiclass_cases_match_sklearn() {
    let fx = fixture();
    assert_eq!(fx.eps, NLL_EPS);
    let mut gap = Gap::default();
    for c in &fx.multiclass {
        let (name, k) = (c.name.as_str(), c.k);
        assert_eq!(c.labels.len(), c.n, "{name}");
        assert!(
            (parsed_sum(&c.probs) - c.probs_sum).abs() < 1e-9,
            "{name}: f32 parse"
        );
        let s = summarize(&c.labels, &c.probs, &c.preds, k).expect(name);
        gap.check(s.accuracy, c.accuracy, &format!("{name} accuracy"));
        gap.check(s.macro_f1, c.macro_f1, &format!("{name} macro-F1"));
        gap.check(
            s.balanced_accuracy,
            c.balanced_accuracy,
            &format!("{name} bal acc"),
        );
        gap.check(s.nll, c.nll, &format!("{name} nll"));
        gap.check(s.brier, c.brier, &format!("{name} brier"));
        gap.check(s.ece, c.ece, &format!("{name} ece"));
        gap.check(s.mce, c.mce, &format!("{name} mce"));
        for t in &c.top_k {
            let got = top_k_accuracy(&c.labels, &c.probs, k, t.k).expect(name);
            gap.check(got, t.ours, &format!("{name} top-{}", t.k));
            if t.k == TOP_K_DEFAULT {
                gap.check(s.top5, t.ours, &format!("{name} top5"));
            }
            if name != "ties" {
                gap.check(got, t.sklearn, &format!("{name} top-{} sklearn", t.k));
            }
        }
        let pc = per_class(&c.labels, &c.preds, k).expect(name);
        assert_eq!(pc.support, c.support, "{name} support");
        for j in 0..k {
            gap.check(
                pc.precision[j],
                c.precision[j],
                &format!("{name} precision {j}"),
            );
            gap.check(pc.recall[j], c.recall[j], &format!("{name} recall {j}"));
            gap.check(pc.f1[j], c.f1[j], &format!("{name} f1 {j}"));
        }
        assert_eq!(confusion(&c.labels, &c.preds, k).expect(name), c.confusion);
        let cal = calibration_error(&c.labels, &c.probs, k, c.bins).expect(name);
        gap.table(&cal, &c.reliability, c.bins, name);
        let ovr = one_vs_rest(&c.labels, &c.probs, &c.probs, k).expect(name);
        for (j, (g, w)) in ovr.iter().zip(&c.ovr).enumerate() {
            gap.opt(g.auroc, w.auroc, &format!("{name} auroc {j}"));
            gap.opt(
                g.average_precision,
                w.average_precision,
                &format!("{name} ap {j}"),
            );
            gap.check(g.brier, w.brier, &format!("{name} ovr brier {j}"));
        }
    }
    println!("metrics fixture multiclass: max gap {:e}", gap.0);
}

#[test]
fn missing_class_case_has_no_auroc_and_zero_support() {
    let fx = fixture();
    let c = fx.multiclass.iter().find(|c| c.name == "missing_class");
    let c = c.expect("missing_class case");
    let pc = per_class(&c.labels, &c.preds, c.k).expect("per class");
    assert_eq!(pc.support[3], 0);
    assert_eq!((pc.recall[3], pc.precision[3], pc.f1[3]), (0.0, 0.0, 0.0));
    let ovr = one_vs_rest(&c.labels, &c.probs, &c.probs, c.k).expect("ovr");
    assert!(ovr[3].auroc.is_none() && ovr[3].average_precision.is_none());
    assert_eq!(ovr[3].positives, 0);
}

#[test]
fn ties_case_documents_the_sklearn_top_k_difference() {
    let fx = fixture();
    let c = fx
        .multiclass
        .iter()
        .find(|c| c.name == "ties")
        .expect("ties");
    // Ours: top-1 == accuracy of the (lower-index) argmax predictions.
    let top1 = top_k_accuracy(&c.labels, &c.probs, c.k, 1).expect("top1");
    assert_eq!(top1, accuracy(&c.labels, &c.preds).expect("acc"));
    assert!(c.top_k.iter().any(|t| t.ours != t.sklearn));
}

#[test]
fn calibration_edge_cases_match_numpy() {
    let mut gap = Gap::default();
    for c in &fixture().calibration {
        let name = c.name.as_str();
        assert_eq!(c.labels.len(), c.n);
        assert!(
            (parsed_sum(&c.probs) - c.probs_sum).abs() < 1e-9,
            "{name}: f32 parse"
        );
        let cal = calibration_error(&c.labels, &c.probs, c.k, c.bins).expect(name);
        gap.check(cal.ece, c.ece, &format!("{name} ece"));
        gap.check(cal.mce, c.mce, &format!("{name} mce"));
        gap.table(&cal, &c.reliability, c.bins, name);
    }
    println!("metrics fixture calibration: max gap {:e}", gap.0);
}

#[test]
fn binary_cases_match_sklearn() {
    let mut gap = Gap::default();
    for c in &fixture().binary {
        let name = c.name.as_str();
        let s = binary_scores(&c.positive, &c.scores, &c.probs).expect(name);
        gap.opt(s.auroc, c.auroc, &format!("{name} auroc"));
        gap.opt(
            s.average_precision,
            c.average_precision,
            &format!("{name} ap"),
        );
        gap.check(s.brier, c.brier, &format!("{name} brier"));
    }
    println!("metrics fixture binary: max gap {:e}", gap.0);
}

#[test]
fn mcnemar_matches_scipy_binomtest() {
    let (mut gap, mut rel) = (Gap::default(), 0.0f64);
    for c in &fixture().mcnemar {
        let p = mcnemar_p_value(c.b, c.c);
        gap.check(p, c.p_value, &format!("mcnemar ({}, {})", c.b, c.c));
        let r = (p - c.p_value).abs() / c.p_value;
        assert!(r < 1e-9, "({}, {}): relative gap {r:e}", c.b, c.c);
        rel = rel.max(r);
        let mut a = vec![true; c.b];
        a.extend(vec![false; c.c]);
        let mut b = vec![false; c.b];
        b.extend(vec![true; c.c]);
        a.extend([true, false]); // concordant rows do not count
        b.extend([true, false]);
        let m = mcnemar_exact(&a, &b).expect("mcnemar");
        assert_eq!((m.b, m.c, m.p_value), (c.b, c.c, p));
    }
    println!(
        "metrics fixture mcnemar: max gap {:e}, max relative {rel:e}",
        gap.0
    );
}

#[test]
fn percentile_matches_numpy_linear() {
    let mut gap = Gap::default();
    for c in &fixture().percentile {
        let mut v = c.values.clone();
        v.sort_by(f64::total_cmp);
        gap.check(significance::percentile(&v, 2.5), c.low, "p2.5");
        gap.check(significance::percentile(&v, 97.5), c.high, "p97.5");
    }
    println!("metrics fixture percentile: max gap {:e}", gap.0);
}
