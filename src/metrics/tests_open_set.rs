//! Tests of the open-set figures against scikit-learn and an explicit AURC
//! loop (`tests/fixtures/metrics/open_set.json`, written by
//! `tests/reference/make_open_set_fixtures.py`), plus cases with known answers.

use super::open_set::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    known: Vec<f32>,
    unknown: Vec<f32>,
    known_correct: Vec<bool>,
    auroc: f64,
    fpr_at_95_tpr: f64,
    aurc: f64,
    aurc_tol: f64,
}

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

fn input(known: Vec<f32>, unknown: Vec<f32>, correct: Vec<bool>) -> OpenSetInput {
    OpenSetInput {
        approach: "a".into(),
        score: "max-probability".into(),
        known,
        known_correct: correct,
        unknown,
    }
}

#[test]
fn figures_match_scikit_learn_and_the_explicit_loop() {
    let text = include_str!("../../tests/fixtures/metrics/open_set.json");
    let f: Fixture = serde_json::from_str(text).unwrap();
    assert_eq!(f.cases.len(), 2);
    for c in f.cases {
        let r = open_set(&input(c.known, c.unknown, c.known_correct)).unwrap();
        assert!(
            (r.auroc - c.auroc).abs() < 1e-9,
            "{}: {} vs {}",
            c.name,
            r.auroc,
            c.auroc
        );
        assert_eq!(r.fpr_at_95_tpr, c.fpr_at_95_tpr, "{}", c.name);
        assert!(
            (r.aurc - c.aurc).abs() <= c.aurc_tol,
            "{}: {} vs {} ± {}",
            c.name,
            r.aurc,
            c.aurc,
            c.aurc_tol
        );
        assert_eq!(r.risk_coverage.last().unwrap().0, 1.0);
        let total: usize = r.known_hist.iter().chain(&r.unknown_hist).sum();
        assert_eq!(
            total,
            r.known_hist.iter().sum::<usize>() + r.unknown_hist.iter().sum::<usize>()
        );
    }
}

#[test]
fn a_far_away_unknown_class_is_separated_and_a_twin_is_not() {
    let known: Vec<f32> = (0..200).map(|i| 0.6 + 0.4 * (i as f32 / 200.0)).collect();
    let far: Vec<f32> = (0..50).map(|i| 0.05 + 0.1 * (i as f32 / 50.0)).collect();
    let correct = vec![true; 200];
    let r = open_set(&input(known.clone(), far, correct.clone())).unwrap();
    assert_eq!((r.auroc, r.fpr_at_95_tpr), (1.0, 0.0));
    // Unknown rows drawn like the known ones: AUROC ~ 0.5.
    let twin: Vec<f32> = known.iter().step_by(4).copied().collect();
    let r = open_set(&input(known, twin, correct)).unwrap();
    assert!((r.auroc - 0.5).abs() < 0.05, "{}", r.auroc);
    assert_eq!(r.aurc, 0.0, "no errors, no risk");
}

#[test]
fn aurc_rewards_ranking_errors_last() {
    let score: Vec<f32> = (0..10).map(|i| 1.0 - i as f32 / 10.0).collect();
    let mut last = vec![true; 10];
    last[9] = false; // the least confident row is the error
    let mut first = vec![true; 10];
    first[0] = false;
    let (a_last, a_first) = (aurc(&score, &last), aurc(&score, &first));
    // Error last: only coverage 10/10 has risk 1/10 -> AURC = 0.1 / 10.
    assert!((a_last - 0.01).abs() < 1e-12, "{a_last}");
    // Error first: risk 1/i at every coverage -> H_10 / 10.
    let h10: f64 = (1..=10).map(|i| 1.0 / i as f64).sum();
    assert!((a_first - h10 / 10.0).abs() < 1e-12, "{a_first}");
    // All tied: the error spread evenly, the mean of every order.
    let tied = vec![0.5f32; 10];
    let spread: f64 = (1..=10).map(|i| (i as f64 / 10.0) / i as f64).sum::<f64>() / 10.0;
    assert!((aurc(&tied, &first) - spread).abs() < 1e-12);
    assert_eq!(aurc(&tied, &first), aurc(&tied, &last));
}

#[test]
fn the_auroc_difference_interval_and_thresholds() {
    let known: Vec<f32> = (0..120).map(|i| (i as f32 * 0.37).sin() + 1.0).collect();
    let unknown: Vec<f32> = (0..40).map(|i| (i as f32 * 0.91).cos()).collect();
    let a = input(known.clone(), unknown.clone(), vec![true; 120]);
    let same = auroc_difference(&a, &a, 200, 1).unwrap();
    assert_eq!((same.observed, same.low, same.high), (0.0, 0.0, 0.0));
    let worse = input(
        known.iter().map(|v| v * 0.0 + 0.5).collect(),
        unknown,
        vec![true; 120],
    );
    let d = auroc_difference(&a, &worse, 500, 1).unwrap();
    assert!(
        d.observed > 0.1 && d.low > 0.0 && d.low <= d.observed && d.observed <= d.high,
        "{d:?}"
    );
    let t = threshold_at_coverage(&known, 0.9).unwrap();
    let kept = known.iter().filter(|&&v| v >= t).count();
    assert!((108..=110).contains(&kept), "{kept}");
    assert_eq!(threshold_at_coverage(&known, 1.5), None);
    let e = open_set(&input(vec![], vec![0.1], vec![])).unwrap_err();
    assert!(e.to_string().contains("known rows"), "{e}");
}
