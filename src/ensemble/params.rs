//! Ensemble stage, its checked parameters: what `[train]` resolves to
//! ([`TrainParams`]: grids and their extension, class weighting, the
//! selection criterion, optimizer limits, lanes and fusion, the joint
//! calibration, the combiner, head kinds) and the stage's own enums with
//! their spellings ([`WeightChoice`], [`Selection`], [`CalibrationSplit`]).
//! The config layer (`config::train`) fills it in and checks it; every
//! ensemble file reads only this.

use crate::calibration::{Combiner, JointParams};
use crate::device::DeviceSpec;
use crate::heads::{ClassWeighting, HeadKind, MlpSpec};
use crate::util::choice::{choice_serde, Choice};

/// The rows calibrators are fitted on (always disjoint from training).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibrationSplit {
    Val,
    /// This fraction of each class's training rows, held out from training.
    TrainFraction(f64),
}

/// The class weighting of the specialists: fixed, or chosen per head on
/// validation among both (`auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightChoice {
    Auto,
    Balanced,
    None,
}

impl Choice for WeightChoice {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("auto", WeightChoice::Auto),
        ("balanced", WeightChoice::Balanced),
        ("none", WeightChoice::None),
    ];
    const UNKNOWN: &'static str = "unknown weighting";
}
choice_serde!(WeightChoice);

impl WeightChoice {
    /// The weightings trained for every specialist.
    pub fn candidates(self) -> Vec<ClassWeighting> {
        match self {
            WeightChoice::Auto => vec![ClassWeighting::None, ClassWeighting::Balanced],
            WeightChoice::Balanced => vec![ClassWeighting::Balanced],
            WeightChoice::None => vec![ClassWeighting::None],
        }
    }
}

/// How a specialist's (weighting, C) is chosen on the validation split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Unweighted log-loss after a Platt fit of the head's validation
    /// scores: invariant to the head's scale and offset.
    CalibratedNll,
    /// Unweighted log-loss of the head's own probabilities, over every
    /// validation row (the default: it gave the specialists the best
    /// cross-validated NLL after calibration, docs/experiments.md).
    Nll,
    /// Log-loss weighted like the head's training (the old rule).
    WeightedNll,
}

impl Choice for Selection {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("calibrated-nll", Selection::CalibratedNll),
        ("nll", Selection::Nll),
        ("weighted-nll", Selection::WeightedNll),
    ];
    const UNKNOWN: &'static str = "unknown selection criterion";
}
choice_serde!(Selection);

/// Which candidate C a linear head keeps (`train.c_rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CRule {
    /// The least validation loss (the default; every earlier figure).
    Best,
    /// The smallest C (strongest L2) whose mean loss over the validation
    /// folds is within one standard error of the best mean.
    OneSe,
}

impl Choice for CRule {
    const TABLE: &'static [(&'static str, Self)] =
        &[("best", CRule::Best), ("one-se", CRule::OneSe)];
    const UNKNOWN: &'static str = "unknown C rule";
}
choice_serde!(CRule);

/// The checked `[train]` section: everything `train_ensemble` needs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainParams {
    /// Inverse L2 strengths (scikit-learn's C) tried for every specialist.
    pub c_grid: Vec<f64>,
    /// The same for the multiclass head.
    pub multiclass_c_grid: Vec<f64>,
    /// Weighting of the specialists (default `auto`: chosen per head).
    pub class_weight: WeightChoice,
    /// Weighting of the multiclass head (default none: the textbook linear probe).
    pub multiclass_class_weight: ClassWeighting,
    /// The specialists' selection criterion on validation.
    pub selection: Selection,
    /// Factor-of-10 steps tried beyond a grid end when a head's best C sits
    /// on it (0: never extend).
    pub grid_extension: usize,
    /// Classes left out of training and calibration entirely (seeded choice,
    /// listed in the manifest): their test images are "unknown" in `compare`.
    pub holdout_classes: usize,
    /// Each C of a path starts from its neighbour's solution.
    pub warm_start: bool,
    pub max_iter: usize,
    pub tol: f64,
    /// Execution contexts training jobs in parallel (default 2: fastest on
    /// the 2-core machine measured in docs/performance.md).
    pub lanes: usize,
    /// Binary jobs fused per matrix (0: all of a lane's jobs in one).
    pub fuse: usize,
    /// Settings of the joint calibration and the combiner choice (its seed
    /// is the run seed, set by `train_ensemble`).
    pub joint: JointParams,
    /// Where calibrators are fitted: the validation split, or a stratified,
    /// seeded fraction of train held out from head training.
    pub calibration_split: CalibrationSplit,
    /// The combiner `score` uses; `None` (`auto`): the one with the least
    /// cross-validated NLL inside the calibration split.
    pub combiner: Option<Combiner>,
    pub specialist_head: HeadKind,
    pub multiclass_head: HeadKind,
    /// Settings of MLP heads (used where a head kind is `mlp`).
    pub mlp: MlpSpec,
    /// How a linear head's C is picked (`train.c_rule`) and over how many
    /// validation folds its spread is measured (`train.c_rule_folds`).
    pub c_rule: CRule,
    pub c_rule_folds: usize,
    /// Where the lanes run (the config's top-level `device`): on CUDA each
    /// lane gets its own stream.
    #[serde(serialize_with = "crate::util::choice::serialize_display")]
    pub device: DeviceSpec,
    /// Streaming (issue 15): `None` (default) loads the training matrix
    /// whole; `Some(rows)` makes `ovr train` read the training split from
    /// its memory-mapped file in blocks of `rows` (rounded up to whole
    /// 256-row chunks), linear heads only (`super::streamed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_rows: Option<usize>,
}
