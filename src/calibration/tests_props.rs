//! Property, error and serialization tests of the calibration stage (the
//! comparisons with the scikit-learn / scipy oracle are in `tests.rs`).

use super::*;
use crate::util::choice::Choice;

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-300)
}

#[test]
fn platt_integer_weights_equal_duplicated_samples() {
    let s = [-2.0f32, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5, 2.5];
    let y = [false, false, true, false, true, false, true, true];
    let w = [1.0f32, 2.0, 1.0, 3.0, 1.0, 2.0, 1.0, 1.0];
    let (mut sd, mut yd) = (vec![], vec![]);
    for i in 0..s.len() {
        for _ in 0..w[i] as usize {
            sd.push(s[i]);
            yd.push(y[i]);
        }
    }
    let pw = Platt::fit(&s, &y, Some(&w)).unwrap();
    let pd = Platt::fit(&sd, &yd, None).unwrap();
    assert!(
        rel(pw.a, pd.a) < 1e-10 && rel(pw.b, pd.b) < 1e-10,
        "{pw:?} {pd:?}"
    );
    let iw = Isotonic::fit(&s, &y, Some(&w)).unwrap();
    let id = Isotonic::fit(&sd, &yd, None).unwrap();
    assert_eq!(iw, id);
}

#[test]
fn platt_constant_scores_give_the_smoothed_base_rate() {
    // 0.1 (as f32): the weighted mean of the scores is not exactly 0.1.
    let s = [0.1f32; 10];
    let y: Vec<bool> = (0..10).map(|i| i < 3).collect();
    let p = Platt::fit(&s, &y, None).unwrap();
    // Optimum: p = mean target = (3·t₊ + 7·t₋) / 10, t₊ = 4/5, t₋ = 1/9.
    let want = (3.0 * 0.8 + 7.0 / 9.0) / 10.0;
    assert!((p.prob_f64(0.1) - want).abs() < 1e-12, "{p:?}");
    assert_eq!(p.a, 0.0, "{p:?}");
}

#[test]
fn platt_is_decreasing_in_a_for_a_useful_specialist() {
    let s: Vec<f32> = (0..40).map(|i| i as f32 / 4.0 - 5.0).collect();
    let y: Vec<bool> = s.iter().map(|&v| v > 0.3 || v == -1.0).collect();
    let p = Platt::fit(&s, &y, None).unwrap();
    assert!(p.a < 0.0, "{p:?}");
    assert!(p.prob(4.0) > 0.9 && p.prob(-4.0) < 0.1, "{p:?}");
    // Extreme scores stay in [0, 1] without overflow.
    assert_eq!(p.prob(f32::MAX), 1.0);
    assert_eq!(p.prob(f32::MIN), 0.0);
}

#[test]
fn isotonic_single_score_and_monotone_output() {
    let iso = Isotonic::fit(&[1.0; 4], &[true, false, false, true], None).unwrap();
    assert_eq!(iso.x, vec![1.0]);
    assert_eq!(iso.prob(-5.0), 0.5);
    assert_eq!(iso.prob(5.0), 0.5);
    let s: Vec<f32> = (0..50).map(|i| ((i * 37) % 50) as f32 / 5.0).collect();
    let y: Vec<bool> = (0..50).map(|i| (i * 7) % 3 == 0).collect();
    let iso = Isotonic::fit(&s, &y, None).unwrap();
    let probs: Vec<f32> = (0..200).map(|i| iso.prob(i as f32 / 15.0 - 2.0)).collect();
    assert!(probs.windows(2).all(|w| w[0] <= w[1]));
    assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(iso.prob(f32::NAN).is_nan());
}

#[test]
fn temperature_recovers_one_when_already_calibrated() {
    // Rows whose labels occur exactly in proportion to softmax(z):
    // (0, ln 3) -> (1/4, 3/4) and (0, ln 2, ln 5) -> (1/8, 2/8, 5/8).
    let mut logits = vec![];
    let mut labels = vec![];
    let (l2, l3, l5) = (2f32.ln(), 3f32.ln(), 5f32.ln());
    for y in [0u32, 1, 1, 1] {
        // A third class far below (p ≈ 4e-44) pads the rows to k = 3.
        logits.extend([0.0, l3, -100.0]);
        labels.push(y);
    }
    for y in [0u32, 1, 1, 2, 2, 2, 2, 2] {
        logits.extend([0.0, l2, l5]);
        labels.push(y);
    }
    let n = labels.len();
    let t = Temperature::fit(&logits, &labels, n, 3).unwrap();
    assert!((t.t - 1.0).abs() < 1e-6, "{t:?}");
}

