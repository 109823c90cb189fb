//! Metrics stage, proper scoring rules: the [N, K] probability rows of one
//! approach on a split -> negative log-likelihood and multiclass Brier score.
//!
//! * NLL = mean over rows of −ln(max(p_true, [`NLL_EPS`])), eps = 1e-15 fixed,
//!   nothing else clipped, rows not renormalized. scikit-learn 1.9's
//!   `log_loss` instead clips to the machine epsilon of the input dtype
//!   (2.2e-16 for float64, 1.2e-7 for float32 — so a float32 p_true of 0
//!   costs only 15.9 nats there) and also clips at 1 − eps. The two agree
//!   whenever every p_true ≥ 1e-15 (up to 1e-16 per row from the upper clip);
//!   a fixed eps keeps the number independent of the storage type. The
//!   fixtures compute the reference in numpy and check `log_loss` on float64
//!   where no clip applies.
//! * Brier = mean over rows of Σ_k (p_k − 1[y = k])², range [0, 2], for every
//!   K. scikit-learn 1.9's `brier_score_loss(labels=range(K))` equals this for
//!   K ≥ 3 but halves it for K = 2 (`scale_by_half='auto'`); the reference is
//!   computed explicitly in numpy.
//!
//! Sums run in f64 over f32 inputs widened exactly.

use super::{check_labels, check_probs, Result};

/// Lower clip of the true-class probability in [`nll`]: −ln(1e-15) ≈ 34.54.
pub const NLL_EPS: f64 = 1e-15;

/// Mean −ln(max(p_true, 1e-15)) over rows (natural log, nats).
pub fn nll(labels: &[u32], probs: &[f32], k: usize) -> Result<f64> {
    check_labels("labels", labels, k)?;
    check_probs(probs, labels.len(), k)?;
    Ok(nll_unchecked(labels, probs, k))
}

pub(crate) fn nll_unchecked(labels: &[u32], probs: &[f32], k: usize) -> f64 {
    let total: f64 = labels
        .iter()
        .zip(probs.chunks_exact(k))
        .map(|(&y, row)| -f64::from(row[y as usize]).max(NLL_EPS).ln())
        .sum();
    total / labels.len() as f64
}

/// Mean over rows of Σ_k (p_k − 1[y = k])² (not halved, any K).
pub fn brier(labels: &[u32], probs: &[f32], k: usize) -> Result<f64> {
    check_labels("labels", labels, k)?;
    check_probs(probs, labels.len(), k)?;
    Ok(brier_unchecked(labels, probs, k))
}

pub(crate) fn brier_unchecked(labels: &[u32], probs: &[f32], k: usize) -> f64 {
    let total: f64 = labels
        .iter()
        .zip(probs.chunks_exact(k))
        .map(|(&y, row)| {
            row.iter()
                .enumerate()
                .map(|(c, &p)| {
                    let d = f64::from(p) - if c == y as usize { 1.0 } else { 0.0 };
                    d * d
                })
                .sum::<f64>()
        })
        .sum();
    total / labels.len() as f64
}
