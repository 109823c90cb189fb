//! Config, checked layer for `[train]`: the hyperparameter grids, class
//! weighting, optimizer limits, scheduler lanes and fusion, calibration
//! method and default combiner.

use super::raw::RawTrain;
use super::{invalid, positive, ConfigError};
use crate::calibration::{CalibrationMethod, Combiner};
use crate::heads::ClassWeighting;

#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainConfig {
    /// Inverse L2 strengths (scikit-learn's C) tried for every specialist.
    pub c_grid: Vec<f64>,
    /// The same for the multiclass head.
    pub multiclass_c_grid: Vec<f64>,
    pub class_weight: ClassWeighting,
    pub max_iter: usize,
    pub tol: f64,
    /// Execution contexts training jobs in parallel.
    pub lanes: usize,
    /// Binary jobs fused per matrix (0: all of a lane's jobs in one).
    pub fuse: usize,
    pub calibration: CalibrationMethod,
    pub combiner: Combiner,
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
        c_grid: grid("train.c_grid", t.c_grid)?,
        multiclass_c_grid: grid("train.multiclass_c_grid", t.multiclass_c_grid)?,
        class_weight,
        max_iter: positive("train.max_iter", t.max_iter, 500, 1_000_000)?,
        tol,
        lanes: positive("train.lanes", t.lanes, 1, 64)?,
        fuse,
        calibration,
        combiner,
    })
}
