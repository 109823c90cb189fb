//! Audit stage, near-duplicates and leakage: the cached train / val / test
//! feature sets -> every pair of images whose cosine similarity is at or
//! above `audit.duplicate_cosine`, inside each split and across splits,
//! with their paths and classes; the distribution of nearest-neighbour
//! similarities the threshold is read against; per-class counts; and which
//! evaluation rows have a near-duplicate in train (leakage).

pub use crate::metrics::dedup::Leak;
use serde::Serialize;

use super::near::{NearSearch, SearchUsed};
use super::neighbours::{Found, Unit};
use crate::features::store::FeatureSet;
use crate::metrics::significance::percentile;

/// Pairs listed per pair of splits (all are counted).
pub const MAX_LISTED_PAIRS: usize = 20_000;
/// Quantiles of the nearest-neighbour similarity reported.
pub const QUANTILES: [f64; 6] = [10.0, 50.0, 90.0, 99.0, 99.9, 100.0];

/// One near-duplicate pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair {
    pub key_a: String,
    pub class_a: String,
    pub key_b: String,
    pub class_b: String,
    pub cosine: f64,
}

/// The pairs between two splits (or inside one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitPairs {
    pub split_a: String,
    pub split_b: String,
    /// Every pair at or above the threshold.
    pub pairs: usize,
    /// Of those, pairs whose two images carry different labels.
    pub label_conflicts: usize,
    /// Most similar first, at most [`MAX_LISTED_PAIRS`].
    pub listed: Vec<Pair>,
}

/// How similar each row of `split` is to its nearest training image (the
/// distribution the threshold is chosen against).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NeighbourStats {
    pub split: String,
    pub rows: usize,
    /// (percentile, cosine): the 10th, 50th, 90th, 99th, 99.9th and 100th.
    pub quantiles: Vec<(f64, f64)>,
    /// Rows whose nearest training image is at or above the threshold.
    pub at_or_above: usize,
}

/// Per class: pairs touching it and its evaluation rows leaked from train.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassDuplicates {
    pub class: String,
    /// Pairs inside one split with at least one image of this class.
    pub within_split: usize,
    /// Pairs across splits with at least one image of this class.
    pub across_splits: usize,
    /// Test images of this class with a near-duplicate in train.
    pub test_leaked: usize,
}

/// Everything the near-duplicate search found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Duplicates {
    pub threshold: f64,
    /// The search that ran against the training split (the largest).
    pub search: SearchUsed,
    pub nearest_train: Vec<NeighbourStats>,
    pub split_pairs: Vec<SplitPairs>,
    pub per_class: Vec<ClassDuplicates>,
    /// Test rows with a near-duplicate in train, and that neighbour.
    pub test_leaked: Vec<Leak>,
}

/// Which rows of `eval` have a near-duplicate (cosine >= the threshold) in
/// `train`: one entry per such row, in row order. The hook `compare` uses.
pub fn leaked_rows(train: &FeatureSet, eval: &FeatureSet, near: &NearSearch) -> Vec<Leak> {
    let t = Unit::new(&train.features, train.len(), train.dim);
    let e = Unit::new(&eval.features, eval.len(), eval.dim);
    leaks(&near.run(&e, &t, false), train, eval)
}

fn leaks(found: &[Found], train: &FeatureSet, eval: &FeatureSet) -> Vec<Leak> {
    found
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.above.is_empty())
        .filter_map(|(row, f)| {
            f.nearest.map(|(j, s)| Leak {
                row,
                key: eval.keys[row].clone(),
                train_key: train.keys[j].clone(),
                cosine: f64::from(s).min(1.0),
            })
        })
        .collect()
}

/// The near-duplicate audit of three splits (train first).
pub fn find_duplicates(sets: [&FeatureSet; 3], near: &NearSearch) -> Duplicates {
    let units: Vec<Unit> = sets
        .iter()
        .map(|s| Unit::new(&s.features, s.len(), s.dim))
        .collect();
    let mut split_pairs = Vec::new();
    let mut nearest_train = Vec::new();
    let mut test_leaked = Vec::new();
    let k = sets[0].classes.len();
    let mut per_class: Vec<ClassDuplicates> = sets[0]
        .classes
        .iter()
        .map(|c| ClassDuplicates {
            class: c.clone(),
            within_split: 0,
            across_splits: 0,
            test_leaked: 0,
        })
        .collect();
    for a in 0..3 {
        for b in a..3 {
            let found = near.run(&units[b], &units[a], a == b);
            if a == 0 {
                nearest_train.push(stats(sets[b], &found));
            }
            if a == 0 && b == 2 {
                test_leaked = leaks(&found, sets[0], sets[2]);
                for l in &test_leaked {
                    per_class[sets[2].labels[l.row] as usize].test_leaked += 1;
                }
            }
            let sp = pairs(sets[a], sets[b], &found, &mut per_class, a == b, k);
            split_pairs.push(sp);
        }
    }
    Duplicates {
        threshold: near.threshold,
        search: near.used(sets[0].len()),
        nearest_train,
        split_pairs,
        per_class,
        test_leaked,
    }
}

fn stats(set: &FeatureSet, found: &[Found]) -> NeighbourStats {
    let mut sims: Vec<f64> = found
        .iter()
        .filter_map(|f| f.nearest.map(|(_, s)| f64::from(s)))
        .collect();
    sims.sort_by(f64::total_cmp);
    NeighbourStats {
        split: set.split.clone(),
        rows: set.len(),
        quantiles: if sims.is_empty() {
            Vec::new()
        } else {
            QUANTILES
                .iter()
                .map(|&q| (q, percentile(&sims, q)))
                .collect()
        },
        at_or_above: found.iter().filter(|f| !f.above.is_empty()).count(),
    }
}

/// `found[i]` are the rows of `a` near row i of `b`.
fn pairs(
    a: &FeatureSet,
    b: &FeatureSet,
    found: &[Found],
    per_class: &mut [ClassDuplicates],
    same: bool,
    k: usize,
) -> SplitPairs {
    let mut all: Vec<(usize, usize, f32)> = Vec::new();
    for (i, f) in found.iter().enumerate() {
        // Inside one split, list (lower row, higher row).
        all.extend(
            f.above
                .iter()
                .map(|&(j, s)| if same { (i, j, s) } else { (j, i, s) }),
        );
    }
    let mut conflicts = 0;
    for &(j, i, _) in &all {
        let (ca, cb) = (a.labels[j] as usize, b.labels[i] as usize);
        conflicts += usize::from(ca != cb);
        for c in [ca, cb].into_iter().take(if ca == cb { 1 } else { 2 }) {
            if c < k {
                let pc = &mut per_class[c];
                if same {
                    pc.within_split += 1;
                } else {
                    pc.across_splits += 1;
                }
            }
        }
    }
    all.sort_by(|x, y| y.2.total_cmp(&x.2).then(x.0.cmp(&y.0)).then(x.1.cmp(&y.1)));
    let listed = all
        .iter()
        .take(MAX_LISTED_PAIRS)
        .map(|&(j, i, s)| Pair {
            key_a: a.keys[j].clone(),
            class_a: a.classes[a.labels[j] as usize].clone(),
            key_b: b.keys[i].clone(),
            class_b: b.classes[b.labels[i] as usize].clone(),
            cosine: f64::from(s).min(1.0),
        })
        .collect();
    SplitPairs {
        split_a: a.split.clone(),
        split_b: b.split.clone(),
        pairs: all.len(),
        label_conflicts: conflicts,
        listed,
    }
}
