//! Heads stage (cached, standardized features -> trained heads): MLP heads,
//! the "classic design" option next to the linear heads (e.g. hidden
//! `[1024, 512]`), on the same `[N, D]` feature tensors as
//! [`super::fit_binary`] / [`super::fit_softmax`]; host weights ([`MlpFit`])
//! go on to calibration / scoring through [`try_mlp_logits`].
//!
//! [`fit_mlp_binary`]: one-vs-rest specialist, one logit, stable
//! BCE-with-logits `relu(z) - z y + log(1 + exp(-|z|))`; [`fit_mlp_softmax`]:
//! K outputs, cross-entropy. Layers `h_l = relu(h_{l-1} W_l + b_l)`, `W_l`
//! row-major `[in, out]`, no activation after the last.
//!
//! Training, in f32 on the device of `x_tr`: mini-batches in an order
//! reshuffled every epoch, batch loss `sum s_i l_i / sum s_i` (training class
//! weights, PyTorch's weighted mean). Per step: forward on candle, loss and
//! `dL/dz` on the host in f64 (as [`super::binary`]), a hand-written backward
//! on candle (no gradient for the frozen features), one fused host AdamW pass
//! (candle's / PyTorch's formula, betas (0.9, 0.999), eps 1e-8; decoupled
//! decay on the weight matrices only, never the biases). At `1280 -> 1024 ->
//! 512 -> 40`, batch 256, autograd + `candle_nn::AdamW` took ~75 ms of
//! backward and ~100 ms of optimizer per step against ~16 ms of forward.
//! Init: PyTorch `Linear`'s `U(+-1/sqrt(in))` for weights and biases from
//! `ChaCha8Rng::seed_from_u64(seed)` (per layer `w` row-major, then `b`); the
//! same generator shuffles every epoch: same seed, device and thread count ->
//! identical weights.
//!
//! Early stopping on the validation loss of every epoch, computed like the
//! linear heads' ([`super::try_binary_val_loss`], [`super::try_softmax_val_loss`]:
//! weights from the validation split's own counts, one scale for MLP and
//! linear heads): stop after `patience` epochs without improvement
//! (`converged`) or at `max_epochs`; the best epoch's weights are returned.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::epochs::{train_epochs, weighted_loss, CResult, LoopSpec, Trainable};
use super::objective::{binary_weights, class_counts, class_weights};
use super::{ClassWeighting, HeadError};

#[cfg(test)]
#[path = "mlp_tests.rs"]
mod tests;

/// Architecture and optimizer settings of an MLP head (missing fields
/// deserialize to the defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MlpSpec {
    /// Hidden widths, ReLU after each (default `[1024, 512]`); empty = linear.
    pub hidden: Vec<usize>,
    /// AdamW learning rate (default 1e-3).
    pub lr: f64,
    /// Decoupled decay of the weight matrices, never the biases (default 1e-4).
    pub weight_decay: f64,
    /// Epoch cap (default 200).
    pub max_epochs: usize,
    /// Stop after this many epochs without a lower validation loss (default 10).
    pub patience: usize,
    /// Rows per mini-batch (default 256); an epoch's last batch may be smaller.
    pub batch_size: usize,
}

impl Default for MlpSpec {
    fn default() -> Self {
        MlpSpec {
            hidden: vec![1024, 512],
            lr: 1e-3,
            weight_decay: 1e-4,
            max_epochs: 200,
            patience: 10,
            batch_size: 256,
        }
    }
}

impl MlpSpec {
    /// Checks every field; an error names the field.
    pub fn validate(&self) -> Result<(), HeadError> {
        let h = &self.hidden;
        if h.contains(&0) {
            return Err(HeadError::InvalidOption {
                field: "hidden",
                value: format!("{h:?}"),
                reason: "every width must be >= 1",
            });
        }
        self.loop_spec().validate("max_epochs")
    }
}

/// One trained layer: `out = in . w + b`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpLayer {
    /// Row-major `[inputs, outputs]`.
    pub w: Vec<f32>,
    /// `[outputs]`.
    pub b: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

/// A trained MLP head: the best epoch's weights.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpFit {
    pub layers: Vec<MlpLayer>,
    /// Epochs run.
    pub epochs: usize,
    /// 1-based epoch whose weights are returned (lowest validation loss).
    pub best_epoch: usize,
    /// Validation loss of the returned weights (see the module docs).
    pub val_loss: f64,
    /// Stopped early by `patience` (true) or ran `max_epochs` (false).
    pub converged: bool,
}

