//! Calibration stage, the specialists as one classifier: their held-out raw
//! logits ([N, K]) -> every calibrated combiner fitted at once
//! ([`JointCalibration`]), with the helpers the choice among them uses.
//!
//! Combiners (each a distribution per image; "calibrated argmax" predicts
//! the argmax of the chosen one's probabilities):
//!
//! * `platt` / `isotonic`: one binary calibrator per specialist, normalised
//!   by the row's sum (scikit-learn's one-vs-rest `predict_proba`; a row
//!   summing to 0 becomes uniform);
//! * `platt-temperature`: one temperature on the log of the normalised
//!   Platt probabilities (Guo et al.'s temperature, applied to the OvR model);
//! * `vector-scaling`: softmax(a ⊙ s + b) over the raw logits s;
//! * `dirichlet`: softmax(W · ln p + b) over the normalised Platt
//!   probabilities p, ODIR-regularised (Kull et al. 2019);
//! * `softmax-logits`: softmax over the raw logits (no parameters).
//!
//! The choice among them, by cross-validated NLL inside the calibration
//! split, is [`super::choose::calibrate`].

use serde::{Deserialize, Serialize};

use super::score_map::{softmax_in_place, MapKind, ScoreMap};
use super::Temperature;
use super::{check_labels, check_len, check_matrix, CalibrationError, Combiner, Isotonic, Platt};

/// Lower clip of a probability before its log (dirichletcal's `clip_for_log`).
const LOG_CLIP: f64 = f64::MIN_POSITIVE;
/// Lower clip of the true-class probability in the CV NLL (as `metrics::nll`).
const NLL_EPS: f64 = 1e-15;

/// Settings of the joint calibration and of the combiner choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JointParams {
    /// Penalty strengths tried for vector scaling (towards a = 1, b = 0).
    pub vector_lambdas: Vec<f64>,
    /// Penalty strengths tried for Dirichlet (ODIR; its λ is spread over
    /// the K(K − 1) off-diagonal weights, so useful values are larger).
    pub dirichlet_lambdas: Vec<f64>,
    /// Folds of the cross-validation inside the calibration split.
    pub folds: usize,
    pub seed: u64,
    /// Factor-of-10 steps a λ path may grow beyond an end of its grid when
    /// its best λ sits there (`train.grid_extension`, as the heads' C grids).
    #[serde(default)]
    pub extensions: usize,
}

impl Default for JointParams {
    fn default() -> Self {
        JointParams {
            vector_lambdas: vec![1e-4, 1e-3, 1e-2, 1e-1, 1.0],
            dirichlet_lambdas: vec![0.1, 1.0, 10.0, 100.0, 1000.0],
            folds: 5,
            seed: 0,
            extensions: 3,
        }
    }
}

/// Every calibrated combiner, fitted on one set of calibration rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JointCalibration {
    /// One per specialist, in class order.
    pub platt: Vec<Platt>,
    pub isotonic: Vec<Isotonic>,
    /// On ln of the normalised Platt probabilities.
    pub platt_temperature: Temperature,
    pub vector_scaling: ScoreMap,
    pub dirichlet: ScoreMap,
}

/// Platt with a constant fallback when the rows hold one label only (an
/// inner fold can miss a rare class): p = Platt's smoothed target.
fn platt_or_constant(s: &[f32], y: &[bool]) -> Result<Platt, CalibrationError> {
    let pos = y.iter().filter(|&&v| v).count();
    let n = y.len() as f64;
    match pos {
        0 => Ok(Platt {
            a: 0.0,
            b: (n + 1.0).ln(),
        }),
        p if p == y.len() => Ok(Platt {
            a: 0.0,
            b: -(n + 1.0).ln(),
        }),
        _ => Platt::fit(s, y, None),
    }
}

