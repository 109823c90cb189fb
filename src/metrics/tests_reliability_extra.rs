//! Tests of classwise ECE, adaptive ECE and the Clopper–Pearson bin
//! intervals against numpy / scipy (`tests/fixtures/metrics/calibration_bins.json`,
//! written by `tests/reference/make_calibration_bins_fixtures.py`).

use super::reliability_extra::{adaptive_ece, classwise_ece, clopper_pearson};
use super::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Bin {
    bin: usize,
    count: usize,
    correct: u64,
    low: f64,
    high: f64,
}

#[derive(Deserialize)]
struct Fixture {
    bins: usize,
    k: usize,
    labels: Vec<u32>,
    probs: Vec<f32>,
    classwise_ece: f64,
    adaptive_ece: f64,
    clopper_pearson: Vec<Bin>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!(
        "../../tests/fixtures/metrics/calibration_bins.json"
    ))
    .unwrap()
}

#[test]
fn classwise_and_adaptive_ece_match_numpy() {
    let f = fixture();
    let c = classwise_ece(&f.labels, &f.probs, f.k, f.bins).unwrap();
    let a = adaptive_ece(&f.labels, &f.probs, f.k, f.bins).unwrap();
    assert!(
        (c - f.classwise_ece).abs() < 1e-9,
        "{c} vs {}",
        f.classwise_ece
    );
    assert!(
        (a - f.adaptive_ece).abs() < 1e-9,
        "{a} vs {}",
        f.adaptive_ece
    );
    let s = summarize(&f.labels, &f.probs, &f.labels, f.k).unwrap();
    assert_eq!((s.classwise_ece, s.adaptive_ece), (c, a));
}

#[test]
fn every_bin_carries_the_exact_interval_of_scipy() {
    let f = fixture();
    let cal = calibration_error(&f.labels, &f.probs, f.k, f.bins).unwrap();
    assert_eq!(cal.bins.len(), f.clopper_pearson.len());
    // Row 0 has confidence exactly 1.0: it is counted in the last bin.
    assert_eq!(f.probs[..f.k].iter().copied().fold(0.0, f32::max), 1.0);
    let last = f.clopper_pearson.last().unwrap();
    assert_eq!(last.bin, f.bins - 1);
    for (got, want) in cal.bins.iter().zip(&f.clopper_pearson) {
        assert_eq!(got.count, want.count);
        assert_eq!(got.lower, want.bin as f64 / f.bins as f64);
        assert!(
            (got.accuracy_low - want.low).abs() < 1e-9,
            "bin {}: {} vs {}",
            want.bin,
            got.accuracy_low,
            want.low
        );
        assert!(
            (got.accuracy_high - want.high).abs() < 1e-9,
            "bin {}: {} vs {}",
            want.bin,
            got.accuracy_high,
            want.high
        );
        let (lo, hi) = clopper_pearson(want.correct, want.count as u64);
        assert_eq!((lo, hi), (got.accuracy_low, got.accuracy_high));
    }
}

#[test]
fn clopper_pearson_edges() {
    assert_eq!(clopper_pearson(0, 10).0, 0.0);
    assert_eq!(clopper_pearson(10, 10).1, 1.0);
    // scipy: binomtest(0, 10).proportion_ci() -> (0, 0.30849710781876083)
    assert!((clopper_pearson(0, 10).1 - 0.308_497_107_818_760_83).abs() < 1e-9);
    let (lo, hi) = clopper_pearson(1, 1);
    assert!((lo - 0.025).abs() < 1e-9 && hi == 1.0, "{lo}");
}