#[test]
fn temperature_degenerate_cases() {
    // Every row's logits equal: the NLL does not depend on T; T = 1.
    let t = Temperature::fit(&[2.0; 12], &[0, 1, 2, 0], 4, 3).unwrap();
    assert_eq!(t.t, 1.0);
    // Every row right with a margin: the NLL decreases as T -> 0 (also when
    // the margin is so wide that the other probabilities underflow).
    let t = Temperature::fit(&[3.0, 0.0, 0.0, 2.0], &[0, 1], 2, 2).unwrap();
    assert_eq!(t.t, T_MIN);
    let t = Temperature::fit(&[3000.0, 0.0, 0.0, 2000.0], &[0, 1], 2, 2).unwrap();
    assert_eq!(t.t, T_MIN);
    // Every row wrong: the NLL decreases as T -> infinity.
    let t = Temperature::fit(&[3.0, 0.0, 0.0, 2.0], &[1, 0], 2, 2).unwrap();
    assert_eq!(t.t, T_MAX);
    let bad = Temperature { t: 0.0 };
    let err = bad.check().unwrap_err();
    assert!(
        matches!(err, CalibrationError::BadTemperature { .. }),
        "{err}"
    );
    assert!(bad.probs(&[1.0, 2.0], 1, 2).iter().all(|p| p.is_nan()));
}

#[test]
fn argmax_ties_go_to_the_lower_index_and_softmax_is_stable() {
    let p = [0.2f32, 0.4, 0.4, 0.5, 0.5, 0.0, 0.1, 0.1, 0.1];
    assert_eq!(argmax_rows(&p, 3, 3), vec![1, 0, 0]);
    let s = softmax_rows(&[1000.0, 1000.0, -1000.0, 0.0], 2, 2);
    assert_eq!(s, vec![0.5, 0.5, 0.0, 1.0]);
}

