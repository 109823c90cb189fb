//! Calibration stage, joint calibration of a whole score vector: the K
//! specialists' held-out scores for N images (row-major [N, K]) -> one
//! distribution per image, q = softmax(W·x + b), fitted by the mean
//! multiclass NLL on the calibration rows.
//!
//! Two shapes of W share this code:
//!
//! * **vector scaling** (Guo et al. 2017): x = the raw specialist logits,
//!   W = diag(a). Penalty `λ/K · (Σ (a_k − 1)² + Σ b_k²)`: shrinks towards
//!   a = 1, b = 0, i.e. towards the softmax over the raw logits, which is
//!   already a reasonable multiclass model of one-vs-rest log-odds (and the
//!   only zero-parameter one), so with few calibration rows per class the fit
//!   cannot wander far from it.
//! * **Dirichlet calibration** (Kull et al., NeurIPS 2019): x = log of the
//!   per-class calibrated probabilities (Platt, normalised; clipped at the
//!   smallest positive f64 as dirichletcal does), W full. ODIR penalty
//!   `λ/(K(K−1)) · Σ_{i≠j} W_ij² + μ/K · Σ b_k²` with μ = λ (the diagonal is
//!   free): shrinks towards W = diag, b = 0, i.e. towards the normalised Platt
//!   probabilities raised to per-class powers.
//!
//! The objective is smooth and convex; it is minimized in f64 by the heads'
//! L-BFGS (one column), started from the identity map. λ is chosen by the
//! caller (cross-validation inside the calibration split, see
//! [`super::joint`]); `ScoreMap::fit_path` fits a decreasing λ path with
//! warm starts. The independent reference is dirichletcal 0.5.3
//! (`FullDirichletCalibrator(reg_norm=True, ref_row=False)`) and a scipy fit
//! of the same objective (`tests/reference/make_joint_calibration_fixtures.py`).

use serde::{Deserialize, Serialize};

use super::{check_labels, check_len, check_matrix, CalibrationError};
use crate::heads::lbfgs::{minimize_batched, Evaluation};
use crate::heads::FitOptions;

/// The shape of W.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MapKind {
    /// W = diag(a), penalty towards a = 1, b = 0.
    Vector,
    /// W full, ODIR penalty on the off-diagonal and the intercepts.
    Full,
}

/// q = softmax(W·x + b) over row-major [N, K] inputs x.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreMap {
    pub kind: MapKind,
    /// Vector: `[K]` (the diagonal). Full: row-major `[K, K]`, `z_j = Σ_l w[j][l] x_l + b_j`.
    pub w: Vec<f64>,
    pub b: Vec<f64>,
    /// The penalty strength it was fitted with.
    pub lambda: f64,
}

/// Gradient max-norm 1e-7 on the mean NLL: far below what changes a
/// probability in its 4th digit, and a few hundred iterations at most.
const OPTS: FitOptions = FitOptions {
    max_iter: 1000,
    tol: 1e-7,
    history: 10,
};

/// Calibration rows in f64, checked once.
pub(crate) struct Rows<'a> {
    pub x: Vec<f64>,
    pub labels: &'a [u32],
    pub n: usize,
    pub k: usize,
}

impl<'a> Rows<'a> {
    pub fn new(x: &[f64], labels: &'a [u32], n: usize, k: usize) -> Result<Self, CalibrationError> {
        let as_f32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        check_matrix("scores", &as_f32, n, k)?;
        check_len(None, "labels", labels.len(), n)?;
        check_labels(labels, k)?;
        if n == 0 {
            return Err(CalibrationError::Empty { class: None });
        }
        Ok(Rows {
            x: x.to_vec(),
            labels,
            n,
            k,
        })
    }
}

impl ScoreMap {
    /// The identity map of `kind` for `k` classes (q = softmax(x)).
    pub fn identity(kind: MapKind, k: usize) -> ScoreMap {
        let w = match kind {
            MapKind::Vector => vec![1.0; k],
            MapKind::Full => (0..k * k)
                .map(|i| if i / k == i % k { 1.0 } else { 0.0 })
                .collect(),
        };
        ScoreMap {
            kind,
            w,
            b: vec![0.0; k],
            lambda: 0.0,
        }
    }

    fn k(&self) -> usize {
        self.b.len()
    }

    /// Fits at one λ >= 0 from the identity.
    pub fn fit(
        kind: MapKind,
        x: &[f64],
        labels: &[u32],
        n: usize,
        k: usize,
        lambda: f64,
    ) -> Result<ScoreMap, CalibrationError> {
        let rows = Rows::new(x, labels, n, k)?;
        Ok(fit_rows(&rows, kind, lambda, &ScoreMap::identity(kind, k)))
    }

    /// Fits every λ of `lambdas` (any order; solved from the largest down,
    /// each warm-started from the previous one); results in the given order.
    pub(crate) fn fit_path(rows: &Rows, kind: MapKind, lambdas: &[f64]) -> Vec<ScoreMap> {
        let mut order: Vec<usize> = (0..lambdas.len()).collect();
        order.sort_by(|&i, &j| lambdas[j].total_cmp(&lambdas[i]));
        let mut out: Vec<Option<ScoreMap>> = vec![None; lambdas.len()];
        let mut start = ScoreMap::identity(kind, rows.k);
        for i in order {
            let m = fit_rows(rows, kind, lambdas[i], &start);
            start = m.clone();
            out[i] = Some(m);
        }
        out.into_iter().flatten().collect()
    }

