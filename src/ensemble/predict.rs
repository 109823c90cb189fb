//! Ensemble stage: applying a saved ensemble to feature rows. Produces the
//! raw specialist logits, their calibrated probabilities and the multiclass
//! logits once, then turns them into each approach's probabilities and
//! predictions (the inputs of metrics, compare and score).

use super::{Ensemble, EnsembleError, Weights};
use crate::calibration::{argmax_rows, softmax_rows, Combiner, JointCalibration};
use crate::heads::HeadError;
use crate::util::choice::Choice;

/// Predictions of one approach on a split's rows (what the metrics stage
/// scores; `metrics::compare` re-exports it).
#[derive(Debug, Clone)]
pub struct ApproachInput {
    /// Stable id, e.g. `specialists-calibrated`.
    pub name: String,
    /// One line for people.
    pub description: String,
    /// Row-major `[N, K]` probabilities (rows sum to 1).
    pub probs: Vec<f32>,
    /// `[N]` predicted class ids.
    pub preds: Vec<u32>,
}

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

impl Choice for Approach {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("multiclass-raw", Approach::MulticlassRaw),
        ("multiclass-temperature", Approach::MulticlassTemperature),
        ("specialists-calibrated", Approach::SpecialistsCalibrated),
        (
            "specialists-dirichlet",
            Approach::Specialists(Combiner::Dirichlet),
        ),
        (
            "specialists-vector-scaling",
            Approach::Specialists(Combiner::VectorScaling),
        ),
        (
            "specialists-platt-temperature",
            Approach::Specialists(Combiner::PlattTemperature),
        ),
        ("specialists-platt", Approach::Specialists(Combiner::Platt)),
        (
            "specialists-isotonic",
            Approach::Specialists(Combiner::Isotonic),
        ),
        (
            "specialists-softmax",
            Approach::Specialists(Combiner::SoftmaxLogits),
        ),
    ];
    const UNKNOWN: &'static str = "unknown approach";
    /// `specialists-raw-argmax`: the old name of `specialists-softmax` (the
    /// same predictions and probabilities).
    const ALIASES: &'static [(&'static str, Self)] = &[(
        "specialists-raw-argmax",
        Approach::Specialists(Combiner::SoftmaxLogits),
    )];
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

/// `[n, k]` specialist logits of standardized rows `[n, d]`: the one path
/// shared by training (calibration, validation) and prediction, so a loaded
/// ensemble reproduces the training-time outputs bit for bit.
pub fn specialist_logits(
    w: &Weights,
    x: &[f32],
    n: usize,
    d: usize,
) -> Result<Vec<f32>, HeadError> {
    let k = w.specialists.len();
    let mut z = vec![0f32; n * k];
    for (c, p) in w.specialists.iter().enumerate() {
        for (i, v) in p.logits(x, n, d)?.into_iter().enumerate() {
            z[i * k + c] = v;
        }
    }
    Ok(z)
}

/// Probabilities of the specialists through combiner `c` (reported in f32)
/// and the argmax of exactly those reported values.
pub fn specialists_probs(
    joint: &JointCalibration,
    c: Combiner,
    logits: &[f32],
    n: usize,
    k: usize,
) -> (Vec<f32>, Vec<u32>) {
    let p: Vec<f32> = joint
        .probs(c, logits, n)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let preds = argmax_rows(&p, n, k);
    (p, preds)
}

/// The multiclass head's softmax and the argmax of those probabilities.
pub fn multiclass_probs(logits: &[f32], n: usize, k: usize) -> (Vec<f32>, Vec<u32>) {
    let p = softmax_rows(logits, n, k);
    let preds = argmax_rows(&p, n, k);
    (p, preds)
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
        let head = |source| EnsembleError::Head {
            path: self.dir.clone(),
            source: Box::new(source),
        };
        let x = self
            .weights
            .standardizer
            .try_apply(features)
            .map_err(head)?;
        let spec = specialist_logits(&self.weights, &x, n, d).map_err(head)?;
        let multi = self.weights.multiclass.logits(&x, n, d).map_err(head)?;
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
    /// argmax of the very (f32) probabilities reported, ties to the lower class.
    pub fn approach(&self, out: &HeadOutputs, a: Approach) -> ApproachInput {
        let (n, k) = (out.n, out.k);
        let joint = &self.manifest.calibration.specialists;
        let (probs, preds) = match a {
            Approach::MulticlassRaw => multiclass_probs(&out.multiclass_logits, n, k),
            Approach::MulticlassTemperature => {
                let p = self
                    .manifest
                    .calibration
                    .multiclass
                    .probs(&out.multiclass_logits, n, k);
                let preds = argmax_rows(&p, n, k);
                (p, preds)
            }
            Approach::SpecialistsCalibrated | Approach::Specialists(_) => {
                let c = match a {
                    Approach::Specialists(c) => c,
                    _ => self.manifest.combiner,
                };
                specialists_probs(joint, c, &out.specialist_logits, n, k)
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
