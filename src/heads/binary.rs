//! Heads stage (cached features -> trained linear heads): standardized
//! training features -> one-vs-rest binary heads.
//!
//! All [`BinaryJob`]s of one call are trained fused: the active columns form
//! one `[D, A]` weight matrix, one evaluation is `Z = X . W` on the candle
//! device, the per-row loss and residual `R = s (sigmoid(Z + b) - Y) / sum s`
//! on the host in f64 (fixed row chunks, so a column's sums do not depend on
//! the other columns), then `G = X^T . R` on the device. Each column keeps its
//! own L-BFGS state ([`super::lbfgs`]); converged columns leave the matrix.
//! The parameters of a column are `[w (D), b]`, optimized on the rescaled
//! objective `f = J / (C sum s) = sum s l / sum s + ||w||^2 / (2 C sum s)`.
//! The rows come through a [`RowBlocks`] ([`fit_binary_rows`]): a tensor in
//! memory, or a mapped file read block by block (see [`super::rows`]).

use candle_core::{DType, Tensor, WithDType};

use super::lbfgs::{minimize_batched, Evaluation};
use super::objective::{binary_weights, logistic_loss, sigmoid};
use super::rows::{blocked_pass, check_rows, noise_for, RowBlocks, TensorRows};
use super::{BinaryJob, FitOptions, HeadError, LinearFit};

/// First points `[w (d x outputs), b (outputs)]` from warm starts (zero
/// where none); a start of the wrong size is an error naming the job.
pub(crate) fn start_points(
    starts: &[Option<&LinearFit>],
    jobs: usize,
    d: usize,
    outputs: usize,
) -> Result<Vec<Vec<f64>>, HeadError> {
    if starts.len() != jobs {
        return Err(HeadError::Shape {
            field: "starts",
            expected: format!("{jobs} (one per job)"),
            got: starts.len().to_string(),
        });
    }
    starts
        .iter()
        .map(|s| match s {
            None => Ok(vec![0.0; d * outputs + outputs]),
            Some(f) if f.w.len() == d * outputs && f.b.len() == outputs => {
                Ok(f.w.iter().chain(&f.b).map(|&v| f64::from(v)).collect())
            }
            Some(f) => Err(HeadError::Shape {
                field: "starts",
                expected: format!("w of {} and b of {outputs} values", d * outputs),
                got: format!("w of {} and b of {}", f.w.len(), f.b.len()),
            }),
        })
        .collect()
}

/// Per-job constants of the rescaled objective.
#[derive(Debug, Clone, Copy)]
struct Prepared {
    class: u32,
    w_pos: f64,
    w_neg: f64,
    inv_sw: f64,
    l2: f64,
    scale: f64,
}

fn prepare(jobs: &[BinaryJob], labels: &[u32]) -> Result<Vec<Prepared>, HeadError> {
    if jobs.is_empty() {
        return Err(HeadError::NoJobs);
    }
    let n = labels.len();
    jobs.iter()
        .enumerate()
        .map(|(j, job)| {
            if !(job.c.is_finite() && job.c > 0.0) {
                return Err(HeadError::InvalidC {
                    head: format!("binary job {j} (class {})", job.class),
                    value: job.c,
                });
            }
            let positives = labels.iter().filter(|&&l| l == job.class).count();
            if positives == 0 || positives == n {
                return Err(HeadError::OneSided {
                    job: j,
                    class: job.class,
                    positives,
                    negatives: n - positives,
                });
            }
            let (w_pos, w_neg) = binary_weights(job.weighting, positives, n);
            let sw = w_pos * positives as f64 + w_neg * (n - positives) as f64;
            Ok(Prepared {
                class: job.class,
                w_pos,
                w_neg,
                inv_sw: 1.0 / sw,
                l2: 1.0 / (job.c * sw),
                scale: job.c * sw,
            })
        })
        .collect()
}

/// Trains every job fused in one `[D, jobs.len()]` matrix (see the module docs).
///
/// `x` is the standardized training matrix `[N, D]` (f32, or f64 for exact
/// checks) on any candle device; `labels[i]` the class id of row `i`. Every
/// job needs at least one positive and one negative row. The fits come back
/// in the order of `jobs`; each is independent of the others.
pub fn fit_binary(
    x: &Tensor,
    labels: &[u32],
    jobs: &[BinaryJob],
    opts: &FitOptions,
) -> Result<Vec<LinearFit>, HeadError> {
    fit_binary_from(x, labels, jobs, &vec![None; jobs.len()], opts)
}

/// [`fit_binary`] with a warm start per job: `starts[j]` (a fit of the same
/// head at a neighbouring C, say) is job `j`'s first point; `None` starts
/// from zero.
pub fn fit_binary_from(
    x: &Tensor,
    labels: &[u32],
    jobs: &[BinaryJob],
    starts: &[Option<&LinearFit>],
    opts: &FitOptions,
) -> Result<Vec<LinearFit>, HeadError> {
    let x = x
        .contiguous()
        .map_err(HeadError::candle("x: contiguous copy"))?;
    fit_binary_rows(&TensorRows::new(&x)?, labels, jobs, starts, opts)
}

