//! Config, checked layer for `[train]`: the hyperparameter grids and their
//! extension, class weighting (per side), the specialists' selection
//! criterion, optimizer limits and warm starts, scheduler lanes and fusion,
//! the joint calibration's settings and the combiner.

use super::choice::choice;
use super::raw::{RawMlp, RawTrain};
use super::{invalid, positive, ConfigError};
use crate::calibration::{Combiner, JointParams};
use crate::device::DeviceSpec;
pub use crate::ensemble::params::{CalibrationSplit, Selection, TrainParams, WeightChoice};
pub use crate::heads::HeadKind;
use crate::heads::{ClassWeighting, FitOptions, MlpSpec};
use crate::util::choice::Choice;

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

fn head_kind(field: &str, v: Option<&str>) -> Result<HeadKind, ConfigError> {
    choice(field, v, HeadKind::Linear, None)
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

fn combiner(v: Option<&str>) -> Result<Option<Combiner>, ConfigError> {
    match v.unwrap_or("auto") {
        "auto" | "calibrated-argmax" => Ok(None),
        other => Combiner::parse(other).map(Some).ok_or_else(|| {
            invalid(
                "train.combiner",
                other,
                Combiner::UNKNOWN,
                &format!("auto (alias calibrated-argmax), {}", Combiner::allowed()),
            )
        }),
    }
}

fn lambdas(field: &str, v: &Option<Vec<f64>>, default: Vec<f64>) -> Result<Vec<f64>, ConfigError> {
    match v {
        None => Ok(default),
        Some(l) if !l.is_empty() && l.iter().all(|v| v.is_finite() && *v >= 0.0) => Ok(l.clone()),
        Some(l) => Err(invalid(
            field,
            format!("{l:?}"),
            "every penalty must be a finite number >= 0",
            "a non-empty list, e.g. [0.1, 1.0, 10.0]",
        )),
    }
}

fn joint(t: &RawTrain) -> Result<JointParams, ConfigError> {
    let d = JointParams::default();
    let folds = match t.calibration_folds {
        None => d.folds,
        Some(f) if (2..=50).contains(&f) => f as usize,
        Some(f) => {
            return Err(invalid(
                "train.calibration_folds",
                f,
                "out of range",
                "an integer in 2..=50",
            ))
        }
    };
    Ok(JointParams {
        vector_lambdas: lambdas(
            "train.vector_scaling_lambdas",
            &t.vector_scaling_lambdas,
            d.vector_lambdas.clone(),
        )?,
        dirichlet_lambdas: lambdas(
            "train.dirichlet_lambdas",
            &t.dirichlet_lambdas,
            d.dirichlet_lambdas.clone(),
        )?,
        folds,
        ..d
    })
}

/// The L-BFGS limits, defaulted and checked by the heads stage's own
/// [`FitOptions`] (one rule for `tol`: finite and >= 0).
fn fit_limits(t: &RawTrain) -> Result<(usize, f64), ConfigError> {
    let d = FitOptions::default();
    let max_iter = positive("train.max_iter", t.max_iter, d.max_iter, 1_000_000)?;
    let fit = FitOptions {
        max_iter,
        tol: t.tol.unwrap_or(d.tol),
        ..d
    };
    fit.validate()
        .map_err(|e| invalid("train.tol", fit.tol, &e.to_string(), "a finite number >= 0"))?;
    Ok((fit.max_iter, fit.tol))
}

/// An integer in `0..=max` (`default` when unset).
fn count(
    field: &str,
    v: Option<i64>,
    default: usize,
    max: i64,
    allowed: &str,
) -> Result<usize, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if (0..=max).contains(&v) => Ok(v as usize),
        Some(v) => Err(invalid(field, v, "out of range", allowed)),
    }
}

/// The retired `train.calibration` field, named with what replaced it.
fn refuse_calibration(t: &RawTrain) -> Result<(), ConfigError> {
    match &t.calibration {
        None => Ok(()),
        Some(m) => Err(invalid(
            "train.calibration",
            m,
            "replaced: every per-specialist and joint calibrator is now fitted",
            "remove it and choose with train.combiner (auto, dirichlet, vector-scaling, \
             platt-temperature, platt, isotonic, softmax-logits)",
        )),
    }
}

/// Checks `[train]` (the lanes run on `device`, the config's top-level one).
pub fn resolve_train(t: Option<RawTrain>, device: DeviceSpec) -> Result<TrainParams, ConfigError> {
    let t = t.unwrap_or_default();
    refuse_calibration(&t)?;
    let class_weight = choice(
        "train.class_weight",
        t.class_weight.as_deref(),
        WeightChoice::Auto,
        Some("(auto: chosen per specialist on val)"),
    )?;
    let selection = choice(
        "train.selection",
        t.selection.as_deref(),
        Selection::Nll,
        None,
    )?;
    let (max_iter, tol) = fit_limits(&t)?;
    let (c_rule, c_rule_folds) =
        super::c_rule::resolve_c_rule(t.c_rule.as_deref(), t.c_rule_folds)?;
    let fuse = match t.fuse {
        None | Some(0) => 0,
        Some(v) => positive("train.fuse", Some(v), 0, 100_000)?,
    };
    let grid_extension = count(
        "train.grid_extension",
        t.grid_extension,
        3,
        12,
        "an integer in 0..=12 (factor-of-10 steps beyond each grid end)",
    )?;
    let holdout_classes = count(
        "train.holdout_classes",
        t.holdout_classes,
        0,
        10_000,
        "an integer >= 0 that leaves at least 2 classes to train",
    )?;
    Ok(TrainParams {
        device,
        c_grid: grid("train.c_grid", t.c_grid.clone())?,
        multiclass_c_grid: grid("train.multiclass_c_grid", t.multiclass_c_grid.clone())?,
        class_weight,
        multiclass_class_weight: choice(
            "train.multiclass_class_weight",
            t.multiclass_class_weight.as_deref(),
            ClassWeighting::None,
            None,
        )?,
        selection,
        grid_extension,
        holdout_classes,
        warm_start: t.warm_start.unwrap_or(true),
        max_iter,
        tol,
        lanes: positive("train.lanes", t.lanes, 2, 64)?,
        fuse,
        joint: joint(&t)?,
        calibration_split: calibration_split(t.calibration_split.clone())?,
        combiner: combiner(t.combiner.as_deref())?,
        specialist_head: head_kind("train.specialist_head", t.specialist_head.as_deref())?,
        multiclass_head: head_kind("train.multiclass_head", t.multiclass_head.as_deref())?,
        mlp: resolve_mlp(t.mlp)?,
        block_rows: t
            .block_rows
            .map(|v| positive("train.block_rows", Some(v), 0, 1 << 30))
            .transpose()?,
        c_rule,
        c_rule_folds,
    })
}
