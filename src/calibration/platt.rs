//! Calibration stage, Platt scaling: one binary specialist's raw held-out
//! logits -> p = 1 / (1 + exp(a·s + b)) (Platt 1999; the sign convention of
//! scikit-learn's `_sigmoid_calibration`, so a < 0 for a useful specialist).
//!
//! (a, b) minimize the (weighted) cross-entropy against Platt's smoothed
//! targets t₊ = (N₊+1)/(N₊+2), t₋ = 1/(N₋+2) (N = total weight of a class),
//! which keeps the optimum finite even on separable data. The objective is
//! convex; it is minimized by Newton's method with a backtracking (Armijo)
//! line search as in Lin, Lin & Weng (2007), in stable log-sum-exp forms. The
//! scores are standardized first (a, b are mapped back), which keeps the 2x2
//! Newton system well conditioned, including when all scores are equal.

use serde::{Deserialize, Serialize};

use super::{BinaryData, CalibrationError};

/// p(s) = 1 / (1 + exp(a·s + b)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

const MAX_ITER: usize = 200;
const MIN_STEP: f64 = 1e-10;
/// Ridge on the Hessian's diagonal (relative to the total weight), as LLW's sigma.
const RIDGE: f64 = 1e-12;

impl Platt {
    /// Fits (a, b) on held-out raw scores and labels with optional
    /// nonnegative sample weights (zero-weight samples are ignored).
    pub fn fit(
        scores: &[f32],
        labels: &[bool],
        weights: Option<&[f32]>,
    ) -> Result<Self, CalibrationError> {
        let d = BinaryData::new(scores, labels, weights)?;
        fit_data(&d)
    }

    /// Calibrated probability of the positive class.
    pub fn prob(&self, s: f32) -> f32 {
        self.prob_f64(f64::from(s)) as f32
    }

    /// [`Self::prob`] in f64.
    pub fn prob_f64(&self, s: f64) -> f64 {
        sigmoid_neg(self.a * s + self.b)
    }

    /// The fitted objective: Σ wᵢ·CE(tᵢ, p(sᵢ)) with Platt's targets
    /// (scikit-learn's summed loss), for diagnostics and tests.
    pub fn objective(
        &self,
        scores: &[f32],
        labels: &[bool],
        weights: Option<&[f32]>,
    ) -> Result<f64, CalibrationError> {
        let d = BinaryData::new(scores, labels, weights)?;
        let t = Targets::new(&d);
        Ok(objective(&d.s, &d.y, &d.w, &t, self.a, self.b))
    }
}

/// 1 / (1 + exp(z)) without overflow.
fn sigmoid_neg(z: f64) -> f64 {
    if z >= 0.0 {
        let e = (-z).exp();
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + z.exp())
    }
}

