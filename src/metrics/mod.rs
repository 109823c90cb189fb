//! Metrics stage: predictions / probabilities of each approach on a split ->
//! numbers for compare / score / report.
//!
//! Sits after `ensemble` (which produces, for every approach, an [N, K]
//! probability matrix and the predicted class of each row) and before the
//! report. Everything is plain f64 arithmetic on slices; inputs are the
//! crate's usual f32 row-major `[N, K]` probabilities, `u32` class ids and
//! `bool` one-vs-rest targets.
//!
//! * [`classification`]: accuracy, top-k accuracy, macro-F1, balanced
//!   accuracy, per-class precision / recall / F1 / support, confusion matrix.
//! * [`probabilistic`]: NLL (eps = [`NLL_EPS`] = 1e-15) and the multiclass
//!   Brier score (sum over classes, never halved).
//! * [`reliability`]: ECE / MCE in percent with equal-width bins and the
//!   per-bin table for reliability diagrams.
//! * [`binary`]: AUROC, average precision and Brier of one specialist.
//! * [`significance`]: McNemar's exact test, a seeded paired bootstrap, and a
//!   plain-sentence verdict.
//! * [`intervals`]: paired-bootstrap intervals on ECE, MCE, NLL, Brier and
//!   per-class F1 of every approach and on every pair's differences.
//!
//! [`summarize`] computes the headline numbers of one approach on one split.
//! Every function validates its inputs and returns a [`MetricError`] naming
//! the bad argument; nothing panics on data. The fixtures in
//! `tests/fixtures/metrics/` come from `tests/reference/make_metric_fixtures.py`
//! (numpy / scipy / scikit-learn); the module docs say where a definition
//! differs from scikit-learn's and why.

pub mod binary;
pub mod binomial;
pub mod calibration_uncertainty;
pub mod classification;
pub mod compare;
pub mod dedup;
pub mod equivalence;
pub mod intervals;
pub mod open_set;
pub mod probabilistic;
pub mod reliability;
pub mod reliability_extra;
pub mod shift;
pub mod significance;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_intervals;
#[cfg(test)]
mod tests_open_set;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_reliability_extra;
#[cfg(test)]
mod tests_shift;
#[cfg(test)]
mod tests_uncertainty;

pub use binary::{binary_scores, one_vs_rest, BinaryScores};
pub use calibration_uncertainty::{
    calibration_uncertainty, paired_calibration_bootstrap, CalibrationDiff, CalibrationUncertainty,
};
pub use classification::{
    accuracy, balanced_accuracy, confusion, macro_f1, per_class, top_k_accuracy, PerClass,
};
pub use probabilistic::{brier, nll, NLL_EPS};
pub use reliability::{calibration_error, Calibration, ReliabilityBin};
pub use significance::{
    mcnemar_exact, mcnemar_p_value, paired_bootstrap, verdict, Bootstrap, Interval, McNemar, ALPHA,
    RESAMPLES_DEFAULT,
};

use serde::Serialize;

/// k of the `top5` field of [`Summary`].
pub const TOP_K_DEFAULT: usize = 5;
/// Number of equal-width bins of the ECE / MCE in [`Summary`] (Guo et al. 2017).
pub const ECE_BINS: usize = 15;
/// How far a probability row's sum may be from 1 (rows are f32 softmax or
/// normalized one-vs-rest outputs, which sum to 1 within a few f32 ulps).
pub const ROW_SUM_TOLERANCE: f64 = 1e-3;

/// Why a metric could not be computed: always names the argument at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    #[error("{what} is empty: a metric needs at least one row")]
    Empty { what: &'static str },
    #[error("the number of classes k must be at least 1")]
    NoClasses,
    #[error("{what} must be at least 1")]
    ZeroParameter { what: &'static str },
    #[error("length mismatch: {what} has {got} values, expected {expected}")]
    LengthMismatch {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("{what}[{index}] = {value} is not a class id (k = {k} classes)")]
    ClassOutOfRange {
        what: &'static str,
        index: usize,
        value: u32,
        k: usize,
    },
    #[error("{what}[{index}] is {value}, not a finite number")]
    NonFinite {
        what: &'static str,
        index: usize,
        value: f32,
    },
    #[error("{what}[{index}] = {value} is not a probability in [0, 1]")]
    NotProbability {
        what: &'static str,
        index: usize,
        value: f32,
    },
    #[error("probability row {row} sums to {sum}, not 1 (tolerance {ROW_SUM_TOLERANCE})")]
    RowSum { row: usize, sum: f64 },
}

pub type Result<T, E = MetricError> = std::result::Result<T, E>;

/// Headline numbers of one approach on one split. Fractions are in [0, 1]
/// except `ece` and `mce`, which are in percent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub k: usize,
    /// Fraction of rows with `preds == labels`.
    pub accuracy: f64,
    /// Top-[`TOP_K_DEFAULT`] accuracy from the probabilities (ties: lower index first).
    pub top5: f64,
    /// Macro-F1 over all k classes, zero_division = 0.
    pub macro_f1: f64,
    /// Mean recall over the classes present in `labels`.
    pub balanced_accuracy: f64,
    /// Mean −ln(max(p_true, 1e-15)).
    pub nll: f64,
    /// Mean over rows of Σ_k (p_k − 1[y = k])², in [0, 2].
    pub brier: f64,
    /// Expected calibration error, [`ECE_BINS`] bins, percent.
    pub ece: f64,
    /// Maximum calibration error over the non-empty bins, percent.
    pub mce: f64,
    /// Classwise ECE (every class's probability, [`ECE_BINS`] bins), percent.
    pub classwise_ece: f64,
    /// Adaptive ECE (equal-mass bins over the top confidence), percent.
    pub adaptive_ece: f64,
}

