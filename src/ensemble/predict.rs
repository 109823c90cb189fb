//! Ensemble stage: applying a saved ensemble to feature rows. Produces the
//! raw specialist logits, their calibrated probabilities and the multiclass
//! logits once, then turns them into each approach's probabilities and
//! predictions (the inputs of metrics, compare and score).

use candle_core::{Device, Tensor};

use super::{Ensemble, EnsembleError, HeadParams};
use crate::calibration::joint::argmax;
use crate::calibration::{argmax_rows, softmax_rows, Combiner};
use crate::metrics::compare::ApproachInput;

/// The ways an ensemble can classify. `SpecialistsCalibrated` is the
/// calibrated argmax: the specialists through the ensemble's chosen
/// combiner; `Specialists(c)` the same through any other combiner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approach {
    MulticlassRaw,
    MulticlassTemperature,
    SpecialistsCalibrated,
    Specialists(Combiner),
}

impl Approach {
    pub fn name(self) -> &'static str {
        match self {
            Approach::MulticlassRaw => "multiclass-raw",
            Approach::MulticlassTemperature => "multiclass-temperature",
            Approach::SpecialistsCalibrated => "specialists-calibrated",
            Approach::Specialists(c) => match c {
                Combiner::Platt => "specialists-platt",
                Combiner::Isotonic => "specialists-isotonic",
                Combiner::PlattTemperature => "specialists-platt-temperature",
                Combiner::VectorScaling => "specialists-vector-scaling",
                Combiner::Dirichlet => "specialists-dirichlet",
                Combiner::SoftmaxLogits => "specialists-softmax",
            },
        }
    }

    /// Every spelling `--approach` takes (`specialists-raw-argmax` is the old
    /// name of `specialists-softmax`: the same predictions and probabilities).
    pub fn parse(s: &str) -> Option<Approach> {
        if s == "specialists-raw-argmax" {
            return Some(Approach::Specialists(Combiner::SoftmaxLogits));
        }
        [
            Approach::MulticlassRaw,
            Approach::MulticlassTemperature,
            Approach::SpecialistsCalibrated,
        ]
        .into_iter()
        .chain(Combiner::ALL.into_iter().map(Approach::Specialists))
        .find(|a| a.name() == s)
    }

    /// Every name [`Self::parse`] accepts, for error messages.
    pub fn names() -> Vec<&'static str> {
        let mut v = vec![
            Approach::MulticlassRaw.name(),
            Approach::MulticlassTemperature.name(),
            Approach::SpecialistsCalibrated.name(),
        ];
        v.extend(Combiner::ALL.map(|c| Approach::Specialists(c).name()));
        v
    }
}

/// Raw outputs of every head for `n` rows.
#[derive(Debug, Clone)]
pub struct HeadOutputs {
    pub n: usize,
    pub k: usize,
    /// `[N, K]` raw specialist logits.
    pub specialist_logits: Vec<f32>,
    /// `[N, K]` calibrated specialist probabilities (not normalized).
    pub specialist_probs: Vec<f32>,
    /// `[N, K]` multiclass logits.
    pub multiclass_logits: Vec<f32>,
}

fn matmul(
    x: &[f32],
    n: usize,
    d: usize,
    w: &[f32],
    wshape: (usize, usize),
    transpose: bool,
) -> candle_core::Result<Vec<f32>> {
    let x = Tensor::from_slice(x, (n, d), &Device::Cpu)?;
    let w = Tensor::from_slice(w, wshape, &Device::Cpu)?;
    let w = if transpose { w.t()? } else { w };
    x.matmul(&w)?.flatten_all()?.to_vec1()
}