fn isotonic_or_constant(s: &[f32], y: &[bool]) -> Result<Isotonic, CalibrationError> {
    let pos = y.iter().filter(|&&v| v).count();
    match pos {
        0 => Ok(Isotonic {
            x: vec![0.0],
            y: vec![0.0],
        }),
        p if p == y.len() => Ok(Isotonic {
            x: vec![0.0],
            y: vec![1.0],
        }),
        _ => Isotonic::fit(s, y, None),
    }
}

/// Row-normalised per-class probabilities (sum 0 -> uniform), f64.
fn normalised(p: Vec<f64>, k: usize) -> Vec<f64> {
    let mut p = p;
    for row in p.chunks_exact_mut(k) {
        let sum: f64 = row.iter().sum();
        if sum > 0.0 {
            row.iter_mut().for_each(|v| *v /= sum);
        } else if sum == 0.0 {
            row.iter_mut().for_each(|v| *v = 1.0 / k as f64);
        } else {
            row.iter_mut().for_each(|v| *v = f64::NAN);
        }
    }
    p
}

fn per_class(logits: &[f32], k: usize, f: impl Fn(usize, f64) -> f64) -> Vec<f64> {
    logits
        .iter()
        .enumerate()
        .map(|(i, &s)| f(i % k, f64::from(s)))
        .collect()
}

fn ln_clipped(p: &[f64]) -> Vec<f64> {
    p.iter().map(|&v| v.max(LOG_CLIP).ln()).collect()
}

/// Index of a row's largest value (ties: the lower index).
pub fn argmax(row: &[f64]) -> usize {
    (0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b })
}

/// Mean NLL of `labels` under row-major `probs`, true-class p clipped at 1e-15.
pub fn mean_nll(probs: &[f64], labels: &[u32], k: usize) -> f64 {
    let total: f64 = probs
        .chunks_exact(k)
        .zip(labels)
        .map(|(row, &y)| -row[y as usize].max(NLL_EPS).ln())
        .sum();
    total / labels.len().max(1) as f64
}

/// Fold id per row, by groups: rows of one group (e.g. the two styles of
/// one emoji) always share a fold, so no fold is scored on a near-twin of a
/// row it was fitted on. Each class's groups (in order of first
/// appearance) are shuffled (seeded) and dealt round robin, continuing where
/// the previous class stopped, so folds are stratified and their group
/// counts differ by at most one. A group belongs to the class of its first row.
pub fn stratified_folds(
    labels: &[u32],
    groups: &[u64],
    k: usize,
    folds: usize,
    seed: u64,
) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use std::collections::HashMap;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut by_class: Vec<Vec<u64>> = vec![Vec::new(); k];
    let mut class_of: HashMap<u64, u32> = HashMap::new();
    for (&g, &y) in groups.iter().zip(labels) {
        if let std::collections::hash_map::Entry::Vacant(e) = class_of.entry(g) {
            e.insert(y);
            by_class[y as usize].push(g);
        }
    }
    let mut fold_of: HashMap<u64, usize> = HashMap::new();
    let mut next = 0usize;
    for gs in by_class.iter_mut() {
        gs.shuffle(&mut rng);
        for &g in gs.iter() {
            fold_of.insert(g, next % folds.max(1));
            next += 1;
        }
    }
    groups.iter().map(|g| fold_of[g]).collect()
}

pub(super) fn take<T: Copy>(v: &[T], k: usize, rows: &[usize]) -> Vec<T> {
    rows.iter()
        .flat_map(|&i| v[i * k..(i + 1) * k].iter().copied())
        .collect()
}

/// Platt, isotonic and the temperature on some rows; the maps' inputs.
pub(super) struct Base {
    pub(super) platt: Vec<Platt>,
    pub(super) isotonic: Vec<Isotonic>,
    pub(super) temperature: Temperature,
}

