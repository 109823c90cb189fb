//! Ensemble stage: `manifest.json`, the human- and machine-readable record
//! of a trained ensemble (provenance, chosen hyperparameters, timings,
//! calibration parameters, scheduler timeline).

use serde::{Deserialize, Serialize};

use super::params::CRule;
use crate::calibration::{Combiner, JointCalibration, Selection, Temperature};
use crate::heads::HeadKind;
use crate::heads::{ClassWeighting, MlpSpec};

/// 2: per-head weighting, grid points with their weighting, grid edges, the
/// joint calibration and the combiner choice (format 1 ensembles must be
/// retrained).
pub const FORMAT: u32 = 2;

/// One candidate a head was trained at, with its validation loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    pub weighting: ClassWeighting,
    pub c: Option<f64>,
    pub val_loss: f64,
    /// Mean and standard error of the criterion over the validation folds
    /// (`train.c_rule_folds`); linear heads only.
    #[serde(default)]
    pub fold_mean: Option<f64>,
    #[serde(default)]
    pub fold_se: Option<f64>,
}

/// How a linear head's C was picked (`train.c_rule`) and how much its
/// validation loss moves over the validation folds, recorded under either
/// rule. Means and SEs are `None` where undefined (fewer than 2 folds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CRuleRecord {
    pub rule: CRule,
    /// Validation folds configured, and those where the criterion was
    /// defined (a `calibrated-nll` fold needs a positive).
    pub folds: usize,
    pub folds_used: usize,
    /// The chosen C, its criterion on each fold, their mean and SE.
    pub chosen_c: f64,
    pub chosen_fold_losses: Vec<Option<f64>>,
    pub chosen_fold_mean: Option<f64>,
    pub chosen_fold_se: Option<f64>,
    /// The candidate with the least fold mean (`one-se`'s anchor).
    pub best_mean_c: f64,
    pub best_mean_weighting: ClassWeighting,
    pub best_fold_mean: Option<f64>,
    pub best_fold_se: Option<f64>,
    /// `one-se` kept `best`'s choice because the spread was undefined.
    pub fallback: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeSide {
    Low,
    High,
}

/// A head whose best C was on an end of its grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridEdge {
    /// Which end.
    pub side: EdgeSide,
    /// Factor-of-10 steps tried beyond the configured grid.
    pub extensions: usize,
    /// Still on the end of what was tried: the bound (`train.grid_extension`)
    /// stopped the search, so the optimum may lie further out.
    pub at_bound: bool,
}

/// One trained head as chosen on the validation split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadRecord {
    /// Class name for a specialist, `multiclass` for the softmax head.
    pub name: String,
    pub kind: HeadKind,
    /// Inverse L2 strength chosen on validation (scikit-learn's C); linear heads only.
    pub c: Option<f64>,
    /// Class weighting of the chosen fit.
    pub weighting: ClassWeighting,
    /// Validation loss of the chosen fit (the selection criterion's).
    pub val_loss: f64,
    /// Every candidate tried, in training order (grid, then extensions).
    pub val_loss_grid: Vec<GridPoint>,
    /// Set when the best C was on an end of the configured grid.
    pub grid_edge: Option<GridEdge>,
    /// The C rule and the spread over validation folds (linear heads;
    /// absent from ensembles trained before the rule existed).
    #[serde(default)]
    pub c_rule: Option<CRuleRecord>,
    /// L-BFGS iterations (linear) or epochs (MLP) of the chosen fit, and
    /// whether it met the tolerance (linear) or stopped early (MLP).
    pub iterations: usize,
    pub converged: bool,
    /// Training objective of the chosen fit (scikit-learn's form); linear heads only.
    pub objective: Option<f64>,
    /// Epoch whose weights were kept; MLP heads only.
    pub best_epoch: Option<usize>,
    /// Seed derived from (run seed, head id): MLP heads draw their initial
    /// weights and batch order from it; linear heads start from zero and use
    /// full batches, so they draw no random numbers.
    pub seed: u64,
    /// Seconds the job holding the chosen fit took (shared by fused heads).
    pub seconds: f64,
}

/// When a scheduler job ran, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub job: String,
    pub lane: usize,
    pub start_s: f64,
    pub end_s: f64,
    pub heads: usize,
}

/// Calibration of both sides, fitted on the calibration split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRecord {
    pub split: String,
    /// Every combiner of the specialists, fitted on all calibration rows.
    pub specialists: JointCalibration,
    /// Every combiner's cross-validated NLL inside the calibration split.
    pub selection: Selection,
    pub multiclass: Temperature,
}

/// Validation figures printed at the end of `ovr train`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationRecord {
    pub images: usize,
    pub specialists_accuracy: f64,
    pub multiclass_accuracy: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    pub crate_version: String,
    pub created_unix: u64,
    pub dataset: String,
    pub backbone: String,
    pub weights_sha256: String,
    pub feature_dim: usize,
    pub classes: Vec<String>,
    pub seed: u64,
    pub train_images: usize,
    /// The resolved run config.
    pub config: serde_json::Value,
    /// The config as TOML (file + overrides), re-read by `compare` and `score`.
    pub config_toml: String,
    pub specialists: Vec<HeadRecord>,
    pub multiclass: HeadRecord,
    /// Settings of the MLP heads, if any head is an MLP.
    pub mlp: Option<MlpSpec>,
    pub calibration: CalibrationRecord,
    /// The combiner of the calibrated argmax (`score`'s default): the
    /// configured one, or with `auto` the selection's choice.
    pub combiner: Combiner,
    pub validation: ValidationRecord,
    /// Classes left out of training and calibration (`train.holdout_classes`):
    /// `compare` scores their test images as unknown.
    #[serde(default)]
    pub holdout_classes: Vec<String>,
    pub lanes: usize,
    pub timeline: Vec<TimelineEntry>,
    pub train_seconds: f64,
}

/// Seed of head `head_id` derived from the run seed (SplitMix64 of both),
/// independent of scheduling.
pub fn head_seed(seed: u64, head_id: u64) -> u64 {
    let mut z = seed ^ head_id.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_seeds_differ_by_head_and_run() {
        assert_ne!(head_seed(42, 0), head_seed(42, 1));
        assert_ne!(head_seed(42, 0), head_seed(43, 0));
        assert_eq!(head_seed(42, 7), head_seed(42, 7));
    }
}