#[test]
fn errors_name_the_class_without_positives_or_negatives() {
    // Class 2 never occurs among the labels: specialist 2 has no positive.
    let logits = [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
    let err =
        fit_one_vs_rest(CalibrationMethod::Platt, &logits, 3, 3, &[0, 1, 0], None).unwrap_err();
    assert!(
        matches!(
            err,
            CalibrationError::NoPositives {
                class: Some(2),
                n: 3
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("class 2: no positive"), "{err}");
    let err = fit_one_vs_rest(
        CalibrationMethod::Isotonic,
        &logits[..6],
        3,
        2,
        &[1, 1, 1],
        None,
    )
    .unwrap_err();
    assert!(
        matches!(err, CalibrationError::NoPositives { class: Some(0), .. }),
        "{err:?}"
    );
    let err = Platt::fit(&[0.0, 1.0], &[true, true], None).unwrap_err();
    assert!(
        matches!(err, CalibrationError::NoNegatives { class: None, n: 2 }),
        "{err:?}"
    );
    let err = fit_one_vs_rest(
        CalibrationMethod::Platt,
        &logits[..3],
        3,
        1,
        &[0, 0, 0],
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("class 0: no negative"), "{err}");
    // Positives only with zero weight count as none.
    let err = Isotonic::fit(&[0.0, 1.0], &[false, true], Some(&[1.0, 0.0])).unwrap_err();
    assert!(
        matches!(err, CalibrationError::NoPositives { .. }),
        "{err:?}"
    );
    let ok = fit_one_vs_rest(CalibrationMethod::Platt, &logits, 3, 3, &[0, 1, 2], None);
    assert!(ok.is_ok_and(|c| c.len() == 3));
}

#[test]
fn errors_for_bad_inputs() {
    use CalibrationError::*;
    let e = Platt::fit(&[0.0, 1.0, 2.0], &[true, false], None).unwrap_err();
    assert!(
        matches!(
            e,
            LengthMismatch {
                what: "labels",
                got: 2,
                expected: 3,
                ..
            }
        ),
        "{e:?}"
    );
    let e = Isotonic::fit(&[0.0, 1.0], &[true, false], Some(&[1.0])).unwrap_err();
    assert!(
        matches!(
            e,
            LengthMismatch {
                what: "weights",
                ..
            }
        ),
        "{e:?}"
    );
    let e = Platt::fit(&[0.0, f32::NAN], &[true, false], None).unwrap_err();
    assert!(
        matches!(
            e,
            NonFinite {
                what: "scores",
                index: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("scores[1] is NaN"), "{e}");
    let e = Isotonic::fit(&[f32::INFINITY, 0.0], &[true, false], None).unwrap_err();
    assert!(matches!(e, NonFinite { index: 0, .. }), "{e:?}");
    let e = Platt::fit(&[0.0, 1.0], &[true, false], Some(&[1.0, -1.0])).unwrap_err();
    assert!(matches!(e, BadWeight { index: 1, .. }), "{e:?}");
    let e = Platt::fit(&[], &[], None).unwrap_err();
    assert!(matches!(e, Empty { .. }), "{e:?}");
    let e =
        fit_one_vs_rest(CalibrationMethod::Platt, &[0.0; 4], 2, 2, &[0, 1, 1], None).unwrap_err();
    assert!(matches!(e, LengthMismatch { what: "labels", .. }), "{e:?}");
    let e = fit_one_vs_rest(CalibrationMethod::Platt, &[0.0; 4], 2, 2, &[0, 2], None).unwrap_err();
    assert!(
        matches!(
            e,
            LabelOutOfRange {
                index: 1,
                label: 2,
                k: 2
            }
        ),
        "{e:?}"
    );
    let e = Temperature::fit(&[0.0, f32::NAN], &[0], 1, 2).unwrap_err();
    assert!(
        matches!(
            e,
            NonFinite {
                what: "logits",
                index: 1,
                ..
            }
        ),
        "{e:?}"
    );
    let e = Temperature::fit(&[0.0; 5], &[0, 1], 2, 2).unwrap_err();
    assert!(
        matches!(
            e,
            LengthMismatch {
                what: "logits",
                got: 5,
                expected: 4,
                ..
            }
        ),
        "{e:?}"
    );
    let e = check_rows("logits", &[0.0; 6], 2, 0).unwrap_err();
    assert!(matches!(e, NoClasses { .. }), "{e:?}");
    let e = check_rows("logits", &[0.0, f32::NAN], 1, 2).unwrap_err();
    assert!(
        matches!(
            e,
            NonFinite {
                what: "logits",
                index: 1,
                ..
            }
        ),
        "{e:?}"
    );
    let e = Temperature { t: 1.0 }
        .nll(&[0.0; 4], &[0, 2], 2, 2)
        .unwrap_err();
    assert!(matches!(e, LabelOutOfRange { index: 1, .. }), "{e:?}");
}

#[test]
fn non_finite_values_propagate_as_nan_rows() {
    let logits = [0.0, 1.0, f32::NAN, 0.0, 2.0, 1.0];
    let sm = softmax_rows(&logits, 3, 2);
    assert!(sm[2].is_nan() && sm[3].is_nan() && !sm[0].is_nan() && !sm[5].is_nan());
    assert!(softmax_rows(&[f32::INFINITY, 0.0], 1, 2)[0].is_nan());
    assert_eq!(argmax_rows(&logits, 3, 2), vec![1, 1, 0]);
    let empty = BinaryCalibrator::Isotonic(Isotonic {
        x: vec![],
        y: vec![],
    });
    let p = normalized_calibrated(&[0.0, 1.0], 1, 2, &[empty.clone(), empty]);
    assert!(p.iter().all(|v| v.is_nan()));
    assert_eq!(softmax_rows(&[], 0, 0), Vec::<f32>::new());
}

#[test]
#[should_panic(expected = "logits has 5 values")]
fn softmax_panics_on_a_shape_mismatch() {
    softmax_rows(&[0.0; 5], 2, 2);
}

#[test]
#[should_panic(expected = "1 calibrators for k = 2")]
fn calibrated_argmax_panics_without_one_calibrator_per_class() {
    let cal = BinaryCalibrator::Platt(Platt { a: -1.0, b: 0.0 });
    normalized_calibrated(&[0.0; 4], 2, 2, &[cal]);
}

#[test]
fn serde_forms() {
    let p = BinaryCalibrator::Platt(Platt { a: -1.5, b: 0.25 });
    let j = serde_json::to_string(&p).unwrap();
    assert_eq!(j, r#"{"kind":"platt","a":-1.5,"b":0.25}"#);
    let i = BinaryCalibrator::Isotonic(Isotonic {
        x: vec![0.0, 1.5],
        y: vec![0.0, 0.75],
    });
    let j = serde_json::to_string(&i).unwrap();
    assert_eq!(j, r#"{"kind":"isotonic","x":[0.0,1.5],"y":[0.0,0.75]}"#);
    assert_eq!(serde_json::from_str::<BinaryCalibrator>(&j).unwrap(), i);
    assert_eq!(i.method(), CalibrationMethod::Isotonic);
    assert_eq!(
        serde_json::to_string(&CalibrationMethod::Platt).unwrap(),
        r#""platt""#
    );
    for c in Combiner::ALL {
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            format!("\"{}\"", c.name())
        );
    }
    let t: Temperature = serde_json::from_str(r#"{"t":1.25}"#).unwrap();
    assert_eq!(t, Temperature { t: 1.25 });
}