/// log(1 + exp(z)) without overflow.
fn log1p_exp(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

struct Targets {
    pos: f64,
    neg: f64,
}

impl Targets {
    fn new(d: &BinaryData) -> Self {
        Targets {
            pos: (d.w_pos + 1.0) / (d.w_pos + 2.0),
            neg: 1.0 / (d.w_neg + 2.0),
        }
    }
    fn of(&self, y: bool) -> f64 {
        if y {
            self.pos
        } else {
            self.neg
        }
    }
}

/// Σ w·[log(1 + exp(z)) - (1 - t)·z], z = a·s + b: the cross-entropy of
/// p = 1/(1 + exp(z)) against target t.
fn objective(s: &[f64], y: &[bool], w: &[f64], t: &Targets, a: f64, b: f64) -> f64 {
    s.iter()
        .zip(y)
        .zip(w)
        .map(|((&si, &yi), &wi)| {
            let z = a * si + b;
            wi * (log1p_exp(z) - (1.0 - t.of(yi)) * z)
        })
        .sum()
}

/// The weighted mean and standard deviation the scores are standardized
/// by. All scores equal: (that score, 1), so u = 0 exactly, the α direction
/// carries no gradient and a = 0 (a rounded mean would leave u ≈ 1e-16 and
/// let α run away).
fn score_scale(d: &BinaryData, w_total: f64) -> (f64, f64) {
    if d.s.iter().all(|&s| s == d.s[0]) {
        return (d.s[0], 1.0);
    }
    let m = d.s.iter().zip(&d.w).map(|(s, w)| s * w).sum::<f64>() / w_total;
    let var: f64 =
        d.s.iter()
            .zip(&d.w)
            .map(|(s, w)| w * (s - m) * (s - m))
            .sum();
    let sd = (var / w_total).sqrt();
    (m, if sd > 0.0 && sd.is_finite() { sd } else { 1.0 })
}

/// The Newton step (dα, dβ) at `(alpha, beta)` on the standardized scores
/// `u` and its Newton decrement (≈ 2·(f - f*) near the optimum).
fn newton_step(
    u: &[f64],
    d: &BinaryData,
    t: &Targets,
    (alpha, beta): (f64, f64),
    ridge: f64,
) -> Result<(f64, f64, f64), CalibrationError> {
    // Gradient and Hessian in (α, β); dz/dα = u, dz/dβ = 1, dloss/dz = t - p.
    let (mut g1, mut g2, mut h11, mut h12, mut h22) = (0.0, 0.0, ridge, 0.0, ridge);
    for ((&ui, &yi), &wi) in u.iter().zip(&d.y).zip(&d.w) {
        let p = sigmoid_neg(alpha * ui + beta);
        let q = sigmoid_neg(-(alpha * ui + beta));
        let r = wi * (t.of(yi) - p);
        g1 += r * ui;
        g2 += r;
        let h = wi * p * q;
        h11 += h * ui * ui;
        h12 += h * ui;
        h22 += h;
    }
    let det = h11 * h22 - h12 * h12;
    if !(det > 0.0 && det.is_finite()) {
        return Err(no_convergence(format!(
            "singular Hessian (det {det:e}) at a = {alpha}, b = {beta}"
        )));
    }
    let da = -(h22 * g1 - h12 * g2) / det;
    let db = -(h11 * g2 - h12 * g1) / det;
    Ok((da, db, -(g1 * da + g2 * db)))
}

fn fit_data(d: &BinaryData) -> Result<Platt, CalibrationError> {
    let t = Targets::new(d);
    let w_total = d.w_pos + d.w_neg;
    // Standardize: u = (s - m) / sd; fit (α, β) on u; a = α/sd, b = β - α·m/sd.
    let (m, sd) = score_scale(d, w_total);
    let u: Vec<f64> = d.s.iter().map(|s| (s - m) / sd).collect();
    let f = |a: f64, b: f64| objective(&u, &d.y, &d.w, &t, a, b);

    let (mut alpha, mut beta) = (0.0, ((d.w_neg + 1.0) / (d.w_pos + 1.0)).ln());
    let mut fval = f(alpha, beta);
    let ridge = RIDGE * w_total.max(1.0);
    let mut converged = false;
    for _ in 0..MAX_ITER {
        let (da, db, decrement) = newton_step(&u, d, &t, (alpha, beta), ridge)?;
        let scale = 1.0 + fval.abs();
        if decrement <= 1e-24 * scale {
            // Already at the optimum to rounding: take the full step and stop.
            alpha += da;
            beta += db;
            converged = true;
            break;
        }
        let mut step = 1.0;
        let mut accepted = false;
        while step >= MIN_STEP {
            let (na, nb) = (alpha + step * da, beta + step * db);
            let nf = f(na, nb);
            if nf < fval - 1e-4 * step * decrement {
                (alpha, beta, fval) = (na, nb, nf);
                accepted = true;
                break;
            }
            step /= 2.0;
        }
        if !accepted {
            // The decrease is below what f resolves: near the optimum, where
            // the full Newton step is accurate; take it and stop.
            if decrement <= 1e-10 * scale {
                alpha += da;
                beta += db;
                converged = true;
                break;
            }
            return Err(no_convergence(format!(
                "line search failed at a = {alpha}, b = {beta} (Newton decrement {decrement:e})"
            )));
        }
    }
    if !converged {
        return Err(no_convergence(format!(
            "{MAX_ITER} Newton iterations without convergence"
        )));
    }
    let platt = Platt {
        a: alpha / sd,
        b: beta - alpha * m / sd,
    };
    if !(platt.a.is_finite() && platt.b.is_finite()) {
        return Err(no_convergence(format!(
            "non-finite parameters a = {}, b = {}",
            platt.a, platt.b
        )));
    }
    Ok(platt)
}

fn no_convergence(reason: String) -> CalibrationError {
    CalibrationError::NoConvergence {
        class: None,
        reason,
    }
}
