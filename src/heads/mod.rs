//! Heads stage: cached, standardized features -> trained linear heads.
//!
//! Sits between `features` (cached `[N, D]` embeddings per split) and
//! `calibration`. Two kinds of head, both exactly scikit-learn's
//! `LogisticRegression` (L2 penalty on the weights, intercept not penalized):
//!
//! * one-vs-rest binary specialists ([`fit_binary`]): any number of
//!   [`BinaryJob`]s (class x C x weighting) trained *fused* in one `[D, jobs]`
//!   weight matrix, each job with its own L-BFGS state and its own early stop;
//! * one multinomial softmax head ([`fit_softmax`]), `W` is `[D, K]`.
//!
//! The objective reported everywhere is scikit-learn's, for sample weights
//! `s_i` (class weighting) and the stable `l(y, z) = max(z, 0) - z y +
//! log(1 + exp(-|z|))`:
//!
//! ```text
//! J(w, b) = 0.5 ||w||^2 + C * sum_i s_i * l(y_i, x_i . w + b)           (binary)
//! J(W, b) = 0.5 ||W||_F^2 + C * sum_i s_i * CE(y_i, softmax(x_i W + b))  (softmax)
//! ```
//!
//! The optimizer minimizes the rescaled `f = J / (C * sum_i s_i)` (scikit-learn
//! scales the same way), with hand-written gradients: per evaluation, two big
//! matmuls on the candle device (`X . W` and `X^T . R`, in the dtype of `x`:
//! f32, or f64 for exact checks) and the per-row loss / residual bookkeeping in
//! f64 on the host.
//!
//! Fusion does not change results: every column has its own L-BFGS state, the
//! host sums run over fixed row chunks, and a lone column is padded to two
//! because candle's CPU matmul gives every column of a >= 2-column product
//! bitwise the same result whatever the width (measured): a job alone and the
//! same job among 200 get bitwise-equal weights on the CPU (on CUDA, cuBLAS
//! may round differently by width; results then agree to the tolerance).
//!
//! Files: [`standardize`] (per-feature mean/std), [`objective`] (host-side
//! losses, weights, logits, objectives and validation losses), [`lbfgs`]
//! (batched L-BFGS with per-column state), [`binary`] and [`softmax`] (the
//! fused evaluations on candle), [`rows`] (where their training rows come
//! from: a tensor in memory or a memory-mapped split file read in row
//! blocks, and the evaluation skeleton both fits share).
//!
//! Streaming: the linear heads ([`fit_binary_rows`], [`fit_softmax_rows`])
//! read their rows through [`rows::RowBlocks`], so over a mapped file a fit
//! holds one block of rows plus `O(D x heads)` state, whatever N. The MLP
//! and fine-tuning heads ([`mlp`], [`finetune`]) train on mini-batches of an
//! in-memory matrix and do not stream.

pub mod binary;
pub mod epochs;
pub mod finetune;
pub mod lbfgs;
pub mod mlp;
pub mod objective;
pub mod params;
pub mod rows;
pub mod softmax;
pub mod standardize;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod timing;

pub use binary::{fit_binary, fit_binary_from, fit_binary_rows};
pub use mlp::{fit_mlp_binary, fit_mlp_softmax, try_mlp_logits, MlpFit, MlpLayer, MlpSpec};
pub use objective::{
    binary_objective, softmax_objective, try_binary_val_loss, try_linear_logits,
    try_softmax_val_loss,
};
pub use params::{HeadKind, HeadParams};
pub use rows::{MappedRows, RowBlocks, TensorRows};
pub use softmax::{fit_softmax, fit_softmax_from, fit_softmax_rows};
pub use standardize::Standardizer;
#[cfg(test)]
pub use {
    mlp::mlp_logits,
    objective::{binary_val_loss, linear_logits, softmax_val_loss},
};

