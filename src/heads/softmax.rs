//! Heads stage (cached features -> trained linear heads): standardized
//! training features -> one multinomial (softmax) head, scikit-learn's
//! multinomial `LogisticRegression` (lbfgs).
//!
//! Parameters `[W (D x K, row-major), b (K)]`, rescaled objective
//! `f = sum s CE / sum s + ||W||_F^2 / (2 C sum s)`. Per evaluation: `Z = X . W`
//! on the candle device, softmax / cross-entropy / residual
//! `R = s (softmax(Z + b) - onehot(y)) / sum s` on the host in f64, then
//! `G = X^T . R` on the device. The intercept is not penalized, so `b` is only
//! defined up to a shift; it starts at 0, every gradient step keeps its sum at
//! 0, and the result is re-centered to sum 0 exactly (as scikit-learn's fit
//! from zeros comes out).

use candle_core::{DType, Tensor, WithDType};
use rayon::prelude::*;

use super::binary::{check_x, download, noise_for, start_points, upload, ROW_CHUNK};
use super::lbfgs::{minimize_batched, Evaluation};
use super::objective::{class_counts, class_weights, softmax_ce};
use super::{ClassWeighting, FitOptions, HeadError, LinearFit};

/// Trains one softmax head over `k` classes on the standardized `[N, D]`
/// matrix `x` (f32, or f64 for exact checks; any candle device).
pub fn fit_softmax(
    x: &Tensor,
    labels: &[u32],
    k: usize,
    c: f64,
    weighting: ClassWeighting,
    opts: &FitOptions,
) -> Result<LinearFit, HeadError> {
    fit_softmax_from(x, labels, k, c, weighting, None, opts)
}

/// [`fit_softmax`] warm-started from `start` (e.g. the fit at a neighbouring
/// C); `None` starts from zero.
pub fn fit_softmax_from(
    x: &Tensor,
    labels: &[u32],
    k: usize,
    c: f64,
    weighting: ClassWeighting,
    start: Option<&LinearFit>,
    opts: &FitOptions,
) -> Result<LinearFit, HeadError> {
    opts.validate()?;
    let (n, d) = check_x(x, labels)?;
    if k < 2 {
        return Err(HeadError::InvalidK { k });
    }
    if !(c.is_finite() && c > 0.0) {
        return Err(HeadError::InvalidC {
            head: "softmax head".into(),
            value: c,
        });
    }
    let x0 = start_points(&[start], 1, d, k)?;
    let counts = class_counts(labels, k)?;
    let cw = class_weights(weighting, &counts);
    let x = x
        .contiguous()
        .map_err(HeadError::candle("x: contiguous copy"))?;
    let problem = Problem {
        labels,
        n,
        d,
        k,
        c,
        cw,
    };
    match x.dtype() {
        DType::F32 => problem.run::<f32>(&x, x0, opts),
        DType::F64 => problem.run::<f64>(&x, x0, opts),
        dtype => Err(HeadError::Dtype { dtype }),
    }
}

struct Problem<'a> {
    labels: &'a [u32],
    n: usize,
    d: usize,
    k: usize,
    c: f64,
    cw: Vec<f64>,
}

impl Problem<'_> {
    fn run<T: WithDType>(
        &self,
        x: &Tensor,
        x0: Vec<Vec<f64>>,
        opts: &FitOptions,
    ) -> Result<LinearFit, HeadError> {
        let (n, d, k) = (self.n, self.d, self.k);
        let sw: f64 = self.labels.iter().map(|&l| self.cw[l as usize]).sum();
        let inv_sw = 1.0 / sw;
        let l2 = 1.0 / (self.c * sw);
        let xt = x.t().map_err(HeadError::candle("x: transpose"))?;
        let device = x.device();
        let eval = |_: &[usize], points: &[&[f64]]| -> Result<Vec<Evaluation>, HeadError> {
            let mut out = Vec::with_capacity(points.len());
            for p in points {
                let (wv, bv) = p.split_at(d * k);
                let w = upload::<T>(wv, d, k, device, "softmax head: upload W")?;
                let z = x
                    .matmul(&w)
                    .map_err(HeadError::candle("softmax head: X . W"))?;
                let z = download::<T>(&z, "softmax head: download X . W")?;
                let mut r = vec![T::from_f64(0.0); n * k];
                let partial: Vec<(f64, Vec<f64>)> = z
                    .par_chunks(ROW_CHUNK * k)
                    .zip(r.par_chunks_mut(ROW_CHUNK * k))
                    .zip(self.labels.par_chunks(ROW_CHUNK))
                    .map(|((zc, rc), lc)| {
                        let mut loss = 0.0;
                        let mut rsum = vec![0.0f64; k];
                        let mut zi = vec![0.0f64; k];
                        let mut pr = vec![0.0f64; k];
                        for (row, &label) in lc.iter().enumerate() {
                            for ((zj, zr), b) in zi.iter_mut().zip(&zc[row * k..]).zip(bv) {
                                *zj = zr.to_f64() + b;
                            }
                            let y = label as usize;
                            let s = self.cw[y];
                            loss += s * softmax_ce(&zi, y, &mut pr);
                            let rr = &mut rc[row * k..(row + 1) * k];
                            for (j, (rv, pj)) in rr.iter_mut().zip(&pr).enumerate() {
                                let t = if j == y { 1.0 } else { 0.0 };
                                let res = s * (pj - t) * inv_sw;
                                rsum[j] += res;
                                *rv = T::from_f64(res);
                            }
                        }
                        (loss, rsum)
                    })
                    .collect();
                let mut loss = 0.0;
                let mut rsum = vec![0.0f64; k];
                for (l, rs) in &partial {
                    loss += l;
                    for (a, b) in rsum.iter_mut().zip(rs) {
                        *a += b;
                    }
                }
                let r = Tensor::from_vec(r, (n, k), device)
                    .map_err(HeadError::candle("softmax head: upload R"))?;
                let g = xt
                    .matmul(&r)
                    .map_err(HeadError::candle("softmax head: X^T . R"))?;
                let g = download::<T>(&g, "softmax head: download X^T . R")?;
                let wsq: f64 = wv.iter().map(|v| v * v).sum();
                let mut grad: Vec<f64> = g
                    .iter()
                    .zip(wv)
                    .map(|(gv, wj)| gv.to_f64() + l2 * wj)
                    .collect();
                grad.extend_from_slice(&rsum);
                out.push(Evaluation {
                    f: loss * inv_sw + 0.5 * l2 * wsq,
                    g: grad,
                });
            }
            Ok(out)
        };
        let mut solutions = minimize_batched(
            x0,
            opts,
            noise_for(T::DTYPE),
            |_| "softmax head".to_string(),
            eval,
        )?;
        let s = solutions.pop().ok_or(HeadError::Shape {
            field: "solutions",
            expected: "1".into(),
            got: "0".into(),
        })?;
        let (wv, bv) = s.x.split_at(d * k);
        let mean_b = bv.iter().sum::<f64>() / k as f64;
        Ok(LinearFit {
            w: wv.iter().map(|&v| v as f32).collect(),
            b: bv.iter().map(|&v| (v - mean_b) as f32).collect(),
            iterations: s.iterations,
            converged: s.converged(),
            objective: s.f * self.c * sw,
        })
    }
}
