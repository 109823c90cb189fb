//! Synthetic audits with known answers: planted near-duplicates are all
//! found (and nothing else), planted label flips rank at the top, and every
//! `[audit]` field changes what it should.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::features::store::FeatureSet;

const D: usize = 64;
const K: usize = 4;

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// Class means with entries +-1; rows = mean + N(0, 1): same-class cosines
/// are near 0.5, far below any duplicate threshold, and the classes are
/// linearly separable with a wide margin.
fn means(rng: &mut ChaCha8Rng) -> Vec<Vec<f32>> {
    (0..K)
        .map(|_| {
            (0..D)
                .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
                .collect()
        })
        .collect()
}

fn set(split: &str, per_class: usize, means: &[Vec<f32>], rng: &mut ChaCha8Rng) -> FeatureSet {
    let mut s = FeatureSet {
        dataset: "synthetic".into(),
        split: split.into(),
        backbone: "none".into(),
        weights_sha256: "0".into(),
        classes: (0..K).map(|c| format!("class{c}")).collect(),
        keys: Vec::new(),
        labels: Vec::new(),
        dim: D,
        features: Vec::new(),
    };
    for i in 0..per_class * K {
        let c = i % K;
        s.keys.push(format!("{split}/class{c}/{i}.png"));
        s.labels.push(c as u32);
        s.features.extend(means[c].iter().map(|&m| m + normal(rng)));
    }
    s
}

/// Appends a copy of `from`'s row `i` with noise of size `eps` to `to`.
fn plant(
    to: &mut FeatureSet,
    from: &FeatureSet,
    i: usize,
    eps: f32,
    rng: &mut ChaCha8Rng,
) -> String {
    let key = format!("{}/copy-of-{}", to.split, from.keys[i]);
    let row: Vec<f32> = from.features[i * D..(i + 1) * D]
        .iter()
        .map(|&v| v + eps * normal(rng))
        .collect();
    to.keys.push(key.clone());
    to.labels.push(from.labels[i]);
    to.features.extend(row);
    key
}

fn config(overrides: &[&str]) -> crate::config::Config {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    crate::config::Config::from_toml_str("", "(test)", &o).expect("config")
}

struct Data {
    sets: [FeatureSet; 3],
    planted: Vec<(String, String)>,
    flipped: Vec<usize>,
}

fn data() -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let m = means(&mut rng);
    let mut train = set("train", 40, &m, &mut rng);
    let mut val = set("val", 10, &m, &mut rng);
    let mut test = set("test", 10, &m, &mut rng);
    let mut planted = Vec::new();
    for &i in &[3usize, 50, 101] {
        let key = plant(&mut test, &train, i, 0.02, &mut rng);
        planted.push((train.keys[i].clone(), key));
    }
    let key = plant(&mut val, &train, 7, 0.02, &mut rng);
    planted.push((train.keys[7].clone(), key));
    let source = test.clone();
    let key = plant(&mut test, &source, 0, 0.02, &mut rng);
    planted.push((test.keys[0].clone(), key));
    let source = train.clone();
    let key = plant(&mut train, &source, 20, 0.02, &mut rng);
    planted.push((train.keys[20].clone(), key));
    // Label flips: rows of the training split given the next class.
    let flipped = vec![5usize, 30, 66, 90, 131, 150];
    for &i in &flipped {
        train.labels[i] = (train.labels[i] + 1) % K as u32;
    }
    Data {
        sets: [train, val, test],
        planted,
        flipped,
    }
}

fn run(d: &Data, overrides: &[&str]) -> Audit {
    let [t, v, s] = &d.sets;
    audit(
        [t, v, s],
        &config(overrides),
        &Arc::new(AtomicBool::new(false)),
    )
    .expect("audit")
}