impl Ensemble {
    /// Runs every head on raw (unstandardized) feature rows `[n, D]`.
    pub fn head_outputs(&self, features: &[f32], n: usize) -> Result<HeadOutputs, EnsembleError> {
        let (k, d) = (self.manifest.classes.len(), self.manifest.feature_dim);
        let bad = |message: String| EnsembleError::Malformed {
            path: self.dir.clone(),
            message,
        };
        if features.len() != n * d {
            return Err(bad(format!(
                "{} feature values for {n} rows of {d}",
                features.len()
            )));
        }
        let x = self.weights.standardizer.apply(features);
        let w = &self.weights;
        let linear: Vec<&crate::heads::LinearFit> = w
            .specialists
            .iter()
            .filter_map(|h| match h {
                HeadParams::Linear(f) => Some(f),
                HeadParams::Mlp(_) => None,
            })
            .collect();
        let spec = if linear.len() == k {
            // All linear: one [N, D] x [D, K] matmul.
            let wk: Vec<f32> = linear.iter().flat_map(|f| f.w.iter().copied()).collect();
            let mut z = matmul(&x, n, d, &wk, (k, d), true).map_err(|e| bad(e.to_string()))?;
            for row in z.chunks_mut(k) {
                row.iter_mut().zip(&linear).for_each(|(v, f)| *v += f.b[0]);
            }
            z
        } else {
            let cols: Vec<Vec<f32>> = w.specialists.iter().map(|h| h.logits(&x, n, d)).collect();
            (0..n * k).map(|i| cols[i % k][i / k]).collect()
        };
        let multi = match &w.multiclass {
            HeadParams::Linear(f) => {
                let mut z =
                    matmul(&x, n, d, &f.w, (d, k), false).map_err(|e| bad(e.to_string()))?;
                for row in z.chunks_mut(k) {
                    row.iter_mut().zip(&f.b).for_each(|(v, b)| *v += b);
                }
                z
            }
            mlp => mlp.logits(&x, n, d),
        };
        let platt = &self.manifest.calibration.specialists.platt;
        let probs = spec
            .chunks(k)
            .flat_map(|row| row.iter().zip(platt).map(|(&z, c)| c.prob(z)))
            .collect();
        Ok(HeadOutputs {
            n,
            k,
            specialist_logits: spec,
            specialist_probs: probs,
            multiclass_logits: multi,
        })
    }

    /// The approaches `compare` reports, in order: the multiclass head raw
    /// and temperature-scaled, the calibrated argmax, then every other
    /// combiner of the specialists (each combiner appears once).
    pub fn approaches(&self) -> Vec<Approach> {
        let mut v = vec![
            Approach::MulticlassRaw,
            Approach::MulticlassTemperature,
            Approach::SpecialistsCalibrated,
        ];
        v.extend(
            Combiner::ALL
                .into_iter()
                .filter(|&c| c != self.manifest.combiner)
                .map(Approach::Specialists),
        );
        v
    }

    /// One line for people about an approach of this ensemble.
    pub fn describe(&self, a: Approach) -> String {
        let cv = |c: Combiner| {
            self.manifest
                .calibration
                .selection
                .candidates
                .iter()
                .find(|x| x.combiner == c)
                .map(|x| format!(", CV NLL {:.4}", x.cv_nll))
                .unwrap_or_default()
        };
        match a {
            Approach::MulticlassRaw => "multiclass softmax head".into(),
            Approach::MulticlassTemperature => "multiclass head, temperature-scaled".into(),
            Approach::SpecialistsCalibrated => {
                let c = self.manifest.combiner;
                format!(
                    "specialists, calibrated argmax: {} ({}{})",
                    c.name(),
                    c.description(),
                    cv(c)
                )
            }
            Approach::Specialists(c) => {
                format!("specialists, {}{}", c.description(), cv(c))
            }
        }
    }

    /// Probabilities and predictions of one approach; the prediction is the
    /// argmax of the very probabilities reported (computed in f64).
    pub fn approach(&self, out: &HeadOutputs, a: Approach) -> ApproachInput {
        let (n, k) = (out.n, out.k);
        let joint = &self.manifest.calibration.specialists;
        let (probs, preds) = match a {
            Approach::MulticlassRaw => (
                softmax_rows(&out.multiclass_logits, n, k),
                argmax_rows(&out.multiclass_logits, n, k),
            ),
            Approach::MulticlassTemperature => (
                self.manifest
                    .calibration
                    .multiclass
                    .probs(&out.multiclass_logits, n, k),
                argmax_rows(&out.multiclass_logits, n, k),
            ),
            Approach::SpecialistsCalibrated | Approach::Specialists(_) => {
                let c = match a {
                    Approach::Specialists(c) => c,
                    _ => self.manifest.combiner,
                };
                let p = joint.probs(c, &out.specialist_logits, n);
                let preds = p
                    .chunks_exact(k.max(1))
                    .map(|row| argmax(row) as u32)
                    .collect();
                (p.iter().map(|&v| v as f32).collect(), preds)
            }
        };
        ApproachInput {
            name: a.name().to_string(),
            description: self.describe(a),
            probs,
            preds,
        }
    }
}
