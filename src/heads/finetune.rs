//! Heads stage: fine-tuning the top of the backbone. From the cached
//! activations entering block `cut` (see `features::efficientnet_lite::top`),
//! trains the blocks above the cut, the head convolution and a new linear
//! multiclass head, jointly, through the same loop as the MLP heads
//! ([`super::epochs::train_epochs`]: seeded batch order, AdamW, early
//! stopping on the validation loss). Nothing below the cut is touched: its
//! outputs are the cached inputs.
//!
//! The forward pass runs on candle with autograd, channels-last
//! (`[B, H, W, C]`): pointwise convolutions as one matmul, the depthwise
//! convolution as a sum over its `k x k` taps of shifted (and, at stride 2,
//! subsampled) views times per-channel weights, TF "SAME" padding, ReLU6 as
//! a clamp ([`depthwise_taps`], shared with inference on GPUs), global
//! average pooling, then the linear head. Gradients come
//! from `backward()` of `sum(z * dL/dz)` with `dL/dz` computed on the host in
//! f64, as for the MLP heads. The new head starts at zero and has its own
//! learning rate (`head_lr`); the pretrained layers use `lr`.

use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::epochs::{train_epochs, weighted_loss, CResult, History, LoopSpec, OnEpoch, Trainable};
use super::objective::{class_counts, class_weights};
use super::{ClassWeighting, HeadError};
use crate::features::depthwise_taps::{depthwise_taps, relu6};
use crate::features::efficientnet_lite::top::{DenseWeights, TopWeights};

/// Settings of a fine-tune (`finetune = { blocks = 1, lr = 1e-4, epochs = 30 }`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneSpec {
    /// MBConv blocks trained, counted from the top (0: only the head conv).
    pub blocks: usize,
    /// AdamW learning rate of the pretrained layers above the cut.
    pub lr: f64,
    /// AdamW learning rate of the new linear head.
    pub head_lr: f64,
    pub weight_decay: f64,
    /// Epoch cap.
    pub epochs: usize,
    /// Early stopping: epochs without a lower validation loss.
    pub patience: usize,
    pub batch_size: usize,
}

impl Default for FinetuneSpec {
    fn default() -> Self {
        FinetuneSpec {
            blocks: 1,
            lr: 1e-4,
            head_lr: 1e-3,
            weight_decay: 1e-4,
            epochs: 30,
            patience: 5,
            batch_size: 64,
        }
    }
}

impl FinetuneSpec {
    /// Checks every field; an error names it.
    pub fn validate(&self) -> Result<(), HeadError> {
        let h = self.head_lr;
        if !(h.is_finite() && h > 0.0) {
            return Err(HeadError::InvalidOption {
                field: "head_lr",
                value: h.to_string(),
                reason: "must be finite and > 0",
            });
        }
        self.loop_spec().validate("epochs")
    }

    /// The optimizer and stopping settings for the shared loop (`lr` is the
    /// pretrained layers'; the head's is a factor on it).
    fn loop_spec(&self) -> LoopSpec {
        LoopSpec {
            lr: self.lr,
            weight_decay: self.weight_decay,
            max_epochs: self.epochs,
            patience: self.patience,
            batch_size: self.batch_size,
        }
    }
}

/// A trained top: the fine-tuned layers above the cut and the new head.
#[derive(Debug, Clone)]
pub struct FinetuneFit {
    pub top: TopWeights,
    /// `[1280, K]` linear head on the pooled features.
    pub fc: DenseWeights,
    pub history: History,
}

/// Top layers + head as one trainable model.
#[derive(Clone)]
struct TopModel {
    top: TopWeights,
    fc: DenseWeights,
    head_scale: f32,
}

fn dense_params(d: &mut DenseWeights) -> [&mut Vec<f32>; 2] {
    [&mut d.w, &mut d.b]
}