    /// Row-major [n, k] logits W·x + b.
    pub fn logits(&self, x: &[f64], n: usize) -> Vec<f64> {
        let k = self.k();
        let mut z = vec![0.0; n * k];
        for (zr, xr) in z.chunks_exact_mut(k).zip(x.chunks_exact(k)) {
            match self.kind {
                MapKind::Vector => {
                    for j in 0..k {
                        zr[j] = self.w[j] * xr[j] + self.b[j];
                    }
                }
                MapKind::Full => {
                    for (j, zj) in zr.iter_mut().enumerate() {
                        let wr = &self.w[j * k..(j + 1) * k];
                        *zj = self.b[j] + wr.iter().zip(xr).map(|(w, v)| w * v).sum::<f64>();
                    }
                }
            }
        }
        z
    }

    /// Row-major [n, k] probabilities softmax(W·x + b), in f64.
    pub fn probs(&self, x: &[f64], n: usize) -> Vec<f64> {
        let mut z = self.logits(x, n);
        for row in z.chunks_exact_mut(self.k()) {
            softmax_in_place(row);
        }
        z
    }
}

/// Stable in-place softmax of one row (a row with a NaN stays NaN).
pub(crate) fn softmax_in_place(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// Parameter vector layout: `[w..., b...]`.
fn pack(m: &ScoreMap) -> Vec<f64> {
    m.w.iter().chain(&m.b).copied().collect()
}

fn fit_rows(rows: &Rows, kind: MapKind, lambda: f64, start: &ScoreMap) -> ScoreMap {
    let k = rows.k;
    let nw = start.w.len();
    let unpack = |p: &[f64]| ScoreMap {
        kind,
        w: p[..nw].to_vec(),
        b: p[nw..].to_vec(),
        lambda,
    };
    let eval =
        |_: &[usize], points: &[&[f64]]| -> Result<Vec<Evaluation>, crate::heads::HeadError> {
            Ok(points.iter().map(|p| objective(rows, &unpack(p))).collect())
        };
    // The objective is finite everywhere for finite inputs, so the optimizer
    // cannot fail; a failure would leave the start, which is a valid map.
    match minimize_batched(
        vec![pack(start)],
        &OPTS,
        16.0 * f64::EPSILON,
        |_| format!("{kind:?} calibration map over {k} classes"),
        eval,
    ) {
        Ok(mut s) => unpack(&s.remove(0).x),
        Err(_) => ScoreMap {
            lambda,
            ..start.clone()
        },
    }
}

/// Mean NLL + penalty and its gradient (layout of [`pack`]).
fn objective(rows: &Rows, m: &ScoreMap) -> Evaluation {
    let (n, k) = (rows.n, rows.k);
    let z = m.logits(&rows.x, n);
    let mut gw = vec![0.0; m.w.len()];
    let mut gb = vec![0.0; k];
    let mut f = 0.0;
    let inv_n = 1.0 / n as f64;
    let mut q = vec![0.0; k];
    for ((zr, xr), &y) in z
        .chunks_exact(k)
        .zip(rows.x.chunks_exact(k))
        .zip(rows.labels)
    {
        q.copy_from_slice(zr);
        let max = q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + q.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        f += (lse - zr[y as usize]) * inv_n;
        for (j, qj) in q.iter_mut().enumerate() {
            let r = ((zr[j] - lse).exp() - if j == y as usize { 1.0 } else { 0.0 }) * inv_n;
            *qj = r;
            gb[j] += r;
        }
        match m.kind {
            MapKind::Vector => {
                for j in 0..k {
                    gw[j] += q[j] * xr[j];
                }
            }
            MapKind::Full => {
                for (j, &r) in q.iter().enumerate() {
                    for (g, &v) in gw[j * k..(j + 1) * k].iter_mut().zip(xr) {
                        *g += r * v;
                    }
                }
            }
        }
    }
    let lam = m.lambda;
    match m.kind {
        MapKind::Vector => {
            let c = lam / k as f64;
            for j in 0..k {
                let (da, db) = (m.w[j] - 1.0, m.b[j]);
                f += c * (da * da + db * db);
                gw[j] += 2.0 * c * da;
                gb[j] += 2.0 * c * db;
            }
        }
        MapKind::Full => {
            let c_off = if k > 1 {
                lam / (k * (k - 1)) as f64
            } else {
                0.0
            };
            let c_b = lam / k as f64;
            for j in 0..k {
                for l in 0..k {
                    if j != l {
                        let w = m.w[j * k + l];
                        f += c_off * w * w;
                        gw[j * k + l] += 2.0 * c_off * w;
                    }
                }
                f += c_b * m.b[j] * m.b[j];
                gb[j] += 2.0 * c_b * m.b[j];
            }
        }
    }
    gw.extend(gb);
    Evaluation { f, g: gw }
}
