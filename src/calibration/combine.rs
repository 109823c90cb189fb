//! Calibration stage -> ensemble: the K one-vs-rest specialists' raw logits
//! for N images (row-major [N, K]) -> [N, K] class probabilities and the
//! predicted class per image, by one of three combiners.
//!
//! * `CalibratedArgmax`: p_k = calibrator_k(logit_k), normalized by the row's
//!   sum (scikit-learn's one-vs-rest `predict_proba`; a row whose p_k are all
//!   0 becomes uniform 1/K); predicts the argmax of the p_k.
//! * `RawArgmax`: predicts the argmax of the raw logits; its probabilities
//!   (for NLL / ECE) are the softmax of the raw logits, so they equal
//!   `SoftmaxLogits`' — the two differ only in name, kept apart because the
//!   reports list the decision rule and the probability model separately.
//! * `SoftmaxLogits`: softmax over the raw specialist logits (scikit-learn
//!   issue #18709); softmax keeps the order, so it predicts the raw argmax.
//!
//! All arithmetic is f64; ties go to the lower class index.

use serde::{Deserialize, Serialize};

use super::{check_matrix, BinaryCalibrator, CalibrationError};

/// How the specialists' outputs become one distribution per image
/// (config values `calibrated-argmax`, `raw-argmax`, `softmax-logits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Combiner {
    CalibratedArgmax,
    RawArgmax,
    SoftmaxLogits,
}

impl Combiner {
    pub const ALL: [Combiner; 3] = [
        Combiner::CalibratedArgmax,
        Combiner::RawArgmax,
        Combiner::SoftmaxLogits,
    ];

    /// The config / report spelling.
    pub fn name(self) -> &'static str {
        match self {
            Combiner::CalibratedArgmax => "calibrated-argmax",
            Combiner::RawArgmax => "raw-argmax",
            Combiner::SoftmaxLogits => "softmax-logits",
        }
    }
}

/// Row-major [n, k] specialist logits -> [n, k] probabilities per the
/// combiner. `calibrators` (one per class, in class order) are used only by
/// `CalibratedArgmax`; the others accept any slice, including an empty one.
///
/// Non-finite values propagate: a row with a NaN logit (or a calibrator
/// returning NaN) comes out NaN. Use [`check_rows`] first to get an error.
///
/// # Panics
/// If `logits.len() != n·k`, or `CalibratedArgmax` gets `calibrators.len() != k`.
pub fn combine(
    combiner: Combiner,
    logits: &[f32],
    n: usize,
    k: usize,
    calibrators: &[BinaryCalibrator],
) -> Vec<f32> {
    assert_shape("logits", logits.len(), n, k);
    if k == 0 {
        return Vec::new();
    }
    match combiner {
        Combiner::CalibratedArgmax => {
            let p = calibrated(logits, k, calibrators);
            let mut out = Vec::with_capacity(p.len());
            for row in p.chunks_exact(k) {
                let sum: f64 = row.iter().sum();
                if sum > 0.0 {
                    out.extend(row.iter().map(|&v| (v / sum) as f32));
                } else if sum == 0.0 {
                    out.extend(std::iter::repeat_n((1.0 / k as f64) as f32, k));
                } else {
                    out.extend(std::iter::repeat_n(f32::NAN, k));
                }
            }
            out
        }
        Combiner::RawArgmax | Combiner::SoftmaxLogits => softmax_rows(logits, n, k),
    }
}

/// Row-major [n, k] specialist logits -> the predicted class per row:
/// argmax of the calibrated p_k for `CalibratedArgmax` (all-zero rows ->
/// class 0, as the uniform distribution's argmax), argmax of the raw logits
/// otherwise. Ties go to the lower index; NaN never wins.
///
/// # Panics
/// As [`combine`].
pub fn predict(
    combiner: Combiner,
    logits: &[f32],
    n: usize,
    k: usize,
    calibrators: &[BinaryCalibrator],
) -> Vec<u32> {
    assert_shape("logits", logits.len(), n, k);
    if k == 0 {
        return Vec::new();
    }
    match combiner {
        Combiner::CalibratedArgmax => calibrated(logits, k, calibrators)
            .chunks_exact(k)
            .map(|row| argmax(row.iter().copied()))
            .collect(),
        Combiner::RawArgmax | Combiner::SoftmaxLogits => argmax_rows(logits, n, k),
    }
}

/// Index of the largest value of each row of a row-major [n, k] matrix;
/// ties go to the lower index, NaN never wins (an all-NaN row gives 0).
///
/// # Panics
/// If `probs.len() != n·k`.
pub fn argmax_rows(probs: &[f32], n: usize, k: usize) -> Vec<u32> {
    assert_shape("probs", probs.len(), n, k);
    if k == 0 {
        return Vec::new();
    }
    probs
        .chunks_exact(k)
        .map(|row| argmax(row.iter().map(|&v| f64::from(v))))
        .collect()
}

/// Row-wise softmax of a row-major [n, k] matrix, computed stably in f64
/// (each row shifted by its maximum). A row with a NaN or infinite logit
/// comes out NaN.
///
/// # Panics
/// If `logits.len() != n·k`.
pub fn softmax_rows(logits: &[f32], n: usize, k: usize) -> Vec<f32> {
    assert_shape("logits", logits.len(), n, k);
    if k == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(logits.len());
    let mut e = vec![0.0f64; k];
    for row in logits.chunks_exact(k) {
        let max = row
            .iter()
            .map(|&v| f64::from(v))
            .fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for (ej, &v) in e.iter_mut().zip(row) {
            *ej = (f64::from(v) - max).exp();
            sum += *ej;
        }
        if row.iter().all(|v| v.is_finite()) {
            out.extend(e.iter().map(|&ej| (ej / sum) as f32));
        } else {
            out.extend(std::iter::repeat_n(f32::NAN, k));
        }
    }
    out
}

/// Checks a row-major [n, k] matrix before [`combine`] and friends: k >= 1,
/// `len == n·k`, every value finite. The error names `what` and the index.
pub fn check_rows(
    what: &'static str,
    values: &[f32],
    n: usize,
    k: usize,
) -> Result<(), CalibrationError> {
    check_matrix(what, values, n, k)
}

fn assert_shape(what: &str, len: usize, n: usize, k: usize) {
    assert!(
        n.checked_mul(k) == Some(len),
        "calibration: {what} has {len} values, expected n·k = {n}·{k}"
    );
}

/// First index of the maximum (ties -> lower index; NaN never wins).
fn argmax(values: impl Iterator<Item = f64>) -> u32 {
    let mut best = (0u32, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i as u32, v);
        }
    }
    best.0
}

/// Unnormalized calibrated probabilities p_k = calibrators[k](logit_k), f64.
fn calibrated(logits: &[f32], k: usize, calibrators: &[BinaryCalibrator]) -> Vec<f64> {
    assert!(
        calibrators.len() == k,
        "calibration: {} calibrators for k = {k} specialists",
        calibrators.len()
    );
    logits
        .chunks_exact(k)
        .flat_map(|row| {
            calibrators
                .iter()
                .zip(row)
                .map(|(cal, &s)| cal.prob_f64(f64::from(s)))
        })
        .collect()
}