impl MlpFit {
    /// Number of outputs: 1 for a binary head, K for a softmax head.
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }
}

fn shape(field: &'static str, expected: String, got: String) -> HeadError {
    HeadError::Shape {
        field,
        expected,
        got,
    }
}

/// Checks one split (`x`, `labels`) and, when given, its width; returns `(n, d)`.
fn check_split(
    (x, labels): (&Tensor, &[u32]),
    (fx, fl): (&'static str, &'static str),
    width: Option<usize>,
) -> Result<(usize, usize), HeadError> {
    let dims = format!("{:?}", x.dims());
    let rank2 = || shape(fx, "a rank-2 [N, D] tensor".into(), dims);
    let (n, d) = x.dims2().map_err(|_| rank2())?;
    if !matches!(x.dtype(), DType::F32 | DType::F64) {
        return Err(HeadError::Dtype { dtype: x.dtype() });
    }
    if labels.len() != n {
        let expected = format!("{n} (one per row of {fx})");
        return Err(shape(fl, expected, labels.len().to_string()));
    }
    if n == 0 {
        return Err(HeadError::Empty { field: fx });
    }
    match width {
        Some(w) if w != d => Err(shape(fx, format!("{w} columns (as x_tr)"), d.to_string())),
        _ if d == 0 => Err(shape(fx, "at least one column".into(), "0".into())),
        _ => Ok((n, d)),
    }
}

/// Binary specialist for `class` (one output, a logit), class weighting like
/// the linear heads (balanced: `s_i = n / (2 n_side)`).
#[allow(clippy::too_many_arguments)]
pub fn fit_mlp_binary(
    x_tr: &Tensor,
    labels_tr: &[u32],
    x_va: &Tensor,
    labels_va: &[u32],
    class: u32,
    weighting: ClassWeighting,
    spec: &MlpSpec,
    seed: u64,
) -> Result<MlpFit, HeadError> {
    spec.validate()?;
    let (n, d) = check_split((x_tr, labels_tr), ("x_tr", "labels_tr"), None)?;
    check_split((x_va, labels_va), ("x_va", "labels_va"), Some(d))?;
    let targets = |labels: &[u32]| -> (Vec<(f64, u32)>, usize) {
        let positives = labels.iter().filter(|&&l| l == class).count();
        let (wp, wn) = binary_weights(weighting, positives, labels.len());
        let row = |&l: &u32| if l == class { (wp, 1) } else { (wn, 0) };
        (labels.iter().map(row).collect(), positives)
    };
    let (tr, positives) = targets(labels_tr);
    if positives == 0 || positives == n {
        let negatives = n - positives;
        return Err(HeadError::OneSided {
            job: 0,
            class,
            positives,
            negatives,
        });
    }
    let head = format!("mlp binary head (class {class})");
    let va = targets(labels_va).0;
    train((x_tr, tr), (x_va, va), 1, spec, seed, head)
}

/// Multiclass softmax MLP (`k` outputs), weighted cross-entropy
/// (balanced: `s_i = n / (K n_{y_i})`).
#[allow(clippy::too_many_arguments)]
pub fn fit_mlp_softmax(
    x_tr: &Tensor,
    labels_tr: &[u32],
    x_va: &Tensor,
    labels_va: &[u32],
    k: usize,
    weighting: ClassWeighting,
    spec: &MlpSpec,
    seed: u64,
) -> Result<MlpFit, HeadError> {
    spec.validate()?;
    let (_, d) = check_split((x_tr, labels_tr), ("x_tr", "labels_tr"), None)?;
    check_split((x_va, labels_va), ("x_va", "labels_va"), Some(d))?;
    if k < 2 {
        return Err(HeadError::InvalidK { k });
    }
    let targets = |labels: &[u32]| -> Result<Vec<(f64, u32)>, HeadError> {
        let cw = class_weights(weighting, &class_counts(labels, k)?);
        Ok(labels.iter().map(|&l| (cw[l as usize], l)).collect())
    };
    let (tr, va) = (targets(labels_tr)?, targets(labels_va)?);
    let head = "mlp softmax head".into();
    train((x_tr, tr), (x_va, va), k, spec, seed, head)
}

