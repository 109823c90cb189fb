//! Config, checked layer for `[train]`: the hyperparameter grids, class
//! weighting, optimizer limits, scheduler lanes and fusion, calibration
//! method and default combiner.

use super::raw::{RawMlp, RawTrain};
use super::{invalid, positive, ConfigError};
use crate::calibration::{CalibrationMethod, Combiner};
use crate::device::DeviceSpec;
use crate::heads::{ClassWeighting, MlpSpec};

/// The rows calibrators are fitted on (always disjoint from training).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibrationSplit {
    Val,
    /// This fraction of each class's training rows, held out from training.
    TrainFraction(f64),
}

fn calibration_split(v: Option<toml::Value>) -> Result<CalibrationSplit, ConfigError> {
    let allowed = "\"val\" or a fraction of train in (0, 0.5], e.g. 0.2";
    match v {
        None => Ok(CalibrationSplit::Val),
        Some(toml::Value::String(s)) if s == "val" => Ok(CalibrationSplit::Val),
        Some(toml::Value::Float(f)) if f > 0.0 && f <= 0.5 => {
            Ok(CalibrationSplit::TrainFraction(f))
        }
        Some(other) => Err(invalid(
            "train.calibration_split",
            other,
            "not a calibration split",
            allowed,
        )),
    }
}

/// What a head is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    /// Logistic regression (L2 chosen per head from the C grid).
    Linear,
    /// An MLP with `train.mlp.hidden` layers, early-stopped on validation.
    Mlp,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainConfig {
    /// Inverse L2 strengths (scikit-learn's C) tried for every specialist.
    pub c_grid: Vec<f64>,
    /// The same for the multiclass head.
    pub multiclass_c_grid: Vec<f64>,
    pub class_weight: ClassWeighting,
    pub max_iter: usize,
    pub tol: f64,
    /// Execution contexts training jobs in parallel (default 2: fastest on
    /// the 2-core machine measured in docs/performance.md).
    pub lanes: usize,
    /// Binary jobs fused per matrix (0: all of a lane's jobs in one).
    pub fuse: usize,
    pub calibration: CalibrationMethod,
    /// Where calibrators are fitted: the validation split, or a stratified,
    /// seeded fraction of train held out from head training.
    pub calibration_split: CalibrationSplit,
    pub combiner: Combiner,
    pub specialist_head: HeadKind,
    pub multiclass_head: HeadKind,
    /// Settings of MLP heads (used where a head kind is `mlp`).
    pub mlp: MlpSpec,
    /// Where the lanes run (the config's top-level `device`): on CUDA each
    /// lane gets its own stream.
    #[serde(serialize_with = "super::display")]
    pub device: DeviceSpec,
}

fn head_kind(field: &str, v: Option<&str>) -> Result<HeadKind, ConfigError> {
    match v.unwrap_or("linear") {
        "linear" => Ok(HeadKind::Linear),
        "mlp" => Ok(HeadKind::Mlp),
        other => Err(invalid(field, other, "unknown head kind", "linear, mlp")),
    }
}

fn resolve_mlp(m: Option<RawMlp>) -> Result<MlpSpec, ConfigError> {
    let m = m.unwrap_or_default();
    let d = MlpSpec::default();
    let hidden = match m.hidden {
        None => d.hidden,
        Some(h) => {
            if let Some(bad) = h.iter().find(|&&w| !(1..=65_536).contains(&w)) {
                return Err(invalid(
                    "train.mlp.hidden",
                    bad,
                    "every width must be positive",
                    "a list of widths in 1..=65536, e.g. [1024, 512]",
                ));
            }
            h.into_iter().map(|w| w as usize).collect()
        }
    };
    let lr = m.lr.unwrap_or(d.lr);
    if !(lr.is_finite() && lr > 0.0) {
        return Err(invalid(
            "train.mlp.lr",
            lr,
            "out of range",
            "a positive number, e.g. 0.001",
        ));
    }
    let weight_decay = m.weight_decay.unwrap_or(d.weight_decay);
    if !(weight_decay.is_finite() && weight_decay >= 0.0) {
        return Err(invalid(
            "train.mlp.weight_decay",
            weight_decay,
            "out of range",
            "a number >= 0",
        ));
    }
    Ok(MlpSpec {
        hidden,
        lr,
        weight_decay,
        max_epochs: positive(
            "train.mlp.max_epochs",
            m.max_epochs,
            d.max_epochs,
            1_000_000,
        )?,
        patience: positive("train.mlp.patience", m.patience, d.patience, 1_000_000)?,
        batch_size: positive("train.mlp.batch_size", m.batch_size, d.batch_size, 1 << 24)?,
    })
}

