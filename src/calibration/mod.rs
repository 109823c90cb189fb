//! Calibration stage: raw head scores on held-out data -> calibrated probabilities.
//!
//! Sits between `heads` (linear specialists and the multiclass softmax head,
//! scored on the calibration split) and `ensemble` (which combines the
//! specialists' outputs and records the fitted parameters in its manifest).
//!
//! * [`Platt`]: p = 1 / (1 + exp(a·s + b)) per binary specialist (Platt 1999,
//!   smoothed targets, Newton with backtracking after Lin, Lin & Weng 2007).
//! * [`Isotonic`]: pool-adjacent-violators with ties pooled, linear
//!   interpolation between thresholds, clipped outside (scikit-learn's
//!   `IsotonicRegression(out_of_bounds='clip', y_min=0, y_max=1)`).
//! * [`Temperature`]: one T > 0 for the multiclass head (Guo et al. 2017).
//! * [`ScoreMap`]: vector scaling and Dirichlet calibration of the whole
//!   [N, K] score vector (softmax(W·x + b), fitted by multiclass NLL).
//! * [`JointCalibration`]: every [`Combiner`] of the specialists fitted on one
//!   calibration split; [`calibrate`] picks one by cross-validated NLL
//!   inside that split.
//!
//! Everything is computed in f64; inputs and outputs are f32 like the heads.
//! Fits (and [`check_rows`]) return a [`CalibrationError`] naming the bad
//! input (and the class, via [`fit_one_vs_rest`]); applying a fitted
//! calibrator never fails: NaN inputs give NaN outputs, and the row-matrix
//! functions panic only when `len != n·k` (a caller bug, not data).
//! The fixtures in `tests/fixtures/calibration/` come from
//! `tests/reference/make_calibration_fixtures.py` (numpy/scipy/scikit-learn).

pub mod choose;
mod combine;
mod isotonic;
pub mod joint;
mod platt;
pub mod score_map;
mod temperature;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_choose;
#[cfg(test)]
mod tests_joint;
#[cfg(test)]
mod tests_props;

pub use choose::{calibrate, Candidate, LambdaEdge, LambdaPoint, Selection};
pub use combine::{argmax_rows, check_rows, normalized_calibrated, softmax_rows, Combiner};
pub use isotonic::Isotonic;
pub use joint::{JointCalibration, JointParams};
pub use platt::Platt;
pub use score_map::{MapKind, ScoreMap};
pub use temperature::{Temperature, T_MAX, T_MIN};

use serde::{Deserialize, Serialize};

/// Why a calibrator could not be fitted or applied. `class` is `Some(k)` when
/// the error arose fitting specialist `k` (see [`fit_one_vs_rest`]).
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("{}no positive sample (of {n} with nonzero weight) in the calibration set; cannot calibrate a binary specialist", class_prefix(*.class))]
    NoPositives { class: Option<u32>, n: usize },
    #[error("{}no negative sample (of {n} with nonzero weight) in the calibration set; cannot calibrate a binary specialist", class_prefix(*.class))]
    NoNegatives { class: Option<u32>, n: usize },
    #[error("{}empty calibration set", class_prefix(*.class))]
    Empty { class: Option<u32> },
    #[error("{}length mismatch: {what} has {got} values, expected {expected}", class_prefix(*.class))]
    LengthMismatch {
        class: Option<u32>,
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("{}{what}[{index}] is {value}, not a finite number", class_prefix(*.class))]
    NonFinite {
        class: Option<u32>,
        what: &'static str,
        index: usize,
        value: f32,
    },
    #[error("{}weights[{index}] is {value}; weights must be finite and >= 0", class_prefix(*.class))]
    BadWeight {
        class: Option<u32>,
        index: usize,
        value: f32,
    },
    #[error("labels[{index}] is class {label}, but there are only {k} classes")]
    LabelOutOfRange { index: usize, label: u32, k: usize },
    #[error("{what}: need k >= 1 columns, got k = 0")]
    NoClasses { what: &'static str },
    #[error("temperature {t} is not a finite number > 0")]
    BadTemperature { t: f64 },
    #[error("{}Platt fit did not converge: {reason}", class_prefix(*.class))]
    NoConvergence { class: Option<u32>, reason: String },
}

fn class_prefix(class: Option<u32>) -> String {
    match class {
        Some(c) => format!("class {c}: "),
        None => String::new(),
    }
}

impl CalibrationError {
    /// The same error, naming class `k` (used by [`fit_one_vs_rest`]).
    pub fn for_class(mut self, k: u32) -> Self {
        use CalibrationError::*;
        match &mut self {
            NoPositives { class, .. }
            | NoNegatives { class, .. }
            | Empty { class }
            | LengthMismatch { class, .. }
            | NonFinite { class, .. }
            | BadWeight { class, .. }
            | NoConvergence { class, .. } => *class = Some(k),
            LabelOutOfRange { .. } | NoClasses { .. } | BadTemperature { .. } => {}
        }
        self
    }
}

/// Which binary calibrator the specialists get (config value: `platt` or
/// `isotonic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibrationMethod {
    Platt,
    Isotonic,
}

/// A fitted binary calibrator; serialized as `{"kind": "platt", "a": .., "b": ..}`
/// or `{"kind": "isotonic", "x": [..], "y": [..]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BinaryCalibrator {
    Platt(Platt),
    Isotonic(Isotonic),
}