impl TopModel {
    /// `(data, shape)` of every parameter, in `params_mut` order.
    fn shapes(&self) -> Vec<(&[f32], Vec<usize>)> {
        fn dense(d: &DenseWeights) -> [(&[f32], Vec<usize>); 2] {
            [(&d.w, vec![d.inputs, d.outputs]), (&d.b, vec![d.outputs])]
        }
        let mut out = Vec::new();
        for b in &self.top.blocks {
            if let Some(e) = &b.expand {
                out.extend(dense(e));
            }
            let c = b.dw_b.len();
            out.push((&b.dw_w[..], vec![b.kernel * b.kernel, c]));
            out.push((&b.dw_b[..], vec![c]));
            out.extend(dense(&b.project));
        }
        out.extend(dense(&self.top.head));
        out.extend(dense(&self.fc));
        out
    }

    /// Logits `[B, K]` of flattened NCHW activations `x` with parameters `p`
    /// (in `params_mut` order).
    fn forward(&self, x: &Tensor, p: &[Tensor]) -> CResult<Tensor> {
        let (c, h, w) = self.top.input;
        let b = x.dim(0)?;
        let mut x = x
            .reshape((b, c, h, w))?
            .permute((0, 2, 3, 1))?
            .contiguous()?;
        let mut i = 0;
        let mut next = || {
            i += 1;
            &p[i - 1]
        };
        for blk in &self.top.blocks {
            let input = x.clone();
            let mut y = x;
            if blk.expand.is_some() {
                let (w, bias) = (next(), next());
                y = pointwise(&y, w, bias, true)?;
            }
            let (w, bias) = (next(), next());
            y = depthwise_taps(&y, w, bias, blk.kernel, blk.stride, true)?;
            let (w, bias) = (next(), next());
            y = pointwise(&y, w, bias, false)?;
            x = if blk.residual { (y + input)? } else { y };
        }
        let (w, bias) = (next(), next());
        let y = pointwise(&x, w, bias, true)?;
        let (b, h, w_, c) = y.dims4()?;
        let pooled = y.reshape((b, h * w_, c))?.mean(1)?;
        let (w, bias) = (next(), next());
        pooled.matmul(w)?.broadcast_add(bias)
    }

    fn tensors(&self, device: &Device) -> CResult<Vec<Tensor>> {
        self.shapes()
            .into_iter()
            .map(|(d, s)| Tensor::from_slice(d, s, device))
            .collect()
    }
}

/// `[B, H, W, Cin] . w [Cin, Cout] + b`, optionally ReLU6.
fn pointwise(x: &Tensor, w: &Tensor, b: &Tensor, act: bool) -> CResult<Tensor> {
    let (n, h, wd, cin) = x.dims4()?;
    let cout = w.dim(1)?;
    let y = x
        .reshape((n * h * wd, cin))?
        .matmul(w)?
        .broadcast_add(b)?
        .reshape((n, h, wd, cout))?;
    if act {
        relu6(&y)
    } else {
        Ok(y)
    }
}

impl Trainable for TopModel {
    fn params_mut(&mut self) -> Vec<&mut Vec<f32>> {
        let mut out = Vec::new();
        for b in &mut self.top.blocks {
            if let Some(e) = &mut b.expand {
                out.extend(dense_params(e));
            }
            out.push(&mut b.dw_w);
            out.push(&mut b.dw_b);
            out.extend(dense_params(&mut b.project));
        }
        out.extend(dense_params(&mut self.top.head));
        out.extend(dense_params(&mut self.fc));
        out
    }

    fn decays(&self) -> Vec<bool> {
        // Weights (rank 2) decay, biases do not.
        self.shapes().iter().map(|(_, s)| s.len() == 2).collect()
    }

    fn lr_scales(&self) -> Option<Vec<f32>> {
        let n = self.shapes().len();
        Some(
            (0..n)
                .map(|i| if i + 2 >= n { self.head_scale } else { 1.0 })
                .collect(),
        )
    }

    fn gradients(&self, x: &Tensor, rows: &[(f64, u32)]) -> CResult<Option<(f64, Vec<Vec<f32>>)>> {
        let vars: Vec<Var> = self
            .tensors(x.device())?
            .iter()
            .map(Var::from_tensor)
            .collect::<CResult<_>>()?;
        let params: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let z = self.forward(x, &params)?;
        let mut dz = vec![0f32; z.elem_count()];
        let zh = z.flatten_all()?.to_vec1::<f32>()?;
        let Some(loss) = weighted_loss(&zh, rows, Some(&mut dz)) else {
            return Ok(None);
        };
        let dz = Tensor::from_vec(dz, z.dims(), x.device())?;
        let grads = (z * dz)?.sum_all()?.backward()?;
        let mut out = Vec::with_capacity(vars.len());
        for v in &vars {
            out.push(match grads.get(v.as_tensor()) {
                Some(g) => g.flatten_all()?.to_vec1::<f32>()?,
                None => vec![0.0; v.elem_count()],
            });
        }
        Ok(Some((loss, out)))
    }