#[test]
fn planted_duplicates_are_all_found_and_nothing_else() {
    let d = data();
    let a = run(&d, &[]);
    let mut found: Vec<(String, String)> = a
        .duplicates
        .split_pairs
        .iter()
        .flat_map(|p| p.listed.iter().map(|x| (x.key_a.clone(), x.key_b.clone())))
        .collect();
    let mut want = d.planted.clone();
    found.sort();
    want.sort();
    assert_eq!(found, want);
    assert_eq!(a.duplicates.test_leaked.len(), 3);
    let count = |x: &str, y: &str| {
        a.duplicates
            .split_pairs
            .iter()
            .find(|p| p.split_a == x && p.split_b == y)
            .map(|p| p.pairs)
    };
    assert_eq!(count("train", "train"), Some(1));
    assert_eq!(count("train", "val"), Some(1));
    assert_eq!(count("train", "test"), Some(3));
    assert_eq!(count("test", "test"), Some(1));
    assert_eq!(count("val", "val"), Some(0));
    let leaked: usize = a.duplicates.per_class.iter().map(|c| c.test_leaked).sum();
    assert_eq!(leaked, 3);
    // The pair inside train whose source was later flipped would be a label
    // conflict; row 20 is not flipped, so there is none.
    assert!(a
        .duplicates
        .split_pairs
        .iter()
        .all(|p| p.label_conflicts == 0));
    assert_eq!(a.duplicates.search.index, "exact");
}

#[test]
fn the_approximate_index_finds_the_same_planted_pairs() {
    let d = data();
    let pairs = |a: &Audit| {
        let mut v: Vec<(String, String, usize)> = a
            .duplicates
            .split_pairs
            .iter()
            .flat_map(|p| {
                p.listed
                    .iter()
                    .map(|x| (x.key_a.clone(), x.key_b.clone(), p.pairs))
            })
            .collect();
        v.sort();
        v
    };
    let exact = run(&d, &[]);
    // `auto` with a row limit below train's size, and `approximate` with
    // set cells and probes: the index runs, and finds every planted pair.
    for o in [
        vec!["audit.exact_max_rows=10"],
        vec![
            "audit.index=\"approximate\"",
            "audit.lists=6",
            "audit.probes=2",
        ],
    ] {
        let a = run(&d, &o);
        let s = &a.duplicates.search;
        assert_eq!(s.index, "approximate", "{o:?}");
        assert!(s.lists > 1, "{o:?}: {s:?}");
        assert_eq!(pairs(&a), pairs(&exact), "{o:?}");
        assert_eq!(
            a.duplicates.test_leaked, exact.duplicates.test_leaked,
            "{o:?}"
        );
    }
    let a = run(
        &d,
        &[
            "audit.index=\"approximate\"",
            "audit.lists=6",
            "audit.probes=2",
        ],
    );
    assert_eq!(
        (a.duplicates.search.lists, a.duplicates.search.probes),
        (6, 2)
    );
    // `exact` stays exact whatever the row limit.
    let a = run(&d, &["audit.index=\"exact\"", "audit.exact_max_rows=10"]);
    assert_eq!(a.duplicates.search.index, "exact");
}

#[test]
fn planted_label_flips_rank_at_the_top_and_are_flagged() {
    let d = data();
    let a = run(&d, &[]);
    let e = &a.label_errors;
    let top: Vec<usize> = e.top.iter().take(d.flipped.len()).map(|c| c.row).collect();
    let mut sorted = top.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, d.flipped, "the flips are the least likely labels");
    for c in e.top.iter().take(d.flipped.len()) {
        assert!(c.self_confidence < 0.5 && c.margin < 0.0, "{c:?}");
        assert_ne!(c.given, c.suggested);
    }
    // The confident joint flags most flips (a flip whose true class stays
    // below that class's mean confidence is not flagged) and no clean row.
    let flagged: Vec<usize> = e.top.iter().filter(|c| c.flagged).map(|c| c.row).collect();
    assert!(flagged.len() >= d.flipped.len() - 2, "{flagged:?}");
    assert!(flagged.iter().all(|r| d.flipped.contains(r)), "{flagged:?}");
    assert_eq!(e.flagged, flagged.len());
    assert_eq!(e.folds, 5);
    assert_eq!(e.c_per_fold.len(), 5);
    assert!(e
        .top
        .windows(2)
        .all(|w| w[0].self_confidence <= w[1].self_confidence));
}

