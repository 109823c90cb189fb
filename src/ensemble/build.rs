//! Ensemble stage: from cached features to a calibrated ensemble, as a
//! pipeline: hold out the calibration rows (`split.rs`) ->
//! standardize (train statistics) -> train every head over its grid
//! through the scheduler, extending grids where the best C sits on an end
//! ([`super::rounds`], jobs from [`super::plan`]) -> choose each head's
//! (weighting, C) on validation ([`super::select`]) -> calibrate on the
//! held-out split (every joint combiner of the specialists plus the
//! combiner choice by nested CV, a temperature for the multiclass head) ->
//! validation accuracy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::manifest::{CalibrationRecord, HeadRecord, TimelineEntry, ValidationRecord};
use super::params::TrainParams;
use super::predict::{multiclass_probs, specialist_logits, specialists_probs};
use super::rounds::{open_lanes, Rounds};
use super::select::{self, Chosen, Val};
use super::split::{HeldOut, TrainSide};
use super::Weights;
use crate::calibration::{Combiner, JointParams, Temperature};
use crate::features::store::FeatureSet;
use crate::heads::Standardizer;
use crate::progress::Verbosity;
use crate::scheduler::lane::{Rows, TrainRows};

pub use super::split::calibration_rows;
pub use super::train_error::TrainError;

/// Everything `train` produces besides provenance.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub weights: Weights,
    pub specialists: Vec<HeadRecord>,
    pub multiclass: HeadRecord,
    pub calibration: CalibrationRecord,
    pub validation: ValidationRecord,
    /// Predictions on the validation rows as training computed them.
    pub validation_predictions: ValidationPredictions,
    pub timeline: Vec<TimelineEntry>,
    /// Seconds until every head was trained and selected (grid extensions
    /// included), before calibration.
    pub heads_seconds: f64,
    pub train_seconds: f64,
}

/// Validation-row predictions at training time: the calibrated argmax (the
/// ensemble's combiner) and the raw multiclass head, one class per row.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationPredictions {
    pub specialists: Vec<u32>,
    pub multiclass: Vec<u32>,
}

/// Trains specialists and the multiclass head, selects, calibrates.
pub fn train_ensemble(
    train: &FeatureSet,
    val: &FeatureSet,
    cfg: &TrainParams,
    seed: u64,
    stop: Arc<AtomicBool>,
    verbosity: Verbosity,
) -> Result<TrainOutcome, TrainError> {
    let t0 = Instant::now();
    let held = HeldOut::new(train, cfg, seed);
    let (train, cal) = held.sets(train, val)?;
    let d = train.dim;
    let std = Standardizer::try_fit(&train.features, train.len(), d).map_err(standardize)?;
    let x_tr = std.try_apply(&train.features).map_err(standardize)?;
    let rows = TrainRows::Loaded(Rows {
        x: &x_tr,
        n: train.len(),
        d,
        labels: &train.labels,
    });
    let fitting = Fitting {
        train: TrainSide::from(train),
        standardizer: &std,
        rows,
        cal,
        cal_is_val: held.calibrates_on_val(),
    };
    fitting.run(val, cfg, seed, (stop, verbosity, t0))
}

/// The training rows, however they are held, and what the later stages
/// need beside them: the one pipeline after standardization, shared by the
/// in-memory and the streamed (`super::streamed`) entry.
pub(crate) struct Fitting<'a> {
    pub train: TrainSide<'a>,
    pub standardizer: &'a Standardizer,
    pub rows: TrainRows<'a>,
    /// The calibration rows (val, or a fraction held out of train).
    pub cal: &'a FeatureSet,
    pub cal_is_val: bool,
}