/// Seeded PyTorch-`Linear` initialization, layer by layer (`w` row-major, then `b`).
fn init_layers(dims: &[usize], rng: &mut ChaCha8Rng) -> Vec<MlpLayer> {
    let mut layers = Vec::new();
    for io in dims.windows(2) {
        let (inputs, outputs) = (io[0], io[1]);
        let bound = 1.0 / (inputs as f32).sqrt();
        let mut draw =
            |m: usize| -> Vec<f32> { (0..m).map(|_| rng.random_range(-bound..bound)).collect() };
        let (w, b) = (draw(inputs * outputs), draw(outputs));
        layers.push(MlpLayer {
            w,
            b,
            inputs,
            outputs,
        });
    }
    layers
}

/// The layers as f32 `(w [in, out], b [out])` tensors on `device`.
fn upload(layers: &[MlpLayer], device: &Device) -> CResult<Vec<(Tensor, Tensor)>> {
    let up = |l: &MlpLayer| -> CResult<(Tensor, Tensor)> {
        let w = Tensor::from_slice(&l.w, (l.inputs, l.outputs), device)?;
        Ok((w, Tensor::from_slice(&l.b, l.outputs, device)?))
    };
    layers.iter().map(up).collect()
}

fn host(t: &Tensor) -> CResult<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// The candle forward pass used in training: activations `[x, h_1, .., z]`
/// (ReLU between layers, none after the last).
fn forward(x: &Tensor, params: &[(Tensor, Tensor)]) -> CResult<Vec<Tensor>> {
    let mut acts = vec![x.clone()];
    for (i, (w, b)) in params.iter().enumerate() {
        let z = acts[i].matmul(w)?.broadcast_add(b)?;
        acts.push(if i + 1 < params.len() { z.relu()? } else { z });
    }
    Ok(acts)
}

/// Candle logits `[n, outputs]` of `layers` on f32 `x` (the training forward pass).
pub(crate) fn candle_logits(x: &Tensor, layers: &[MlpLayer]) -> CResult<Tensor> {
    let mut acts = forward(x, &upload(layers, x.device())?)?;
    Ok(acts.pop().expect("forward returns at least x"))
}

/// Per layer `(dW_l, db_l)` on the host.
type Grads = Vec<(Vec<f32>, Vec<f32>)>;

/// Batch loss and host gradients `[(dW_l, db_l)]` at `layers` on the f32 rows
/// `x` with targets `rows`: forward on candle, `dL/dz` on the host, then
/// `dW_l = h_{l-1}^T dZ_l`, `db_l = sum_rows dZ_l`,
/// `dZ_{l-1} = (dZ_l W_l^T) * [h_{l-1} > 0]` on candle (ReLU' = 0 at 0).
fn gradients(
    x: &Tensor,
    rows: &[(f64, u32)],
    layers: &[MlpLayer],
) -> CResult<Option<(f64, Grads)>> {
    let params = upload(layers, x.device())?;
    let acts = forward(x, &params)?;
    let z = acts.last().expect("forward returns at least x");
    let mut dz = vec![0.0f32; z.elem_count()];
    let Some(loss) = weighted_loss(&host(z)?, rows, Some(&mut dz)) else {
        return Ok(None);
    };
    let mut g = Tensor::from_vec(dz, z.dims(), x.device())?;
    let mut grads = Vec::with_capacity(layers.len());
    for l in (0..layers.len()).rev() {
        let h = &acts[l];
        grads.push((host(&h.t()?.matmul(&g)?)?, host(&g.sum(0)?)?));
        if l > 0 {
            g = g.matmul(&params[l].0.t()?)?.mul(&h.sign()?)?;
        }
    }
    grads.reverse();
    Ok(Some((loss, grads)))
}

/// The MLP as a [`Trainable`] for the shared loop: parameters `w_1, b_1,
/// w_2, ..`, decay on the weight matrices only.
#[derive(Clone)]
struct MlpModel(Vec<MlpLayer>);

impl Trainable for MlpModel {
    fn params_mut(&mut self) -> Vec<&mut Vec<f32>> {
        self.0
            .iter_mut()
            .flat_map(|l| [&mut l.w, &mut l.b])
            .collect()
    }

    fn decays(&self) -> Vec<bool> {
        self.0.iter().flat_map(|_| [true, false]).collect()
    }

    fn gradients(&self, x: &Tensor, rows: &[(f64, u32)]) -> CResult<Option<(f64, Vec<Vec<f32>>)>> {
        Ok(gradients(x, rows, &self.0)?
            .map(|(loss, g)| (loss, g.into_iter().flat_map(|(w, b)| [w, b]).collect())))
    }

