//! Metrics stage, hard-label metrics: predicted class ids (and, for top-k,
//! the probability rows) of one approach on a split -> accuracy, top-k
//! accuracy, macro-F1, balanced accuracy, per-class table, confusion matrix.
//!
//! Definitions (checked against scikit-learn 1.9 in the fixtures):
//! * per class c: precision = tp / #pred(c), recall = tp / #true(c),
//!   F1 = 2·tp / (#pred(c) + #true(c)), each 0 when its denominator is 0
//!   (`precision_recall_fscore_support(labels=range(K), zero_division=0)`);
//! * macro-F1 = mean of the K per-class F1 (a class absent from both labels
//!   and predictions counts as 0, as scikit-learn with `labels=range(K)`);
//! * balanced accuracy = mean recall over the classes PRESENT in the labels
//!   (`balanced_accuracy_score`, not adjusted);
//! * top-k: the rank of the true class is the number of classes with a
//!   strictly higher score plus the number with the same score and a LOWER
//!   index; a hit when rank < k. So top-1 equals the accuracy of `np.argmax`
//!   predictions. scikit-learn's `top_k_accuracy_score` reverses a stable
//!   ascending sort, so among equal scores it ranks the HIGHER index first:
//!   the two agree whenever the true class's score is not tied (the fixtures
//!   store both; with ties ours stays consistent with the argmax predictions
//!   used everywhere else in the crate).

use super::{check_labels, check_probs, check_same_len, MetricError, Result};
use serde::Serialize;

/// Per-class precision / recall / F1 (zero_division = 0) and support (the
/// number of rows whose label is the class), each of length k.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerClass {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub f1: Vec<f64>,
    pub support: Vec<usize>,
}

/// Per-class counts of one prediction vector: true positives, predicted and
/// true occurrences. Shared with the bootstrap, which refills it per resample.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    pub tp: Vec<usize>,
    pub predicted: Vec<usize>,
    pub truth: Vec<usize>,
    pub n: usize,
}

impl Counts {
    /// Counts over all rows (inputs already validated).
    pub fn new(labels: &[u32], preds: &[u32], k: usize) -> Self {
        let mut c = Counts::zeros(k);
        for (&y, &p) in labels.iter().zip(preds) {
            c.add(y as usize, p as usize);
        }
        c
    }

    pub fn zeros(k: usize) -> Self {
        Counts {
            tp: vec![0; k],
            predicted: vec![0; k],
            truth: vec![0; k],
            n: 0,
        }
    }

    pub fn clear(&mut self) {
        self.tp.iter_mut().for_each(|v| *v = 0);
        self.predicted.iter_mut().for_each(|v| *v = 0);
        self.truth.iter_mut().for_each(|v| *v = 0);
        self.n = 0;
    }

    #[inline]
    pub fn add(&mut self, y: usize, p: usize) {
        self.n += 1;
        self.truth[y] += 1;
        self.predicted[p] += 1;
        if y == p {
            self.tp[y] += 1;
        }
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.tp.iter().sum(), self.n)
    }

    pub fn f1(&self, c: usize) -> f64 {
        ratio(2 * self.tp[c], self.predicted[c] + self.truth[c])
    }

    pub fn macro_f1(&self) -> f64 {
        let k = self.tp.len();
        (0..k).map(|c| self.f1(c)).sum::<f64>() / k as f64
    }

    /// Mean recall over the classes with at least one true row.
    pub fn balanced_accuracy(&self) -> f64 {
        let (sum, present) = (0..self.tp.len())
            .filter(|&c| self.truth[c] > 0)
            .fold((0.0, 0usize), |(s, m), c| {
                (s + ratio(self.tp[c], self.truth[c]), m + 1)
            });
        sum / present.max(1) as f64
    }

    pub fn per_class(&self) -> PerClass {
        let k = self.tp.len();
        PerClass {
            precision: (0..k)
                .map(|c| ratio(self.tp[c], self.predicted[c]))
                .collect(),
            recall: (0..k).map(|c| ratio(self.tp[c], self.truth[c])).collect(),
            f1: (0..k).map(|c| self.f1(c)).collect(),
            support: self.truth.clone(),
        }
    }
}

/// a / b, or 0 when b = 0 (scikit-learn's zero_division = 0).
fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn check_pair(labels: &[u32], preds: &[u32], k: usize) -> Result<()> {
    check_labels("labels", labels, k)?;
    check_labels("preds", preds, k)?;
    check_same_len("preds", preds.len(), labels.len())
}

/// Fraction of rows with `preds[i] == labels[i]`.
pub fn accuracy(labels: &[u32], preds: &[u32]) -> Result<f64> {
    if labels.is_empty() {
        return Err(MetricError::Empty { what: "labels" });
    }
    check_same_len("preds", preds.len(), labels.len())?;
    let hits = labels.iter().zip(preds).filter(|(y, p)| y == p).count();
    Ok(hits as f64 / labels.len() as f64)
}

/// Fraction of rows whose true class is among the `top` highest of its
/// probability row (row-major [N, k]); ties rank the lower index first (see
/// the module doc). `top >= k` gives 1.
pub fn top_k_accuracy(labels: &[u32], probs: &[f32], k: usize, top: usize) -> Result<f64> {
    check_labels("labels", labels, k)?;
    if top == 0 {
        return Err(MetricError::ZeroParameter { what: "top-k's k" });
    }
    check_probs(probs, labels.len(), k)?;
    Ok(top_k_unchecked(labels, probs, k, top))
}

pub(crate) fn top_k_unchecked(labels: &[u32], probs: &[f32], k: usize, top: usize) -> f64 {
    let hits = labels
        .iter()
        .zip(probs.chunks_exact(k))
        .filter(|(&y, row)| {
            let y = y as usize;
            let t = row[y];
            let above = row.iter().filter(|&&v| v > t).count();
            let tied_before = row[..y].iter().filter(|&&v| v == t).count();
            above + tied_before < top
        })
        .count();
    hits as f64 / labels.len() as f64
}

/// K x K confusion matrix: `m[true][predicted]` counts.
pub fn confusion(labels: &[u32], preds: &[u32], k: usize) -> Result<Vec<Vec<usize>>> {
    check_pair(labels, preds, k)?;
    let mut m = vec![vec![0usize; k]; k];
    for (&y, &p) in labels.iter().zip(preds) {
        m[y as usize][p as usize] += 1;
    }
    Ok(m)
}

/// Per-class precision / recall / F1 / support over classes 0..k.
pub fn per_class(labels: &[u32], preds: &[u32], k: usize) -> Result<PerClass> {
    check_pair(labels, preds, k)?;
    Ok(Counts::new(labels, preds, k).per_class())
}

/// Unweighted mean of the k per-class F1 scores (zero_division = 0).
pub fn macro_f1(labels: &[u32], preds: &[u32], k: usize) -> Result<f64> {
    check_pair(labels, preds, k)?;
    Ok(Counts::new(labels, preds, k).macro_f1())
}

/// Mean per-class recall over the classes present in `labels`.
pub fn balanced_accuracy(labels: &[u32], preds: &[u32], k: usize) -> Result<f64> {
    check_pair(labels, preds, k)?;
    Ok(Counts::new(labels, preds, k).balanced_accuracy())
}
