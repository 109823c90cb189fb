//! Heads stage: the one mini-batch training loop shared by every head
//! trained by gradient steps — MLP heads ([`super::mlp`]) and the fine-tuned
//! top of a backbone ([`super::finetune`]). A [`Trainable`] model supplies
//! host parameters, a batch loss with gradients, and logits; this loop owns
//! the epoch order (reshuffled every epoch from the caller's seeded
//! generator), one fused host AdamW step per batch (candle's / PyTorch's
//! formula, betas (0.9, 0.999), eps 1e-8, decoupled decay only where the
//! model says so), the validation loss after every epoch, and early stopping
//! with the best epoch's parameters kept.

use candle_core::{DType, Tensor};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::objective::{logistic_loss, sigmoid, softmax_ce};
use super::HeadError;

pub(crate) type CResult<T> = candle_core::Result<T>;

/// Optimizer and stopping settings of one run of [`train_epochs`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopSpec {
    pub lr: f64,
    pub weight_decay: f64,
    pub max_epochs: usize,
    pub patience: usize,
    pub batch_size: usize,
}

impl LoopSpec {
    /// Checks every field; an error names it (`epochs_field`: what the
    /// caller's settings call the epoch cap).
    pub fn validate(&self, epochs_field: &'static str) -> Result<(), HeadError> {
        let bad = |field, value: String, reason| {
            Err(HeadError::InvalidOption {
                field,
                value,
                reason,
            })
        };
        let (lr, wd) = (self.lr, self.weight_decay);
        if !(lr.is_finite() && lr > 0.0) {
            return bad("lr", lr.to_string(), "must be finite and > 0");
        }
        if !(wd.is_finite() && wd >= 0.0) {
            return bad("weight_decay", wd.to_string(), "must be finite and >= 0");
        }
        let counts = [
            (epochs_field, self.max_epochs),
            ("patience", self.patience),
            ("batch_size", self.batch_size),
        ];
        match counts.into_iter().find(|c| c.1 == 0) {
            Some((field, _)) => bad(field, "0".into(), "must be >= 1"),
            None => Ok(()),
        }
    }
}

/// A model [`train_epochs`] can train.
pub trait Trainable: Clone {
    /// The parameters, in a fixed order.
    fn params_mut(&mut self) -> Vec<&mut Vec<f32>>;
    /// Per parameter (same order): whether weight decay applies.
    fn decays(&self) -> Vec<bool>;
    /// Batch loss `sum s_i l_i / sum s_i` of rows `x` against targets `rows`
    /// `(s_i, y_i)` and its gradients in [`Trainable::params_mut`] order;
    /// `None` when every row weighs 0.
    fn gradients(&self, x: &Tensor, rows: &[(f64, u32)]) -> CResult<Option<(f64, Vec<Vec<f32>>)>>;
    /// Host logits `[n, outputs]` of rows `x` (row-major).
    fn logits(&self, x: &Tensor) -> CResult<Vec<f32>>;
    /// Per parameter: a factor on the learning rate (default: all 1).
    fn lr_scales(&self) -> Option<Vec<f32>> {
        None
    }
}

/// How a run of [`train_epochs`] went.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Epochs run.
    pub epochs: usize,
    /// 1-based epoch whose parameters are kept (lowest validation loss).
    pub best_epoch: usize,
    pub val_loss: f64,
    /// Stopped by `patience` (true) or at `max_epochs` (false).
    pub converged: bool,
    /// Mean training batch loss of every epoch run.
    pub train_loss: Vec<f64>,
    /// Validation loss after every epoch run.
    pub val_history: Vec<f64>,
}

/// What [`train_epochs`] returns: the best epoch's model and the history.
#[derive(Debug, Clone)]
pub struct Trained<M> {
    pub model: M,
    pub history: History,
}

/// `sum_i s_i l_i / sum_i s_i` of logits `z` (`[rows, k]`) against row
/// targets `(s_i, y_i)` (binary, `k = 1`: `y_i` = 1 for the class), in f64;
/// with `dz`, also writes its gradient w.r.t. `z`. `None` when `sum s = 0`.
pub(crate) fn weighted_loss(
    z: &[f32],
    rows: &[(f64, u32)],
    mut dz: Option<&mut [f32]>,
) -> Option<f64> {
    let sw: f64 = rows.iter().map(|r| r.0).sum();
    if sw <= 0.0 || rows.is_empty() {
        return None;
    }
    let k = z.len() / rows.len();
    let (mut loss, mut zr, mut p) = (0.0, vec![0.0; k], vec![0.0; k]);
    for (i, (zi, &(s, y))) in z.chunks_exact(k).zip(rows).enumerate() {
        zr.iter_mut().zip(zi).for_each(|(a, &b)| *a = f64::from(b));
        if k == 1 {
            loss += s * logistic_loss(y == 1, zr[0]);
            p[0] = sigmoid(zr[0]) - f64::from(y);
        } else {
            loss += s * softmax_ce(&zr, y as usize, &mut p);
            p[y as usize] -= 1.0;
        }
        if let Some(d) = dz.as_deref_mut() {
            let scale = s / sw;
            d[i * k..(i + 1) * k]
                .iter_mut()
                .zip(&p)
                .for_each(|(g, &pc)| *g = (scale * pc) as f32);
        }
    }
    Some(loss / sw)
}