    fn logits(&self, x: &Tensor) -> CResult<Vec<f32>> {
        const ROWS: usize = 128;
        let params = self.tensors(x.device())?;
        let n = x.dim(0)?;
        let mut out = Vec::new();
        for start in (0..n).step_by(ROWS) {
            let z = self.forward(&x.narrow(0, start, ROWS.min(n - start))?, &params)?;
            out.extend(z.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }
}

fn check_rows(
    x: &Tensor,
    labels: &[u32],
    top: &TopWeights,
    field: &'static str,
) -> Result<(), HeadError> {
    let (c, h, w) = top.input;
    let ok = x
        .dims2()
        .is_ok_and(|(n, d)| n == labels.len() && d == c * h * w);
    if !ok {
        return Err(HeadError::Shape {
            field,
            expected: format!(
                "[{}, {}] activations (C {c} x H {h} x W {w})",
                labels.len(),
                c * h * w
            ),
            got: format!("{:?}", x.dims()),
        });
    }
    if labels.is_empty() {
        return Err(HeadError::Empty { field });
    }
    Ok(())
}

/// Fine-tunes `top` plus a new `k`-class head on activations `x_tr` (rows
/// of the cut's flattened activations), early-stopping on `x_va`.
#[allow(clippy::too_many_arguments)]
pub fn finetune(
    top: TopWeights,
    (x_tr, labels_tr): (&Tensor, &[u32]),
    (x_va, labels_va): (&Tensor, &[u32]),
    k: usize,
    weighting: ClassWeighting,
    spec: &FinetuneSpec,
    seed: u64,
    on_epoch: OnEpoch,
) -> Result<FinetuneFit, HeadError> {
    spec.validate()?;
    if k < 2 {
        return Err(HeadError::InvalidK { k });
    }
    check_rows(x_tr, labels_tr, &top, "x_tr")?;
    check_rows(x_va, labels_va, &top, "x_va")?;
    let c = HeadError::candle;
    let x_tr = x_tr.to_dtype(DType::F32).map_err(c("x_tr: f32 copy"))?;
    let x_va = x_va.to_dtype(DType::F32).map_err(c("x_va: f32 copy"))?;
    let targets = |labels: &[u32]| -> Result<Vec<(f64, u32)>, HeadError> {
        let cw = class_weights(weighting, &class_counts(labels, k)?);
        Ok(labels.iter().map(|&l| (cw[l as usize], l)).collect())
    };
    let (tr, va) = (targets(labels_tr)?, targets(labels_va)?);
    let width = top.head.outputs;
    let model = TopModel {
        top,
        fc: DenseWeights {
            w: vec![0.0; width * k],
            b: vec![0.0; k],
            inputs: width,
            outputs: k,
        },
        head_scale: (spec.head_lr / spec.lr) as f32,
    };
    let loop_spec = spec.loop_spec();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let r = train_epochs(
        model,
        (&x_tr, &tr),
        (&x_va, &va),
        &loop_spec,
        &mut rng,
        ("fine-tuned top", on_epoch),
    )?;
    Ok(FinetuneFit {
        top: r.model.top,
        fc: r.model.fc,
        history: r.history,
    })
}

/// Logits `[N, K]` (host, row-major) of a fine-tuned top on activation rows `x`.
pub fn finetune_logits(fit: &FinetuneFit, x: &Tensor) -> Result<Vec<f32>, HeadError> {
    let model = TopModel {
        top: fit.top.clone(),
        fc: fit.fc.clone(),
        head_scale: 1.0,
    };
    model
        .logits(x)
        .map_err(HeadError::candle("fine-tuned top: forward"))
}

#[cfg(test)]
#[path = "finetune_tests.rs"]
mod tests;
