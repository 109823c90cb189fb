//! Ensemble stage: applying a saved ensemble to feature rows. Produces the
//! raw specialist logits, their calibrated probabilities and the multiclass
//! logits once, then turns them into each approach's probabilities and
//! predictions (the inputs of metrics, compare and score).

use candle_core::{Device, Tensor};

use super::{Ensemble, EnsembleError, HeadParams};
use crate::calibration::{argmax_rows, combine, softmax_rows, Combiner};
use crate::metrics::compare::ApproachInput;

/// The ways an ensemble can classify, in the order `compare` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approach {
    MulticlassRaw,
    MulticlassTemperature,
    SpecialistsRawArgmax,
    SpecialistsSoftmax,
    SpecialistsCalibrated,
}

impl Approach {
    pub const ALL: [Approach; 5] = [
        Approach::MulticlassRaw,
        Approach::MulticlassTemperature,
        Approach::SpecialistsRawArgmax,
        Approach::SpecialistsSoftmax,
        Approach::SpecialistsCalibrated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Approach::MulticlassRaw => "multiclass-raw",
            Approach::MulticlassTemperature => "multiclass-temperature",
            Approach::SpecialistsRawArgmax => "specialists-raw-argmax",
            Approach::SpecialistsSoftmax => "specialists-softmax",
            Approach::SpecialistsCalibrated => "specialists-calibrated",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Approach::MulticlassRaw => "multiclass softmax head",
            Approach::MulticlassTemperature => "multiclass head, temperature-scaled",
            Approach::SpecialistsRawArgmax => {
                "specialists, argmax of raw logits (softmax of logits as probabilities)"
            }
            Approach::SpecialistsSoftmax => "specialists, softmax over raw logits",
            Approach::SpecialistsCalibrated => {
                "specialists, calibrated argmax (probabilities normalized by their sum)"
            }
        }
    }

    pub fn parse(s: &str) -> Option<Approach> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The approach a saved combiner stands for.
    pub fn from_combiner(c: Combiner) -> Approach {
        match c {
            Combiner::CalibratedArgmax => Approach::SpecialistsCalibrated,
            Combiner::RawArgmax => Approach::SpecialistsRawArgmax,
            Combiner::SoftmaxLogits => Approach::SpecialistsSoftmax,
        }
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
        let cal = &self.manifest.calibration.specialists;
        let probs = spec
            .chunks(k)
            .flat_map(|row| row.iter().zip(cal).map(|(&z, c)| c.prob(z)))
            .collect();
        Ok(HeadOutputs {
            n,
            k,
            specialist_logits: spec,
            specialist_probs: probs,
            multiclass_logits: multi,
        })
    }

    /// Probabilities and predictions of one approach.
    pub fn approach(&self, out: &HeadOutputs, a: Approach) -> ApproachInput {
        let (n, k) = (out.n, out.k);
        let (probs, preds) = match a {
            Approach::MulticlassRaw => {
                let p = softmax_rows(&out.multiclass_logits, n, k);
                let y = argmax_rows(&out.multiclass_logits, n, k);
                (p, y)
            }
            Approach::MulticlassTemperature => {
                let p = self
                    .manifest
                    .calibration
                    .multiclass
                    .probs(&out.multiclass_logits, n, k);
                let y = argmax_rows(&out.multiclass_logits, n, k);
                (p, y)
            }
            Approach::SpecialistsRawArgmax | Approach::SpecialistsSoftmax => {
                let p = softmax_rows(&out.specialist_logits, n, k);
                let y = argmax_rows(&out.specialist_logits, n, k);
                (p, y)
            }
            Approach::SpecialistsCalibrated => {
                let cal = &self.manifest.calibration.specialists;
                let p = combine(
                    Combiner::CalibratedArgmax,
                    &out.specialist_logits,
                    n,
                    k,
                    cal,
                );
                let y = argmax_rows(&out.specialist_probs, n, k);
                (p, y)
            }
        };
        ApproachInput {
            name: a.name().to_string(),
            description: a.description().to_string(),
            probs,
            preds,
        }
    }
}
