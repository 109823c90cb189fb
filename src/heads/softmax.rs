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
//! from zeros comes out). The rows come through a [`RowBlocks`]
//! ([`fit_softmax_rows`]), in memory or block by block from a mapped file.

use candle_core::{DType, Tensor, WithDType};

use super::binary::start_points;
use super::lbfgs::{minimize_batched, Evaluation};
use super::objective::{class_counts, class_weights, softmax_ce};
use super::rows::{blocked_pass, check_rows, noise_for, RowBlocks, TensorRows};
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
    let x = x
        .contiguous()
        .map_err(HeadError::candle("x: contiguous copy"))?;
    fit_softmax_rows(&TensorRows::new(&x)?, labels, k, c, weighting, start, opts)
}

/// [`fit_softmax_from`] over rows read block by block (a mapped split file,
/// say); with one block it is bitwise the in-memory fit.
pub fn fit_softmax_rows(
    rows: &dyn RowBlocks,
    labels: &[u32],
    k: usize,
    c: f64,
    weighting: ClassWeighting,
    start: Option<&LinearFit>,
    opts: &FitOptions,
) -> Result<LinearFit, HeadError> {
    opts.validate()?;
    let (_, d) = check_rows(rows, labels)?;
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
    let problem = Problem {
        labels,
        d,
        k,
        c,
        cw,
    };
    match rows.dtype() {
        DType::F32 => problem.run::<f32>(rows, x0, opts),
        DType::F64 => problem.run::<f64>(rows, x0, opts),
        dtype => Err(HeadError::Dtype { dtype }),
    }
}

struct Problem<'a> {
    labels: &'a [u32],
    d: usize,
    k: usize,
    c: f64,
    cw: Vec<f64>,
}

impl Problem<'_> {
    /// Per-chunk partial sums: `(sum s CE, sum r per class)`.
    fn chunk_sums<T: WithDType>(
        &self,
        bv: &[f64],
        inv_sw: f64,
        (zc, rc, lc): (&[T], &mut [T], &[u32]),
    ) -> (f64, Vec<f64>) {
        let k = self.k;
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
    }

    fn run<T: WithDType>(
        &self,
        rows: &dyn RowBlocks,
        x0: Vec<Vec<f64>>,
        opts: &FitOptions,
    ) -> Result<LinearFit, HeadError> {
        let (d, k) = (self.d, self.k);
        let sw: f64 = self.labels.iter().map(|&l| self.cw[l as usize]).sum();
        let inv_sw = 1.0 / sw;
        let l2 = 1.0 / (self.c * sw);
        let eval = |_: &[usize], points: &[&[f64]]| -> Result<Vec<Evaluation>, HeadError> {
            let mut out = Vec::with_capacity(points.len());
            for p in points {
                let (wv, bv) = p.split_at(d * k);
                let (partial, g) = blocked_pass::<T, _>(rows, self.labels, wv, k, |zc, rc, lc| {
                    self.chunk_sums(bv, inv_sw, (zc, rc, lc))
                })?;
                let mut loss = 0.0;
                let mut rsum = vec![0.0f64; k];
                for (l, rs) in &partial {
                    loss += l;
                    for (a, b) in rsum.iter_mut().zip(rs) {
                        *a += b;
                    }
                }
                let wsq: f64 = wv.iter().map(|v| v * v).sum();
                let mut grad: Vec<f64> = g.iter().zip(wv).map(|(gv, wj)| gv + l2 * wj).collect();
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
