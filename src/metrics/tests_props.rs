//! Property and error tests of the metrics stage: the bootstrap (determinism,
//! coverage of the observed difference, degenerate case), the verdict
//! sentence, and the validation errors (no panics on bad data).

use super::*;

/// A K-class case where A is right ~80% and B ~70% of the time (seeded LCG).
fn two_approaches(n: usize, k: u32) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut labels = Vec::new();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let y = next() % k;
        labels.push(y);
        a.push(if next() % 100 < 80 { y } else { next() % k });
        b.push(if next() % 100 < 70 { y } else { next() % k });
    }
    (labels, a, b)
}

#[test]
fn bootstrap_is_deterministic_for_a_seed() {
    let (y, a, b) = two_approaches(300, 5);
    let r1 = paired_bootstrap(&y, &a, &b, 5, 500, 7).expect("bootstrap");
    let r2 = paired_bootstrap(&y, &a, &b, 5, 500, 7).expect("bootstrap");
    assert_eq!(r1, r2);
    let r3 = paired_bootstrap(&y, &a, &b, 5, 500, 8).expect("bootstrap");
    assert_ne!((r1.accuracy, r1.macro_f1), (r3.accuracy, r3.macro_f1));
    assert_eq!(r1.accuracy.observed, r3.accuracy.observed);
}

#[test]
fn bootstrap_interval_contains_the_observed_difference() {
    let (y, a, b) = two_approaches(400, 6);
    let r = paired_bootstrap(&y, &a, &b, 6, 2000, 1).expect("bootstrap");
    for (what, i) in [("accuracy", r.accuracy), ("macro-F1", r.macro_f1)] {
        assert!(i.low <= i.observed && i.observed <= i.high, "{what}: {i:?}");
        assert!(i.low < i.high, "{what}: {i:?}");
    }
    let acc_a = accuracy(&y, &a).expect("acc");
    let acc_b = accuracy(&y, &b).expect("acc");
    assert!((r.accuracy.observed - (acc_a - acc_b)).abs() < 1e-12);
    let f1 = macro_f1(&y, &a, 6).expect("f1") - macro_f1(&y, &b, 6).expect("f1");
    assert!((r.macro_f1.observed - f1).abs() < 1e-12);
    // ~10 points apart on 400 rows: the interval excludes 0.
    assert!(r.accuracy.low > 0.0, "{:?}", r.accuracy);
}

#[test]
fn bootstrap_of_identical_predictions_is_zero() {
    let (y, a, _) = two_approaches(200, 4);
    let r = paired_bootstrap(&y, &a, &a, 4, 300, 3).expect("bootstrap");
    let zero = Interval {
        observed: 0.0,
        low: 0.0,
        high: 0.0,
    };
    assert_eq!((r.accuracy, r.macro_f1), (zero, zero));
}

#[test]
fn verdict_sentences() {
    let m = McNemar {
        b: 30,
        c: 12,
        p_value: 0.0123,
    };
    let acc = Interval {
        observed: 0.021,
        low: 0.004,
        high: 0.039,
    };
    assert_eq!(
        verdict("OvR", "softmax", &acc, &m),
        "OvR is better than softmax by 2.1 points (95% CI 0.4 to 3.9, McNemar p = 0.01)"
    );
    let flipped = Interval {
        observed: -0.021,
        low: -0.039,
        high: -0.004,
    };
    assert_eq!(
        verdict("OvR", "softmax", &flipped, &m),
        "softmax is better than OvR by 2.1 points (95% CI 0.4 to 3.9, McNemar p = 0.01)"
    );
    let m = McNemar {
        b: 5,
        c: 4,
        p_value: 1.0,
    };
    let acc = Interval {
        observed: 0.0004,
        low: -0.012,
        high: 0.018,
    };
    assert_eq!(
        verdict("A", "B", &acc, &m),
        "No significant difference between A and B (A - B = 0.0 points, 95% CI -1.2 to 1.8, McNemar p = 1.00)"
    );
    let tiny = McNemar {
        b: 100,
        c: 10,
        p_value: 8e-20,
    };
    let acc = Interval {
        observed: 0.09,
        low: 0.07,
        high: 0.11,
    };
    assert!(verdict("A", "B", &acc, &tiny).ends_with("McNemar p < 0.001)"));
}

#[test]
fn mcnemar_edge_cases() {
    assert_eq!(mcnemar_p_value(0, 0), 1.0);
    assert_eq!(mcnemar_p_value(7, 7), 1.0);
    assert_eq!(mcnemar_p_value(0, 1), 1.0);
    assert!((mcnemar_p_value(0, 10) - 2.0 / 1024.0).abs() < 1e-15);
    assert_eq!(mcnemar_p_value(3, 10), mcnemar_p_value(10, 3));
    assert_eq!(mcnemar_p_value(0, 5000), 0.0); // 2^-4999 underflows
    let p = mcnemar_p_value(50_000, 50_500);
    assert!(p > 0.0 && p < 1.0);
}