impl Fitting<'_> {
    /// Lanes -> rounds -> selection -> calibration -> validation.
    pub(crate) fn run(
        self,
        val: &FeatureSet,
        cfg: &TrainParams,
        seed: u64,
        (stop, verbosity, t0): (Arc<AtomicBool>, Verbosity, Instant),
    ) -> Result<TrainOutcome, TrainError> {
        let (k, d, std) = (self.train.classes.len(), self.train.dim, self.standardizer);
        let x_va = std.try_apply(&val.features).map_err(standardize)?;
        let v = Val {
            x: &x_va,
            n: val.len(),
            d,
            labels: &val.labels,
            k,
        };
        let lanes = open_lanes(cfg, &self.rows, &v)?;
        let rounds = Rounds {
            lanes: &lanes,
            labels: self.train.labels,
            cfg,
            stop: &stop,
            verbosity,
        };
        let trained = rounds.train(&v, seed)?;
        drop(lanes);
        let chosen = select::choose(
            &trained.tried,
            &trained.loss,
            self.train.classes,
            std,
            cfg,
            seed,
            &v,
        )
        .map_err(|e| TrainError::Selection(Box::new(e)))?
        .ok_or(TrainError::Interrupted)?;
        let heads_seconds = t0.elapsed().as_secs_f64();
        let calibration = calibrate(&chosen.weights, self.cal, cfg, seed)?;
        if verbosity >= Verbosity::Verbose {
            let secs = t0.elapsed().as_secs_f64() - heads_seconds;
            eprintln!(
                "heads trained and selected in {heads_seconds:.2} s, calibrated in {secs:.2} s"
            );
        }
        let combiner = cfg.combiner.unwrap_or(calibration.selection.chosen);
        let (validation, validation_predictions) =
            validate(&chosen.weights, &calibration, combiner, &v, self.cal_is_val)?;
        // A stop requested after the last job started (during calibration, say)
        // still means "nothing will be saved".
        if stop.load(Ordering::SeqCst) {
            return Err(TrainError::Interrupted);
        }
        let Chosen {
            specialists,
            multiclass,
            weights,
        } = chosen;
        Ok(TrainOutcome {
            weights,
            specialists,
            multiclass,
            calibration,
            validation,
            validation_predictions,
            timeline: trained.timeline,
            heads_seconds,
            train_seconds: t0.elapsed().as_secs_f64(),
        })
    }
}

/// Calibration stage on the held-out rows: every joint combiner, the
/// choice among them by nested CV, and the multiclass temperature.
pub fn calibrate(
    w: &Weights,
    cal: &FeatureSet,
    cfg: &TrainParams,
    seed: u64,
) -> Result<CalibrationRecord, TrainError> {
    let (nc, d, k) = (cal.len(), cal.dim, w.specialists.len());
    let x = w
        .standardizer
        .try_apply(&cal.features)
        .map_err(standardize)?;
    let z = specialist_logits(w, &x, nc, d).map_err(logits_failed("the specialists"))?;
    let failed = |head: &str| {
        let head = head.to_string();
        move |source| TrainError::Calibration { head, source }
    };
    let params = JointParams {
        seed,
        extensions: cfg.grid_extension,
        ..cfg.joint.clone()
    };
    let groups = crate::images::emoji40::groups(&cal.keys);
    let (joint, selection) = crate::calibration::calibrate(&z, &cal.labels, &groups, k, &params)
        .map_err(failed("calibration of the specialists"))?;
    let zm = (w.multiclass.logits(&x, nc, d)).map_err(logits_failed("the multiclass head"))?;
    let temperature = Temperature::fit(&zm, &cal.labels, nc, k)
        .map_err(failed("temperature of the multiclass head"))?;
    Ok(CalibrationRecord {
        split: cal.split.clone(),
        specialists: joint,
        selection,
        multiclass: temperature,
    })
}

pub(crate) fn standardize(source: crate::heads::HeadError) -> TrainError {
    TrainError::Logits {
        head: "the standardizer".to_string(),
        source: Box::new(source),
    }
}

fn logits_failed(head: &'static str) -> impl Fn(crate::heads::HeadError) -> TrainError {
    move |source| TrainError::Logits {
        head: head.to_string(),
        source: Box::new(source),
    }
}

/// Validation figures: the multiclass head's accuracy on val, and the
/// calibrated argmax's. When the combiner was fitted on val itself (the
/// default calibration split), its accuracy there is in-sample (a full
/// Dirichlet map can memorise val), so the honest figure is its
/// cross-validated accuracy inside the calibration split. The predictions
/// come from the same functions `ensemble::predict` applies to a loaded
/// ensemble.
fn validate(
    w: &Weights,
    cal: &CalibrationRecord,
    combiner: Combiner,
    v: &Val,
    cal_is_val: bool,
) -> Result<(ValidationRecord, ValidationPredictions), TrainError> {
    let acc = |pred: &[u32]| {
        pred.iter().zip(v.labels).filter(|(p, y)| p == y).count() as f64 / v.n.max(1) as f64
    };
    let z = specialist_logits(w, v.x, v.n, v.d).map_err(logits_failed("the specialists"))?;
    let (_, specialists) = specialists_probs(&cal.specialists, combiner, &z, v.n, v.k);
    let cv = cal
        .selection
        .candidates
        .iter()
        .find(|c| c.combiner == combiner);
    let specialists_accuracy = match cv {
        Some(c) if cal_is_val => c.cv_accuracy,
        _ => acc(&specialists),
    };
    let zm = w.multiclass.logits(v.x, v.n, v.d);
    let (_, multiclass) =
        multiclass_probs(&zm.map_err(logits_failed("the multiclass head"))?, v.n, v.k);
    let record = ValidationRecord {
        images: v.n,
        specialists_accuracy,
        multiclass_accuracy: acc(&multiclass),
    };
    let predictions = ValidationPredictions {
        specialists,
        multiclass,
    };
    Ok((record, predictions))
}