/// One fused AdamW step number `t` (from 1) over `params`, with moments `m`,
/// `v` shaped alike. False when a parameter becomes non-finite.
fn adamw(
    params: Vec<&mut Vec<f32>>,
    grads: &[Vec<f32>],
    (m, v): (&mut [Vec<f32>], &mut [Vec<f32>]),
    (decays, scales): (&[bool], &[f32]),
    t: i32,
    spec: &LoopSpec,
) -> bool {
    const CHUNK: usize = 1 << 14;
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f32);
    let (sm, sv) = (1.0 / (1.0 - b1.powi(t)), 1.0 / (1.0 - b2.powi(t)));
    let (lr, sm, sv, b1, b2) = (spec.lr as f32, sm as f32, sv as f32, b1 as f32, b2 as f32);
    let mut finite = true;
    let all = params
        .into_iter()
        .zip(grads)
        .zip(m.iter_mut().zip(v.iter_mut()));
    for ((((theta, g), (m, v)), &decay), &scale) in all.zip(decays).zip(scales) {
        let lr = lr * scale;
        let shrink = if decay {
            1.0 - (spec.lr * spec.weight_decay) as f32 * scale
        } else {
            1.0
        };
        let chunks = theta.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK));
        let moments = m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK));
        let ok = chunks.zip(moments).map(|((t, g), (m, v))| {
            let mut ok = true;
            for (((t, &g), m), v) in t.iter_mut().zip(g).zip(m).zip(v) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *t = *t * shrink - lr * (*m * sm) / ((*v * sv).sqrt() + eps);
                ok &= t.is_finite();
            }
            ok
        });
        finite &= ok.reduce(|| true, |a, b| a && b);
    }
    finite
}

fn all_finite(x: &Tensor) -> CResult<bool> {
    let s = x
        .abs()?
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    Ok(s.is_finite())
}

/// Called after every epoch with (epoch, mean training loss, validation loss).
pub type OnEpoch<'a> = &'a (dyn Fn(usize, f64, f64) + Sync);

/// Trains `model` from its current parameters on `x_tr` (rows with targets
/// `tr`), early-stopping on `x_va` / `va`; `rng` orders the batches.
pub fn train_epochs<M: Trainable>(
    mut model: M,
    (x_tr, tr): (&Tensor, &[(f64, u32)]),
    (x_va, va): (&Tensor, &[(f64, u32)]),
    spec: &LoopSpec,
    rng: &mut ChaCha8Rng,
    (head, on_epoch): (&str, OnEpoch),
) -> Result<Trained<M>, HeadError> {
    let c = HeadError::candle;
    let non_finite = || HeadError::NonFinite {
        head: head.to_string(),
    };
    for x in [x_tr, x_va] {
        if !all_finite(x).map_err(c("training: finiteness check"))? {
            return Err(non_finite());
        }
    }
    let device = x_tr.device().clone();
    let decays = model.decays();
    let shapes: Vec<usize> = model.params_mut().iter().map(|p| p.len()).collect();
    let scales = model.lr_scales().unwrap_or_else(|| vec![1.0; shapes.len()]);
    let mut m: Vec<Vec<f32>> = shapes.iter().map(|&n| vec![0.0; n]).collect();
    let mut v = m.clone();
    let mut t = 0;
    let mut order: Vec<u32> = (0..tr.len() as u32).collect();
    let mut best = (model.clone(), 0, f64::INFINITY);
    let (mut epochs, mut converged) = (0, false);
    let (mut train_loss, mut val_history) = (Vec::new(), Vec::new());
    while epochs < spec.max_epochs {
        epochs += 1;
        order.shuffle(rng);
        let (mut sum, mut batches) = (0.0, 0usize);
        for batch in order.chunks(spec.batch_size) {
            let rows: Vec<(f64, u32)> = batch.iter().map(|&i| tr[i as usize]).collect();
            let step = (|| {
                let idx = Tensor::from_slice(batch, batch.len(), &device)?;
                model.gradients(&x_tr.index_select(&idx, 0)?, &rows)
            })();
            // `None`: every row of the batch weighs 0, nothing to learn.
            if let Some((loss, grads)) = step.map_err(c("training step"))? {
                t += 1;
                let ok = loss.is_finite()
                    && adamw(
                        model.params_mut(),
                        &grads,
                        (&mut m, &mut v),
                        (&decays, &scales),
                        t,
                        spec,
                    );
                if !ok {
                    return Err(non_finite());
                }
                sum += loss;
                batches += 1;
            }
        }
        train_loss.push(sum / batches.max(1) as f64);
        let z = model.logits(x_va).map_err(c("validation forward"))?;
        let loss = weighted_loss(&z, va, None).unwrap_or(f64::NAN);
        if !loss.is_finite() {
            return Err(non_finite());
        }
        val_history.push(loss);
        on_epoch(epochs, sum / batches.max(1) as f64, loss);
        if loss < best.2 {
            best = (model.clone(), epochs, loss);
        } else if epochs - best.1 >= spec.patience {
            converged = true;
            break;
        }
    }
    Ok(Trained {
        model: best.0,
        history: History {
            epochs,
            best_epoch: best.1,
            val_loss: best.2,
            converged,
            train_loss,
            val_history,
        },
    })
}