/// [`fit_binary_from`] over rows read block by block (a mapped split file,
/// say): the same fit, holding one block of rows at a time. With one block
/// (`rows.block_rows() >= N`) it is bitwise the in-memory fit.
pub fn fit_binary_rows(
    rows: &dyn RowBlocks,
    labels: &[u32],
    jobs: &[BinaryJob],
    starts: &[Option<&LinearFit>],
    opts: &FitOptions,
) -> Result<Vec<LinearFit>, HeadError> {
    opts.validate()?;
    let (_, d) = check_rows(rows, labels)?;
    let prepared = prepare(jobs, labels)?;
    let x0 = start_points(starts, jobs.len(), d, 1)?;
    match rows.dtype() {
        DType::F32 => run::<f32>(rows, labels, d, &prepared, x0, opts),
        DType::F64 => run::<f64>(rows, labels, d, &prepared, x0, opts),
        dtype => Err(HeadError::Dtype { dtype }),
    }
}

/// Per-chunk partial sums of every active column: `(sum s l, sum r)`.
fn chunk_sums<T: WithDType>(
    cols: &[Prepared],
    bias: &[f64],
    width: usize,
    (zc, rc, lc): (&[T], &mut [T], &[u32]),
) -> Vec<(f64, f64)> {
    let a = cols.len();
    let mut acc = vec![(0.0f64, 0.0f64); a];
    for (row, &label) in lc.iter().enumerate() {
        let zr = &zc[row * width..row * width + a];
        let rr = &mut rc[row * width..row * width + a];
        for (col, cp) in cols.iter().enumerate() {
            let zi = zr[col].to_f64() + bias[col];
            let pos = label == cp.class;
            let (y, s) = if pos {
                (1.0, cp.w_pos)
            } else {
                (0.0, cp.w_neg)
            };
            let res = s * (sigmoid(zi) - y) * cp.inv_sw;
            acc[col].0 += s * logistic_loss(pos, zi);
            acc[col].1 += res;
            rr[col] = T::from_f64(res);
        }
    }
    acc
}

fn run<T: WithDType>(
    rows: &dyn RowBlocks,
    labels: &[u32],
    d: usize,
    jobs: &[Prepared],
    x0: Vec<Vec<f64>>,
    opts: &FitOptions,
) -> Result<Vec<LinearFit>, HeadError> {
    let eval = |active: &[usize], points: &[&[f64]]| -> Result<Vec<Evaluation>, HeadError> {
        // A single column is padded with a zero column: candle's CPU matmul
        // takes another kernel for one column, and with >= 2 columns every
        // column's result is bitwise the same whatever the width (measured),
        // so a job alone and the same job fused follow the same trajectory.
        let a = active.len();
        let width = a.max(2);
        let cols: Vec<Prepared> = active.iter().map(|&j| jobs[j]).collect();
        let bias: Vec<f64> = points.iter().map(|p| p[d]).collect();
        let mut w = vec![0.0f64; d * width];
        for (col, p) in points.iter().enumerate() {
            for (k, &v) in p[..d].iter().enumerate() {
                w[k * width + col] = v;
            }
        }
        let (partial, g) = blocked_pass::<T, _>(rows, labels, &w, width, |zc, rc, lc| {
            chunk_sums(&cols, &bias, width, (zc, rc, lc))
        })?;
        let mut sums = vec![(0.0f64, 0.0f64); a];
        for chunk in &partial {
            for (s, c) in sums.iter_mut().zip(chunk) {
                s.0 += c.0;
                s.1 += c.1;
            }
        }
        Ok(points
            .iter()
            .enumerate()
            .map(|(col, p)| {
                let cp = cols[col];
                let wsq: f64 = p[..d].iter().map(|v| v * v).sum();
                let mut grad: Vec<f64> =
                    (0..d).map(|k| g[k * width + col] + cp.l2 * p[k]).collect();
                grad.push(sums[col].1);
                Evaluation {
                    f: sums[col].0 * cp.inv_sw + 0.5 * cp.l2 * wsq,
                    g: grad,
                }
            })
            .collect())
    };
    let solutions = minimize_batched(
        x0,
        opts,
        noise_for(T::DTYPE),
        |j| format!("binary job {j} (class {})", jobs[j].class),
        eval,
    )?;
    Ok(solutions
        .into_iter()
        .zip(jobs)
        .map(|(s, job)| LinearFit {
            w: s.x[..d].iter().map(|&v| v as f32).collect(),
            b: vec![s.x[d] as f32],
            iterations: s.iterations,
            converged: s.converged(),
            objective: s.f * job.scale,
        })
        .collect())
}