pub const DEFAULT_C_GRID: [f64; 8] = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3];

fn grid(field: &str, v: Option<Vec<f64>>) -> Result<Vec<f64>, ConfigError> {
    let g = v.unwrap_or_else(|| DEFAULT_C_GRID.to_vec());
    if g.is_empty() {
        return Err(invalid(
            field,
            "[]",
            "empty grid",
            "a list of positive numbers, e.g. [0.01, 0.1, 1.0]",
        ));
    }
    if let Some(bad) = g.iter().find(|c| !(c.is_finite() && **c > 0.0)) {
        return Err(invalid(
            field,
            bad,
            "every C must be positive",
            "a list of positive numbers, e.g. [0.01, 0.1, 1.0]",
        ));
    }
    Ok(g)
}

pub fn resolve_train(t: Option<RawTrain>) -> Result<TrainConfig, ConfigError> {
    let t = t.unwrap_or_default();
    let class_weight = match t.class_weight.as_deref().unwrap_or("balanced") {
        "balanced" => ClassWeighting::Balanced,
        "none" => ClassWeighting::None,
        other => {
            return Err(invalid(
                "train.class_weight",
                other,
                "unknown weighting",
                "balanced, none",
            ))
        }
    };
    let calibration = match t.calibration.as_deref().unwrap_or("platt") {
        "platt" => CalibrationMethod::Platt,
        "isotonic" => CalibrationMethod::Isotonic,
        other => {
            return Err(invalid(
                "train.calibration",
                other,
                "unknown method",
                "platt, isotonic",
            ))
        }
    };
    let combiner = match t.combiner.as_deref().unwrap_or("calibrated-argmax") {
        "calibrated-argmax" => Combiner::CalibratedArgmax,
        "raw-argmax" => Combiner::RawArgmax,
        "softmax-logits" => Combiner::SoftmaxLogits,
        other => {
            return Err(invalid(
                "train.combiner",
                other,
                "unknown combiner",
                "calibrated-argmax, raw-argmax, softmax-logits",
            ))
        }
    };
    let tol = t.tol.unwrap_or(1e-6);
    if !(tol.is_finite() && tol > 0.0 && tol < 1.0) {
        return Err(invalid(
            "train.tol",
            tol,
            "out of range",
            "a number in (0, 1)",
        ));
    }
    let fuse = match t.fuse {
        None | Some(0) => 0,
        Some(v) => positive("train.fuse", Some(v), 0, 100_000)?,
    };
    Ok(TrainConfig {
        device: DeviceSpec::Cpu,
        c_grid: grid("train.c_grid", t.c_grid)?,
        multiclass_c_grid: grid("train.multiclass_c_grid", t.multiclass_c_grid)?,
        class_weight,
        max_iter: positive("train.max_iter", t.max_iter, 500, 1_000_000)?,
        tol,
        lanes: positive("train.lanes", t.lanes, 2, 64)?,
        fuse,
        calibration,
        calibration_split: calibration_split(t.calibration_split)?,
        combiner,
        specialist_head: head_kind("train.specialist_head", t.specialist_head.as_deref())?,
        multiclass_head: head_kind("train.multiclass_head", t.multiclass_head.as_deref())?,
        mlp: resolve_mlp(t.mlp)?,
    })
}