/// Errors of the heads stage. Each names the field, head or class at fault.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("{field}: expected {expected}, got {got}")]
    Shape {
        field: &'static str,
        expected: String,
        got: String,
    },
    #[error("{field}: no rows (need at least one)")]
    Empty { field: &'static str },
    #[error("x: dtype {dtype:?} is not supported by the heads (use f32, or f64 for exact checks)")]
    Dtype { dtype: candle_core::DType },
    #[error("jobs: the list of binary jobs is empty")]
    NoJobs,
    #[error("labels[{row}] = {label} is out of range for k = {k} classes")]
    LabelOutOfRange { row: usize, label: u32, k: usize },
    #[error("{head}: c must be finite and > 0, got {value}")]
    InvalidC { head: String, value: f64 },
    #[error(
        "binary job {job} (class {class}): the training labels have {positives} positive and \
         {negatives} negative rows; a one-vs-rest head needs both"
    )]
    OneSided {
        job: usize,
        class: u32,
        positives: usize,
        negatives: usize,
    },
    #[error("k: a softmax head needs at least 2 classes, got {k}")]
    InvalidK { k: usize },
    #[error("fit options: {field} = {value} is invalid: {reason}")]
    InvalidOption {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{head}: the objective is not finite at the starting point (non-finite values in x?)")]
    NonFinite { head: String },
    #[error("training rows")]
    Features {
        #[source]
        source: crate::features::store::StoreError,
    },
    #[error("{context}")]
    Candle {
        context: &'static str,
        #[source]
        source: candle_core::Error,
    },
}

impl HeadError {
    pub(crate) fn candle(context: &'static str) -> impl FnOnce(candle_core::Error) -> HeadError {
        move |source| HeadError::Candle { context, source }
    }
}

/// How rows are weighted in the loss (scikit-learn's `class_weight`).
///
/// `Balanced`: `s_i = n / (n_classes * n_{y_i})` (binary: `n_classes = 2`,
/// positives vs the rest); `None`: every `s_i = 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClassWeighting {
    Balanced,
    None,
}

impl crate::util::choice::Choice for ClassWeighting {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("none", ClassWeighting::None),
        ("balanced", ClassWeighting::Balanced),
    ];
    const UNKNOWN: &'static str = "unknown weighting";
}

/// L-BFGS settings shared by every head of one call.
///
/// A head (a column of a fused binary call, or the softmax head) stops as
/// *converged* when the max-norm of the gradient of the rescaled objective
/// `f = J / (C sum s)` is `<= tol` (scikit-learn's / scipy's `gtol`, on the
/// same scale), or when an Armijo step decreases `f` by at most
/// `64 eps_f64 * max(|f|, 1)` (scikit-learn's `ftol`); it stops *unconverged*
/// after `max_iter` accepted steps, or when 50 backtracking steps find no
/// acceptable point (see [`lbfgs`] for the line search).
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// Accepted L-BFGS steps per head (default 500).
    pub max_iter: usize,
    /// Gradient max-norm tolerance on the rescaled objective (default 1e-6).
    pub tol: f64,
    /// L-BFGS history length m (default 10).
    pub history: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            max_iter: 500,
            tol: 1e-6,
            history: 10,
        }
    }
}

impl FitOptions {
    /// Checks every field; an error names the field.
    pub fn validate(&self) -> Result<(), HeadError> {
        if self.max_iter == 0 {
            return Err(HeadError::InvalidOption {
                field: "max_iter",
                value: "0".into(),
                reason: "must be >= 1",
            });
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(HeadError::InvalidOption {
                field: "tol",
                value: self.tol.to_string(),
                reason: "must be finite and >= 0",
            });
        }
        if self.history == 0 {
            return Err(HeadError::InvalidOption {
                field: "history",
                value: "0".into(),
                reason: "must be >= 1",
            });
        }
        Ok(())
    }
}

/// One one-vs-rest problem: class `class` vs the rest, with inverse L2
/// strength `c` (scikit-learn's C).
#[derive(Debug, Clone, Copy)]
pub struct BinaryJob {
    pub class: u32,
    pub c: f64,
    pub weighting: ClassWeighting,
}

/// A trained linear head.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinearFit {
    /// Binary: `[D]`. Softmax: `[D * K]`, row-major `[D, K]`.
    pub w: Vec<f32>,
    /// Binary: `[1]`. Softmax: `[K]` (centered to sum 0; softmax is invariant to a shift).
    pub b: Vec<f32>,
    /// Accepted L-BFGS steps.
    pub iterations: usize,
    /// Whether the head met the gradient or relative-decrease test (see [`FitOptions`]).
    pub converged: bool,
    /// scikit-learn-form objective `J` at the returned weights, as evaluated
    /// during training (matmuls in the dtype of `x`, sums in f64).
    pub objective: f64,
}

impl LinearFit {
    /// Number of outputs: 1 for a binary head, K for a softmax head.
    pub fn outputs(&self) -> usize {
        self.b.len()
    }
}
