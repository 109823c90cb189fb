//! Heads stage, what a trained head is: the one head-parameters enum that
//! the scheduler's lanes return, selection reads, the ensemble saves and
//! prediction applies. [`HeadKind`] (the config's `linear` / `mlp`) lives
//! here too, next to the parameters it names.

use super::{try_linear_logits, try_mlp_logits, HeadError, LinearFit, MlpFit};
use crate::util::choice::{choice_serde, Choice};

/// What a head is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// Logistic regression (L2 chosen per head from the C grid).
    Linear,
    /// An MLP with `train.mlp.hidden` layers, early-stopped on validation.
    Mlp,
}

impl Choice for HeadKind {
    const TABLE: &'static [(&'static str, Self)] =
        &[("linear", HeadKind::Linear), ("mlp", HeadKind::Mlp)];
    const UNKNOWN: &'static str = "unknown head kind";
}
choice_serde!(HeadKind);

/// The parameters of one trained head.
#[derive(Debug, Clone, PartialEq)]
pub enum HeadParams {
    /// `w` is `[D]` for a specialist, row-major `[D, K]` for the multiclass head.
    Linear(LinearFit),
    Mlp(MlpFit),
}

impl HeadParams {
    pub fn kind(&self) -> HeadKind {
        match self {
            HeadParams::Linear(_) => HeadKind::Linear,
            HeadParams::Mlp(_) => HeadKind::Mlp,
        }
    }

    /// L-BFGS iterations (linear) or epochs run (MLP).
    pub fn iterations(&self) -> usize {
        match self {
            HeadParams::Linear(f) => f.iterations,
            HeadParams::Mlp(m) => m.epochs,
        }
    }

    /// Met the tolerance (linear) or stopped early (MLP).
    pub fn converged(&self) -> bool {
        match self {
            HeadParams::Linear(f) => f.converged,
            HeadParams::Mlp(m) => m.converged,
        }
    }

    /// Training objective (scikit-learn's form); linear heads only.
    pub fn objective(&self) -> Option<f64> {
        match self {
            HeadParams::Linear(f) => Some(f.objective),
            HeadParams::Mlp(_) => None,
        }
    }

    /// The epoch whose weights were kept; MLP heads only.
    pub fn best_epoch(&self) -> Option<usize> {
        match self {
            HeadParams::Linear(_) => None,
            HeadParams::Mlp(m) => Some(m.best_epoch),
        }
    }

    /// The linear fit, if this is a linear head.
    pub fn linear(&self) -> Option<&LinearFit> {
        match self {
            HeadParams::Linear(f) => Some(f),
            HeadParams::Mlp(_) => None,
        }
    }

    /// Logits for standardized rows `[n, d]`: `[n]` or `[n, K]`; an error
    /// when the rows or the weights have the wrong shape.
    pub fn logits(&self, x: &[f32], n: usize, d: usize) -> Result<Vec<f32>, HeadError> {
        match self {
            HeadParams::Linear(f) => try_linear_logits(x, n, d, f),
            HeadParams::Mlp(f) => try_mlp_logits(x, n, d, f),
        }
    }

    /// Number of outputs (1 for a specialist, K for the multiclass head).
    pub fn outputs(&self) -> usize {
        match self {
            HeadParams::Linear(f) => f.b.len(),
            HeadParams::Mlp(f) => f.outputs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::MlpLayer;

    fn linear() -> HeadParams {
        HeadParams::Linear(LinearFit {
            w: vec![1.0, -2.0],
            b: vec![0.5],
            iterations: 7,
            converged: true,
            objective: 3.25,
        })
    }

    fn mlp() -> HeadParams {
        HeadParams::Mlp(MlpFit {
            layers: vec![MlpLayer {
                inputs: 2,
                outputs: 1,
                w: vec![1.0, 1.0],
                b: vec![0.0],
            }],
            epochs: 12,
            best_epoch: 9,
            val_loss: 0.4,
            converged: false,
        })
    }

    #[test]
    fn accessors_read_the_variant() {
        let (l, m) = (linear(), mlp());
        assert_eq!((l.kind(), m.kind()), (HeadKind::Linear, HeadKind::Mlp));
        assert_eq!((l.iterations(), m.iterations()), (7, 12));
        assert_eq!((l.converged(), m.converged()), (true, false));
        assert_eq!((l.objective(), m.objective()), (Some(3.25), None));
        assert_eq!((l.best_epoch(), m.best_epoch()), (None, Some(9)));
        assert!(l.linear().is_some() && m.linear().is_none());
    }

    #[test]
    fn logits_are_checked_not_panicking() {
        // x . w + b = 1*3 - 2*1 + 0.5
        assert_eq!(linear().logits(&[3.0, 1.0], 1, 2).unwrap(), vec![1.5]);
        assert!(linear().logits(&[3.0, 1.0, 2.0], 1, 3).is_err());
        assert!(mlp().logits(&[1.0], 1, 2).is_err());
    }
}