pub(super) fn fit_base(
    logits: &[f32],
    labels: &[u32],
    n: usize,
    k: usize,
) -> Result<Base, CalibrationError> {
    let mut platt = Vec::with_capacity(k);
    let mut isotonic = Vec::with_capacity(k);
    for c in 0..k {
        let s: Vec<f32> = logits.iter().skip(c).step_by(k).copied().collect();
        let y: Vec<bool> = labels.iter().map(|&l| l as usize == c).collect();
        platt.push(platt_or_constant(&s, &y).map_err(|e| e.for_class(c as u32))?);
        isotonic.push(isotonic_or_constant(&s, &y).map_err(|e| e.for_class(c as u32))?);
    }
    let ln_p = ln_platt(&platt, logits, k);
    let ln_p32: Vec<f32> = ln_p.iter().map(|&v| v as f32).collect();
    let temperature = Temperature::fit(&ln_p32, labels, n, k)?;
    Ok(Base {
        platt,
        isotonic,
        temperature,
    })
}

/// ln of the normalised Platt probabilities (the Dirichlet input).
pub(super) fn ln_platt(platt: &[Platt], logits: &[f32], k: usize) -> Vec<f64> {
    ln_clipped(&normalised(
        per_class(logits, k, |c, s| platt[c].prob_f64(s)),
        k,
    ))
}

pub(super) fn raw(logits: &[f32]) -> Vec<f64> {
    logits.iter().map(|&v| f64::from(v)).collect()
}

pub(super) fn check_input(
    logits: &[f32],
    labels: &[u32],
    n: usize,
    k: usize,
) -> Result<(), CalibrationError> {
    check_matrix("logits", logits, n, k)?;
    check_len(None, "labels", labels.len(), n)?;
    check_labels(labels, k)?;
    if n == 0 {
        return Err(CalibrationError::Empty { class: None });
    }
    Ok(())
}

impl JointCalibration {
    /// Fits every combiner on row-major [n, k] raw specialist logits, with
    /// the given penalties of vector scaling and Dirichlet.
    pub fn fit(
        logits: &[f32],
        labels: &[u32],
        n: usize,
        k: usize,
        vector_lambda: f64,
        dirichlet_lambda: f64,
    ) -> Result<Self, CalibrationError> {
        check_input(logits, labels, n, k)?;
        let b = fit_base(logits, labels, n, k)?;
        let x_dir = ln_platt(&b.platt, logits, k);
        Ok(JointCalibration {
            vector_scaling: ScoreMap::fit(
                MapKind::Vector,
                &raw(logits),
                labels,
                n,
                k,
                vector_lambda,
            )?,
            dirichlet: ScoreMap::fit(MapKind::Full, &x_dir, labels, n, k, dirichlet_lambda)?,
            platt: b.platt,
            isotonic: b.isotonic,
            platt_temperature: b.temperature,
        })
    }

    pub fn k(&self) -> usize {
        self.platt.len()
    }

    /// Row-major [n, k] probabilities of `combiner` (rows sum to 1), f64.
    ///
    /// # Panics
    /// If `logits.len() != n·k` for this calibration's k.
    pub fn probs(&self, combiner: Combiner, logits: &[f32], n: usize) -> Vec<f64> {
        let k = self.k();
        assert_eq!(logits.len(), n * k, "calibration: logits is not [n, k]");
        let platt = || normalised(per_class(logits, k, |c, s| self.platt[c].prob_f64(s)), k);
        match combiner {
            Combiner::Platt => platt(),
            Combiner::Isotonic => {
                normalised(per_class(logits, k, |c, s| self.isotonic[c].prob_f64(s)), k)
            }
            Combiner::PlattTemperature => {
                let beta = 1.0 / self.platt_temperature.t;
                let mut z: Vec<f64> = ln_clipped(&platt()).iter().map(|v| v * beta).collect();
                z.chunks_exact_mut(k).for_each(softmax_in_place);
                z
            }
            Combiner::VectorScaling => self.vector_scaling.probs(&raw(logits), n),
            Combiner::Dirichlet => self.dirichlet.probs(&ln_clipped(&platt()), n),
            Combiner::SoftmaxLogits => {
                let mut z = raw(logits);
                z.chunks_exact_mut(k).for_each(softmax_in_place);
                z
            }
        }
    }
}