#[test]
fn a_near_pair_below_the_default_threshold_is_found_with_a_lower_one() {
    // Two test rows with cosine 0.9 exactly: a and 0.9 a + sqrt(0.19) b, a ⊥ b.
    let mut d = data();
    let test = &mut d.sets[2];
    let mut a = vec![0.0f32; D];
    let mut b = vec![0.0f32; D];
    a[0] = 1.0;
    b[1] = 1.0;
    let c: Vec<f32> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| 0.9 * x + 0.19f32.sqrt() * y)
        .collect();
    for (name, row) in [("near-a", a), ("near-b", c)] {
        test.keys.push(name.into());
        test.labels.push(0);
        test.features.extend(row);
    }
    let tt = |a: &Audit| {
        a.duplicates
            .split_pairs
            .iter()
            .find(|p| p.split_a == "test" && p.split_b == "test")
            .map(|p| {
                p.listed
                    .iter()
                    .any(|x| x.key_a == "near-a" && x.key_b == "near-b")
            })
    };
    assert_eq!(tt(&run(&d, &[])), Some(false));
    let low = run(&d, &["audit.duplicate_cosine=0.89"]);
    assert_eq!(low.settings.duplicate_cosine, 0.89);
    assert_eq!(tt(&low), Some(true));
    assert_eq!(tt(&run(&d, &["audit.duplicate_cosine=0.91"])), Some(false));
}

#[test]
fn folds_and_candidates_per_class_take_effect() {
    let d = data();
    let a = run(&d, &["audit.folds=3", "audit.candidates_per_class=2"]);
    assert_eq!(a.label_errors.folds, 3);
    assert_eq!(a.label_errors.c_per_fold.len(), 3);
    assert!(a
        .label_errors
        .per_class
        .iter()
        .all(|c| c.candidates.len() == 2));
    let b = run(&d, &[]);
    assert!(b
        .label_errors
        .per_class
        .iter()
        .all(|c| c.candidates.len() == 5));
}

#[test]
fn bad_audit_values_are_refused_naming_the_field() {
    for (o, field) in [
        ("audit.duplicate_cosine=0", "audit.duplicate_cosine"),
        ("audit.duplicate_cosine=1.5", "audit.duplicate_cosine"),
        ("audit.folds=1", "audit.folds"),
        ("audit.candidates_per_class=0", "audit.candidates_per_class"),
        ("audit.index=\"hnsw\"", "audit.index"),
        ("audit.exact_max_rows=0", "audit.exact_max_rows"),
        ("audit.lists=-1", "audit.lists"),
        ("audit.probes=0", "audit.probes"),
    ] {
        let err = crate::config::Config::from_toml_str("", "(test)", &[o.to_string()])
            .expect_err(o)
            .to_string();
        assert!(err.contains(field), "{o}: {err}");
    }
    let err = crate::config::Config::from_toml_str("", "(test)", &["audit.fold=3".into()])
        .expect_err("unknown key");
    let err = crate::util::chain::chain(&err);
    assert!(err.contains("fold"), "{err}");
}

#[test]
fn leakage_hook_removes_exactly_the_leaked_test_rows() {
    let d = data();
    let [train, _, test] = &d.sets;
    let k = K;
    // An approach that is right on every row except the leaked ones would
    // show 100 % once they are removed.
    let leaked = duplicates::leaked_rows(train, test, &near::NearSearch::exact(0.95));
    assert_eq!(leaked.len(), 3);
    let mut preds = test.labels.clone();
    for l in &leaked {
        preds[l.row] = (preds[l.row] + 1) % k as u32;
    }
    let probs: Vec<f32> = preds
        .iter()
        .flat_map(|&p| (0..k).map(move |j| if j == p as usize { 1.0 } else { 0.0 }))
        .collect();
    let approach = |name: &str| crate::metrics::compare::ApproachInput {
        name: name.into(),
        description: String::new(),
        probs: probs.clone(),
        preds: preds.clone(),
    };
    let out = leakage::deduplicated(
        train,
        test,
        &near::NearSearch::exact(0.95),
        &[approach("a"), approach("b")],
        200,
        1,
    )
    .expect("metrics")
    .expect("leaked rows");
    assert_eq!(out.rows_left, test.len() - 3);
    assert_eq!(out.approaches[0].summary.accuracy, 1.0);
    assert_eq!(out.pairs.len(), 1);
    let none = leakage::deduplicated(
        train,
        test,
        &near::NearSearch::exact(1.0),
        &[approach("a")],
        10,
        1,
    )
    .expect("metrics");
    assert!(none.is_none(), "no pair reaches cosine 1.0 with noise");
}
