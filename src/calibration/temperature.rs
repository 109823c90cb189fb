//! Calibration stage, temperature scaling (Guo et al. 2017): the multiclass
//! head's held-out [N, K] logits -> one T > 0 such that softmax(z / T) has
//! the least mean negative log-likelihood. Dividing by T > 0 keeps each row's
//! order, so the argmax (accuracy) is unchanged.
//!
//! With β = 1/T the mean NLL f(β) = mean[lse(β·zᵢ) - β·zᵢ,yᵢ] is convex:
//! f'(β) = mean[E_p(z) - z_y], f''(β) = mean[Var_p(z)] >= 0. It is minimized
//! by Newton's method on β safeguarded by a bracket (geometric bisection when
//! a step leaves it), within T ∈ [`T_MIN`, `T_MAX`] (the bounds of the scipy
//! reference, which optimizes over log T). When every held-out row is
//! classified with a margin the NLL keeps decreasing as T -> 0 and the fit
//! returns `T_MIN`; when all logits of every row are equal it returns T = 1.

use serde::{Deserialize, Serialize};

use super::{check_labels, check_len, check_matrix, CalibrationError};

/// Smallest and largest temperature the fit returns.
pub const T_MIN: f64 = 1e-2;
pub const T_MAX: f64 = 1e2;

const MAX_ITER: usize = 200;

/// Probabilities are softmax(logits / t).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Temperature {
    pub t: f64,
}

impl Default for Temperature {
    fn default() -> Self {
        Temperature { t: 1.0 }
    }
}

impl Temperature {
    /// Fits T on row-major [n, k] held-out logits and their labels (< k).
    pub fn fit(
        logits: &[f32],
        labels: &[u32],
        n: usize,
        k: usize,
    ) -> Result<Self, CalibrationError> {
        check_matrix("logits", logits, n, k)?;
        check_len(None, "labels", labels.len(), n)?;
        check_labels(labels, k)?;
        if n == 0 {
            return Err(CalibrationError::Empty { class: None });
        }
        let z: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
        let derivs = |beta: f64| derivatives(&z, labels, k, beta);

        let (beta_min, beta_max) = (1.0 / T_MAX, 1.0 / T_MIN);
        let (g_min, h_min) = derivs(beta_min);
        if g_min > 0.0 {
            return Ok(Temperature { t: T_MAX });
        }
        if g_min == 0.0 && h_min == 0.0 {
            // Every row's logits equal: the NLL does not depend on T.
            return Ok(Temperature { t: 1.0 });
        }
        // g = h = 0 at β_max: every row right by a margin so wide that the
        // other classes' probabilities underflow; the NLL still falls as T -> 0.
        let (g_max, h_max) = derivs(beta_max);
        if g_max < 0.0 || (g_max == 0.0 && h_max == 0.0) {
            return Ok(Temperature { t: T_MIN });
        }
        let (mut lo, mut hi) = (beta_min, beta_max);
        let mut beta = 1.0;
        for _ in 0..MAX_ITER {
            let (g, h) = derivs(beta);
            if g > 0.0 {
                hi = beta;
            } else if g < 0.0 || h == 0.0 {
                lo = beta; // h = 0 with g = 0: the underflow plateau above
            } else {
                break;
            }
            let newton = beta - g / h;
            let next = if h > 0.0 && newton > lo && newton < hi {
                newton
            } else {
                (lo * hi).sqrt()
            };
            let done = (next - beta).abs() <= 1e-15 * beta || hi - lo <= 1e-15 * hi;
            beta = next;
            if done {
                break;
            }
        }
        Ok(Temperature { t: 1.0 / beta })
    }

    /// Row-major [n, k] softmax(logits / t), stable, in f64 then f32. A row
    /// with a non-finite logit, or every row when t is not a finite number
    /// > 0 (see [`Self::check`]), comes out NaN.
    ///
    /// # Panics
    /// If `logits.len() != n·k`.
    pub fn probs(&self, logits: &[f32], n: usize, k: usize) -> Vec<f32> {
        assert!(
            n.checked_mul(k) == Some(logits.len()),
            "calibration: logits has {} values, expected n·k = {n}·{k}",
            logits.len()
        );
        if k == 0 {
            return Vec::new();
        }
        let beta = 1.0 / self.t;
        let valid = self.check().is_ok();
        let mut out = Vec::with_capacity(logits.len());
        for row in logits.chunks_exact(k) {
            if valid && row.iter().all(|v| v.is_finite()) {
                let lse = log_sum_exp(row, beta);
                out.extend(
                    row.iter()
                        .map(|&v| (beta * f64::from(v) - lse).exp() as f32),
                );
            } else {
                out.extend(std::iter::repeat_n(f32::NAN, k));
            }
        }
        out
    }

    /// Mean negative log-likelihood of `labels` under softmax(logits / t).
    pub fn nll(
        &self,
        logits: &[f32],
        labels: &[u32],
        n: usize,
        k: usize,
    ) -> Result<f64, CalibrationError> {
        self.check()?;
        check_matrix("logits", logits, n, k)?;
        check_len(None, "labels", labels.len(), n)?;
        check_labels(labels, k)?;
        if n == 0 {
            return Err(CalibrationError::Empty { class: None });
        }
        let beta = 1.0 / self.t;
        let total: f64 = logits
            .chunks_exact(k)
            .zip(labels)
            .map(|(row, &y)| log_sum_exp(row, beta) - beta * f64::from(row[y as usize]))
            .sum();
        Ok(total / n as f64)
    }

    /// Ok when t is a finite number > 0 (e.g. after reading a manifest).
    pub fn check(&self) -> Result<(), CalibrationError> {
        if self.t.is_finite() && self.t > 0.0 {
            Ok(())
        } else {
            Err(CalibrationError::BadTemperature { t: self.t })
        }
    }
}

/// log Σ exp(β·zⱼ), stable.
fn log_sum_exp(row: &[f32], beta: f64) -> f64 {
    let max = row
        .iter()
        .map(|&v| beta * f64::from(v))
        .fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = row.iter().map(|&v| (beta * f64::from(v) - max).exp()).sum();
    max + sum.ln()
}

/// (f'(β), f''(β)) of the mean NLL: mean[E_p z - z_y] and mean[Var_p z],
/// p = softmax(β·z). Each row's logits are centred on their maximum first.
fn derivatives(z: &[f64], labels: &[u32], k: usize, beta: f64) -> (f64, f64) {
    let (mut g, mut h) = (0.0, 0.0);
    let mut e = vec![0.0; k];
    for (row, &y) in z.chunks_exact(k).zip(labels) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut sum = 0.0;
        for (ej, &zj) in e.iter_mut().zip(row) {
            *ej = (beta * (zj - max)).exp();
            sum += *ej;
        }
        let mut mean = 0.0;
        for (ej, &zj) in e.iter().zip(row) {
            mean += ej / sum * (zj - max);
        }
        let mut var = 0.0;
        for (ej, &zj) in e.iter().zip(row) {
            let c = zj - max - mean;
            var += ej / sum * c * c;
        }
        g += mean - (row[y as usize] - max);
        h += var;
    }
    let n = labels.len() as f64;
    (g / n, h / n)
}
