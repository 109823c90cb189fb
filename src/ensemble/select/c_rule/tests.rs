//! The C rule: fold mean / SE and the one-SE pick against the numpy oracle
//! (`tests/fixtures/heads/c_rule.json`, `tests/reference/make_c_rule_fixtures.py`),
//! a flat curve where one-se must take a smaller C than best, and the
//! stratified folds.

use super::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    c: Vec<f64>,
    weighting: Vec<String>,
    fold_losses: Vec<Vec<Option<f64>>>,
    mean: Vec<f64>,
    se: Vec<f64>,
    used: Vec<usize>,
    best_mean: usize,
    one_se: usize,
}

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

fn candidates(case: &Case) -> Vec<Candidate> {
    case.fold_losses
        .iter()
        .zip(case.c.iter().zip(&case.weighting))
        .map(|(row, (&c, w))| {
            let v: Vec<f64> = row.iter().map(|x| x.unwrap_or(f64::NAN)).collect();
            let (mean, se, _) = mean_se(&v);
            let weighting = if w == "balanced" {
                ClassWeighting::Balanced
            } else {
                ClassWeighting::None
            };
            Candidate {
                weighting,
                c,
                mean,
                se,
            }
        })
        .collect()
}

#[test]
fn fold_mean_se_and_pick_match_numpy() {
    let f: Fixture =
        serde_json::from_str(include_str!("../../../../tests/fixtures/heads/c_rule.json")).unwrap();
    assert_eq!(f.cases.len(), 4);
    for case in &f.cases {
        for (i, row) in case.fold_losses.iter().enumerate() {
            let v: Vec<f64> = row.iter().map(|x| x.unwrap_or(f64::NAN)).collect();
            let (mean, se, used) = mean_se(&v);
            assert!(
                (mean - case.mean[i]).abs() < 1e-12,
                "{} mean {i}",
                case.name
            );
            assert!((se - case.se[i]).abs() < 1e-12, "{} se {i}", case.name);
            assert_eq!(used, case.used[i]);
        }
        let cands = candidates(case);
        // `best` keeps whatever the whole-split loss chose (here: candidate 0).
        let best = pick(CRule::Best, &cands, 0).unwrap();
        assert_eq!(
            (best.chosen, best.best_mean),
            (0, case.best_mean),
            "{}",
            case.name
        );
        let one = pick(CRule::OneSe, &cands, 0).unwrap();
        assert_eq!(one.chosen, case.one_se, "{}", case.name);
        assert_eq!(one.best_mean, case.best_mean);
        assert!(!one.fallback);
    }
}

#[test]
fn a_flat_minimum_makes_one_se_pick_a_smaller_c() {
    // Loss flat near its minimum at C = 1: 0.401, 0.400, 0.402 within a
    // standard error of 0.01; C = 0.01 is clearly worse.
    let curve = [(0.01, 0.60), (0.1, 0.401), (1.0, 0.400), (10.0, 0.402)];
    let cands: Vec<Candidate> = curve
        .iter()
        .map(|&(c, mean)| Candidate {
            weighting: ClassWeighting::None,
            c,
            mean,
            se: 0.01,
        })
        .collect();
    let best = pick(CRule::Best, &cands, 2).unwrap();
    let one = pick(CRule::OneSe, &cands, 2).unwrap();
    assert_eq!(cands[best.chosen].c, 1.0);
    assert_eq!(cands[one.chosen].c, 0.1);
    assert_eq!(cands[one.best_mean].c, 1.0);
    // With no spread (SE 0) one-se is best; undefined spread falls back.
    let tight: Vec<Candidate> = cands.iter().map(|c| Candidate { se: 0.0, ..*c }).collect();
    assert_eq!(pick(CRule::OneSe, &tight, 2).unwrap().chosen, 2);
    let undefined: Vec<Candidate> = cands
        .iter()
        .map(|c| Candidate { se: f64::NAN, ..*c })
        .collect();
    let p = pick(CRule::OneSe, &undefined, 3).unwrap();
    assert!(p.fallback && p.chosen == 3, "{p:?}");
    assert!(pick(CRule::OneSe, &[], 0).is_none());
}

#[test]
fn folds_are_stratified_balanced_and_seeded() {
    // Classes of 7, 3 and 12 rows, interleaved.
    let labels: Vec<u32> = (0..22u32)
        .map(|i| {
            if i < 14 && i % 2 == 0 {
                0
            } else if i < 6 {
                1
            } else {
                2
            }
        })
        .collect();
    let folds = stratified_folds(&labels, 5, 9);
    assert_eq!(folds.len(), labels.len());
    let mut size = [0usize; 5];
    for class in 0..3u32 {
        let mut per = [0usize; 5];
        for (f, _) in folds.iter().zip(&labels).filter(|(_, &y)| y == class) {
            per[*f] += 1;
            size[*f] += 1;
        }
        let (lo, hi) = (per.iter().min().unwrap(), per.iter().max().unwrap());
        assert!(hi - lo <= 1, "class {class}: {per:?}");
    }
    let (lo, hi) = (size.iter().min().unwrap(), size.iter().max().unwrap());
    assert!(hi - lo <= 1, "{size:?}");
    assert_eq!(folds, stratified_folds(&labels, 5, 9));
    assert_ne!(folds, stratified_folds(&labels, 5, 10));
}