/// All headline numbers of one approach: `labels` and `preds` have N class
/// ids below `k`, `probs` is row-major [N, k] (rows sum to 1 within
/// [`ROW_SUM_TOLERANCE`]). Accuracy, macro-F1 and balanced accuracy use
/// `preds`; top-5, NLL, Brier and the calibration errors use `probs` (the ECE
/// scores the argmax of each row, whatever `preds` says).
pub fn summarize(labels: &[u32], probs: &[f32], preds: &[u32], k: usize) -> Result<Summary> {
    check_labels("labels", labels, k)?;
    check_labels("preds", preds, k)?;
    check_same_len("preds", preds.len(), labels.len())?;
    check_probs(probs, labels.len(), k)?;
    let counts = classification::Counts::new(labels, preds, k);
    let calib = reliability::calibration_unchecked(labels, probs, k, ECE_BINS);
    Ok(Summary {
        n: labels.len(),
        k,
        accuracy: counts.accuracy(),
        top5: classification::top_k_unchecked(labels, probs, k, TOP_K_DEFAULT),
        macro_f1: counts.macro_f1(),
        balanced_accuracy: counts.balanced_accuracy(),
        nll: probabilistic::nll_unchecked(labels, probs, k),
        brier: probabilistic::brier_unchecked(labels, probs, k),
        ece: calib.ece,
        mce: calib.mce,
        classwise_ece: reliability_extra::classwise_unchecked(labels, probs, k, ECE_BINS),
        adaptive_ece: reliability_extra::adaptive_unchecked(labels, probs, k, ECE_BINS),
    })
}

// ---------------------------------------------------------------- validation

pub(crate) fn check_same_len(what: &'static str, got: usize, expected: usize) -> Result<()> {
    if got != expected {
        return Err(MetricError::LengthMismatch {
            what,
            got,
            expected,
        });
    }
    Ok(())
}

/// Non-empty, k ≥ 1, every id below k.
pub(crate) fn check_labels(what: &'static str, ids: &[u32], k: usize) -> Result<()> {
    if k == 0 {
        return Err(MetricError::NoClasses);
    }
    if ids.is_empty() {
        return Err(MetricError::Empty { what });
    }
    match ids.iter().position(|&v| v as usize >= k) {
        Some(index) => Err(MetricError::ClassOutOfRange {
            what,
            index,
            value: ids[index],
            k,
        }),
        None => Ok(()),
    }
}

/// Finite values in [0, 1].
pub(crate) fn check_unit_values(what: &'static str, values: &[f32]) -> Result<()> {
    for (index, &value) in values.iter().enumerate() {
        if !value.is_finite() {
            return Err(MetricError::NonFinite { what, index, value });
        }
        if !(0.0..=1.0).contains(&value) {
            return Err(MetricError::NotProbability { what, index, value });
        }
    }
    Ok(())
}

/// `probs` is [n, k] with finite values in [0, 1] and rows summing to ~1.
pub(crate) fn check_probs(probs: &[f32], n: usize, k: usize) -> Result<()> {
    check_same_len("probs", probs.len(), n * k)?;
    check_unit_values("probs", probs)?;
    for (row, r) in probs.chunks_exact(k).enumerate() {
        let sum: f64 = r.iter().map(|&v| f64::from(v)).sum();
        if (sum - 1.0).abs() > ROW_SUM_TOLERANCE {
            return Err(MetricError::RowSum { row, sum });
        }
    }
    Ok(())
}

/// Index of the first maximum of a row (ties -> lower index, as `np.argmax`).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate().skip(1) {
        if v > row[best] {
            best = i;
        }
    }
    best
}
