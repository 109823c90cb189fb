//! Calibration stage -> ensemble: the combiners that turn the K one-vs-rest
//! specialists' raw logits for N images (row-major [N, K]) into one
//! distribution per image (fitted in [`super::joint`]), and the row-matrix
//! helpers they share: normalised per-class calibrated probabilities,
//! softmax, argmax.
//!
//! All arithmetic is f64; ties go to the lower class index.

use crate::util::choice::{choice_serde, Choice};

use super::{check_matrix, BinaryCalibrator, CalibrationError};

/// How the specialists' outputs become one distribution per image (config
/// and report spelling in its [`Choice`] table; see [`super::joint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combiner {
    /// Platt per specialist, normalised by the row's sum.
    Platt,
    /// Isotonic per specialist, normalised by the row's sum.
    Isotonic,
    /// One temperature on ln of the normalised Platt probabilities.
    PlattTemperature,
    /// softmax(a ⊙ s + b) over the raw logits.
    VectorScaling,
    /// softmax(W ln p + b) over the normalised Platt probabilities (ODIR).
    Dirichlet,
    /// softmax over the raw logits (nothing fitted).
    SoftmaxLogits,
}

impl Combiner {
    /// Every combiner, in the order reports list them and ties are broken.
    pub const ALL: [Combiner; 6] = [
        Combiner::Dirichlet,
        Combiner::VectorScaling,
        Combiner::PlattTemperature,
        Combiner::Platt,
        Combiner::Isotonic,
        Combiner::SoftmaxLogits,
    ];

    /// One line for people.
    pub fn description(self) -> &'static str {
        match self {
            Combiner::Platt => "Platt per specialist, normalised by the sum",
            Combiner::Isotonic => "isotonic per specialist, normalised by the sum",
            Combiner::PlattTemperature => "normalised Platt, then one temperature",
            Combiner::VectorScaling => "vector scaling of the logits (softmax(a*s+b))",
            Combiner::Dirichlet => "Dirichlet calibration (ODIR) of the normalised Platt",
            Combiner::SoftmaxLogits => "softmax over raw logits",
        }
    }
}

impl Choice for Combiner {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("platt", Combiner::Platt),
        ("isotonic", Combiner::Isotonic),
        ("platt-temperature", Combiner::PlattTemperature),
        ("vector-scaling", Combiner::VectorScaling),
        ("dirichlet", Combiner::Dirichlet),
        ("softmax-logits", Combiner::SoftmaxLogits),
    ];
    const UNKNOWN: &'static str = "unknown combiner";
    /// `raw-argmax`: the old name of `softmax-logits` (the same predictions
    /// and probabilities).
    const ALIASES: &'static [(&'static str, Self)] = &[("raw-argmax", Combiner::SoftmaxLogits)];
}
choice_serde!(Combiner);

/// Row-major `[n, k]` logits -> `calibrators[k](logit_k)`, normalised by the
/// row's sum (scikit-learn's one-vs-rest `predict_proba`; a row whose p_k are
/// all 0 becomes uniform 1/K; a NaN propagates to the whole row).
///
/// # Panics
/// If `logits.len() != n·k` or `calibrators.len() != k`.
pub fn normalized_calibrated(
    logits: &[f32],
    n: usize,
    k: usize,
    calibrators: &[BinaryCalibrator],
) -> Vec<f32> {
    assert_shape("logits", logits.len(), n, k);
    if k == 0 {
        return Vec::new();
    }
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

/// Checks a row-major `[n, k]` matrix before [`normalized_calibrated`] and friends: k >= 1,
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