    fn logits(&self, x: &Tensor) -> CResult<Vec<f32>> {
        host(&candle_logits(x, &self.0)?)
    }
}

impl MlpSpec {
    /// The optimizer and stopping settings for the shared loop.
    pub fn loop_spec(&self) -> LoopSpec {
        LoopSpec {
            lr: self.lr,
            weight_decay: self.weight_decay,
            max_epochs: self.max_epochs,
            patience: self.patience,
            batch_size: self.batch_size,
        }
    }
}

/// Initializes the layers from `seed` and runs the shared loop; targets
/// `(s_i, y_i)` per row of each split.
fn train(
    (x_tr, tr): (&Tensor, Vec<(f64, u32)>),
    (x_va, va): (&Tensor, Vec<(f64, u32)>),
    outputs: usize,
    spec: &MlpSpec,
    seed: u64,
    head: String,
) -> Result<MlpFit, HeadError> {
    let c = HeadError::candle;
    let device = x_tr.device().clone();
    let f32_on = |x: &Tensor| x.to_dtype(DType::F32)?.to_device(&device)?.contiguous();
    let x_tr = f32_on(x_tr).map_err(c("x_tr: f32 copy"))?;
    let x_va = f32_on(x_va).map_err(c("x_va: f32 copy on the device of x_tr"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut dims = vec![x_tr.dims()[1]];
    dims.extend(spec.hidden.iter().chain([&outputs]));
    let model = MlpModel(init_layers(&dims, &mut rng));
    let r = train_epochs(
        model,
        (&x_tr, &tr),
        (&x_va, &va),
        &spec.loop_spec(),
        &mut rng,
        (&head, &|_, _, _| {}),
    )?;
    Ok(MlpFit {
        layers: r.model.0,
        epochs: r.history.epochs,
        best_epoch: r.history.best_epoch,
        val_loss: r.history.val_loss,
        converged: r.history.converged,
    })
}

/// Forward pass on host rows (row-major `[n, d]`) -> logits `[n, outputs]`
/// (ReLU between layers, none after the last), f32.
pub fn try_mlp_logits(x: &[f32], n: usize, d: usize, fit: &MlpFit) -> Result<Vec<f32>, HeadError> {
    let fits = |w: usize, l: &MlpLayer| {
        let ok = l.inputs == w && l.w.len() == w * l.outputs && l.b.len() == l.outputs;
        ok.then_some(l.outputs)
    };
    let width = fit
        .layers
        .iter()
        .try_fold(d, fits)
        .filter(|_| x.len() == n * d);
    let Some(width) = width else {
        let expected = format!("{n} x {d} values, layers chained from {d} inputs");
        let dims: Vec<_> = fit.layers.iter().map(|l| (l.inputs, l.outputs)).collect();
        let got = format!("{} values, layers (in, out) {dims:?}", x.len());
        return Err(shape("x", expected, got));
    };
    // Blocks of rows, so that each weight row is reused across the block.
    const BLOCK: usize = 32;
    let mut out = vec![0.0f32; n * width];
    let blocks = out
        .par_chunks_mut(BLOCK * width.max(1))
        .zip(x.par_chunks(BLOCK * d.max(1)));
    blocks.for_each(|(o, xb)| {
        let mut h = xb.to_vec();
        for (li, l) in fit.layers.iter().enumerate() {
            let rows = h.len() / l.inputs.max(1);
            let mut next: Vec<f32> = (0..rows).flat_map(|_| l.b.iter().copied()).collect();
            for (k, wr) in l.w.chunks_exact(l.outputs.max(1)).enumerate() {
                for (r, nr) in next.chunks_exact_mut(l.outputs.max(1)).enumerate() {
                    let a = h[r * l.inputs + k];
                    if a != 0.0 {
                        nr.iter_mut().zip(wr).for_each(|(v, &w)| *v += a * w);
                    }
                }
            }
            if li + 1 < fit.layers.len() {
                next.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            h = next;
        }
        o.copy_from_slice(&h);
    });
    Ok(out)
}

/// [`try_mlp_logits`], panicking on an error: for tests only (production code
/// handles the error).
#[cfg(test)]
pub fn mlp_logits(x: &[f32], n: usize, d: usize, fit: &MlpFit) -> Vec<f32> {
    try_mlp_logits(x, n, d, fit).unwrap_or_else(|e| panic!("mlp_logits: {e}"))
}