impl BinaryCalibrator {
    /// Fits `method` on held-out raw scores and binary labels (optional
    /// nonnegative sample weights). Both labels must occur with nonzero weight.
    pub fn fit(
        method: CalibrationMethod,
        scores: &[f32],
        labels: &[bool],
        weights: Option<&[f32]>,
    ) -> Result<Self, CalibrationError> {
        Ok(match method {
            CalibrationMethod::Platt => Self::Platt(Platt::fit(scores, labels, weights)?),
            CalibrationMethod::Isotonic => Self::Isotonic(Isotonic::fit(scores, labels, weights)?),
        })
    }

    pub fn method(&self) -> CalibrationMethod {
        match self {
            Self::Platt(_) => CalibrationMethod::Platt,
            Self::Isotonic(_) => CalibrationMethod::Isotonic,
        }
    }

    /// Calibrated probability of the positive class for raw score `s`.
    pub fn prob(&self, s: f32) -> f32 {
        self.prob_f64(f64::from(s)) as f32
    }

    /// [`Self::prob`] in f64 (used by the combiners).
    pub fn prob_f64(&self, s: f64) -> f64 {
        match self {
            Self::Platt(p) => p.prob_f64(s),
            Self::Isotonic(i) => i.prob_f64(s),
        }
    }
}

/// Fits one binary calibrator per class on row-major [N, K] specialist logits
/// (column `k` = specialist `k`) against multiclass labels (`labels[i] == k`
/// is the positive class of specialist `k`). Errors name the class.
pub fn fit_one_vs_rest(
    method: CalibrationMethod,
    logits: &[f32],
    n: usize,
    k: usize,
    labels: &[u32],
    weights: Option<&[f32]>,
) -> Result<Vec<BinaryCalibrator>, CalibrationError> {
    check_matrix("logits", logits, n, k)?;
    check_len(None, "labels", labels.len(), n)?;
    check_labels(labels, k)?;
    (0..k)
        .map(|c| {
            let scores: Vec<f32> = logits.iter().skip(c).step_by(k).copied().collect();
            let y: Vec<bool> = labels.iter().map(|&l| l as usize == c).collect();
            BinaryCalibrator::fit(method, &scores, &y, weights).map_err(|e| e.for_class(c as u32))
        })
        .collect()
}

// ---------------------------------------------------------------- validation shared by the fits

pub(crate) fn check_len(
    class: Option<u32>,
    what: &'static str,
    got: usize,
    expected: usize,
) -> Result<(), CalibrationError> {
    if got != expected {
        return Err(CalibrationError::LengthMismatch {
            class,
            what,
            got,
            expected,
        });
    }
    Ok(())
}

pub(crate) fn check_finite(what: &'static str, values: &[f32]) -> Result<(), CalibrationError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(CalibrationError::NonFinite {
            class: None,
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Row-major [n, k] matrix: k >= 1, len == n·k, all finite.
pub(crate) fn check_matrix(
    what: &'static str,
    values: &[f32],
    n: usize,
    k: usize,
) -> Result<(), CalibrationError> {
    if k == 0 {
        return Err(CalibrationError::NoClasses { what });
    }
    let expected = n.checked_mul(k).ok_or(CalibrationError::LengthMismatch {
        class: None,
        what,
        got: values.len(),
        expected: usize::MAX,
    })?;
    check_len(None, what, values.len(), expected)?;
    check_finite(what, values)
}

pub(crate) fn check_labels(labels: &[u32], k: usize) -> Result<(), CalibrationError> {
    match labels.iter().position(|&l| l as usize >= k) {
        Some(index) => Err(CalibrationError::LabelOutOfRange {
            index,
            label: labels[index],
            k,
        }),
        None => Ok(()),
    }
}

/// Checked binary calibration data in f64: samples with zero weight dropped.
pub(crate) struct BinaryData {
    pub s: Vec<f64>,
    pub y: Vec<bool>,
    pub w: Vec<f64>,
    /// Total weight of the positives / negatives.
    pub w_pos: f64,
    pub w_neg: f64,
}

impl BinaryData {
    pub fn new(
        scores: &[f32],
        labels: &[bool],
        weights: Option<&[f32]>,
    ) -> Result<Self, CalibrationError> {
        let n = scores.len();
        check_len(None, "labels", labels.len(), n)?;
        if let Some(w) = weights {
            check_len(None, "weights", w.len(), n)?;
        }
        if n == 0 {
            return Err(CalibrationError::Empty { class: None });
        }
        check_finite("scores", scores)?;
        let mut d = BinaryData {
            s: Vec::with_capacity(n),
            y: Vec::with_capacity(n),
            w: Vec::with_capacity(n),
            w_pos: 0.0,
            w_neg: 0.0,
        };
        for i in 0..n {
            let wi = match weights {
                Some(w) => w[i],
                None => 1.0,
            };
            if !(wi.is_finite() && wi >= 0.0) {
                return Err(CalibrationError::BadWeight {
                    class: None,
                    index: i,
                    value: wi,
                });
            }
            if wi == 0.0 {
                continue;
            }
            let wi = f64::from(wi);
            d.s.push(f64::from(scores[i]));
            d.y.push(labels[i]);
            d.w.push(wi);
            if labels[i] {
                d.w_pos += wi;
            } else {
                d.w_neg += wi;
            }
        }
        let kept = d.s.len();
        if kept == 0 {
            return Err(CalibrationError::Empty { class: None });
        }
        if d.w_pos == 0.0 {
            return Err(CalibrationError::NoPositives {
                class: None,
                n: kept,
            });
        }
        if d.w_neg == 0.0 {
            return Err(CalibrationError::NoNegatives {
                class: None,
                n: kept,
            });
        }
        Ok(d)
    }
}