#[test]
fn top_k_tie_rule_is_lower_index_first() {
    let probs = [0.25f32; 4];
    for (y, want1, want2) in [(0u32, 1.0, 1.0), (1, 0.0, 1.0), (3, 0.0, 0.0)] {
        assert_eq!(top_k_accuracy(&[y], &probs, 4, 1).expect("top1"), want1);
        assert_eq!(top_k_accuracy(&[y], &probs, 4, 2).expect("top2"), want2);
    }
    assert_eq!(top_k_accuracy(&[3], &probs, 4, 5).expect("k > K"), 1.0);
}

#[test]
fn nll_clips_at_eps_and_brier_is_not_halved() {
    let probs = [0.0f32, 1.0, 1.0, 0.0];
    let nll = nll(&[0, 0], &probs, 2).expect("nll");
    assert!((nll - (-NLL_EPS.ln()) / 2.0).abs() < 1e-12);
    assert_eq!(brier(&[0, 0], &probs, 2).expect("brier"), 1.0);
}

#[test]
fn ece_of_a_perfectly_calibrated_split_is_zero() {
    // Confidence 0.5 with half the rows right: one bin, gap 0.
    let probs = [0.5f32, 0.5, 0.5, 0.5];
    let cal = calibration_error(&[0, 1], &probs, 2, 15).expect("ece");
    assert_eq!((cal.ece, cal.mce, cal.bins.len()), (0.0, 0.0, 1));
    assert_eq!(cal.bins[0].upper, 0.5333333333333333); // 0.5 is in (7/15, 8/15]
}

#[test]
fn errors_name_the_bad_argument() {
    let probs = [0.5f32, 0.5];
    assert_eq!(
        summarize(&[], &[], &[], 2),
        Err(MetricError::Empty { what: "labels" })
    );
    assert_eq!(
        summarize(&[0], &probs, &[0], 0),
        Err(MetricError::NoClasses)
    );
    assert!(matches!(
        summarize(&[2], &probs, &[0], 2),
        Err(MetricError::ClassOutOfRange {
            what: "labels",
            index: 0,
            value: 2,
            k: 2
        })
    ));
    assert!(matches!(
        summarize(&[0], &probs, &[0, 1], 2),
        Err(MetricError::LengthMismatch {
            what: "preds",
            got: 2,
            expected: 1
        })
    ));
    assert!(matches!(
        summarize(&[0], &[0.5, f32::NAN], &[0], 2),
        Err(MetricError::NonFinite {
            what: "probs",
            index: 1,
            ..
        })
    ));
    assert!(matches!(
        summarize(&[0], &[1.5, -0.5], &[0], 2),
        Err(MetricError::NotProbability { index: 0, .. })
    ));
    assert!(matches!(
        summarize(&[0], &[0.5, 0.4], &[0], 2),
        Err(MetricError::RowSum { row: 0, .. })
    ));
    assert!(matches!(
        calibration_error(&[0], &probs, 2, 0),
        Err(MetricError::ZeroParameter { .. })
    ));
    assert!(matches!(
        top_k_accuracy(&[0], &probs, 2, 0),
        Err(MetricError::ZeroParameter { .. })
    ));
    assert!(matches!(
        paired_bootstrap(&[0], &[0], &[1], 2, 0, 1),
        Err(MetricError::ZeroParameter { .. })
    ));
    assert!(matches!(
        binary_scores(&[true], &[f32::INFINITY], &[0.5]),
        Err(MetricError::NonFinite { what: "scores", .. })
    ));
    assert!(matches!(
        mcnemar_exact(&[true], &[]),
        Err(MetricError::LengthMismatch {
            what: "correct_b",
            ..
        })
    ));
    let e = summarize(&[0], &[0.5, 0.4], &[0], 2).expect_err("row sum");
    assert!(e.to_string().contains("row 0 sums to"), "{e}");
}

#[test]
fn binary_with_one_class_is_none() {
    let s = binary_scores(&[true, true], &[0.1, 0.9], &[0.1, 0.9]).expect("binary");
    assert_eq!((s.auroc, s.average_precision), (None, None));
    assert!((s.brier - (0.81 + 0.01) / 2.0).abs() < 1e-6);
    let perfect = binary_scores(&[false, true], &[0.1, 0.9], &[0.1, 0.9]).expect("binary");
    assert_eq!(
        (perfect.auroc, perfect.average_precision),
        (Some(1.0), Some(1.0))
    );
}
