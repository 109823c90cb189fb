//! Ensemble stage: from cached features to a calibrated ensemble, as a
//! pipeline: standardize (train statistics) -> train every head over its
//! grid through the scheduler ([`super::plan`]) -> select each head's
//! (weighting, C) on validation, extending the grid where the best C sits on
//! an end ([`super::select`]) -> calibrate on the held-out split (every
//! joint combiner of the specialists plus the combiner choice by nested CV,
//! a temperature for the multiclass head) -> validation accuracy.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel;

use super::manifest::{head_seed, CalibrationRecord, HeadRecord, TimelineEntry, ValidationRecord};
use super::plan::{self, Tried};
use super::predict::{multiclass_probs, specialist_logits, specialists_probs};
use super::select::{self, Val};
use super::{HeadParams, Weights};
use crate::calibration::Temperature;
use crate::config::train::{CalibrationSplit, HeadKind, TrainConfig};
use crate::features::store::FeatureSet;
use crate::heads::{FitOptions, Standardizer};
use crate::images::dataset::{stratified_split, Split};
use crate::progress::{bar, Verbosity};
use crate::scheduler::lane::Rows;
use crate::scheduler::{self, Event, Fit, Job, Lane};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("class `{class}` has no {split} examples: every class needs at least one in train and in the calibration split")]
    MissingClass { class: String, split: String },
    #[error("train and {split} features disagree: {detail}")]
    Mismatch { split: String, detail: String },
    #[error("head `{head}` failed: {message}")]
    Head { head: String, message: String },
    #[error("training was interrupted before all heads finished")]
    Interrupted,
    #[error("cannot set up lane {lane}: {message}")]
    Lane { lane: usize, message: String },
}

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

fn check(train: &FeatureSet, val: &FeatureSet) -> Result<(), TrainError> {
    let mismatch = |detail: String| TrainError::Mismatch {
        split: val.split.clone(),
        detail,
    };
    if train.classes != val.classes {
        return Err(mismatch("class lists differ".into()));
    }
    if train.dim != val.dim
        || train.backbone != val.backbone
        || train.weights_sha256 != val.weights_sha256
    {
        return Err(mismatch(format!(
            "{} {}-d vs {} {}-d",
            train.backbone, train.dim, val.backbone, val.dim
        )));
    }
    for (split, set) in [("train", train), (val.split.as_str(), val)] {
        let mut seen = vec![false; set.classes.len()];
        for &y in &set.labels {
            seen[y as usize] = true;
        }
        if let Some(c) = seen.iter().position(|s| !s) {
            return Err(TrainError::MissingClass {
                class: set.classes[c].clone(),
                split: split.to_string(),
            });
        }
    }
    Ok(())
}

/// Which rows of a training set with `labels` over `k` classes are held out
/// for calibration under `train.calibration_split = fraction`: `fraction`
/// of each class, seeded and stratified. `true` = held out (never trains a head).
pub fn calibration_rows(labels: &[u32], k: usize, fraction: f64, seed: u64) -> Vec<bool> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &y) in labels.iter().enumerate() {
        by_class[y as usize].push(i);
    }
    let mut held = vec![false; labels.len()];
    for (c, rows) in by_class.iter().enumerate() {
        let s = stratified_split(rows.len(), fraction, 0.0, seed, c as u64);
        for (&i, sp) in rows.iter().zip(s) {
            held[i] = sp == Split::Val;
        }
    }
    held
}

/// Splits `set` into (rows kept for training, rows held out for
/// calibration), see [`calibration_rows`].
fn hold_out(set: &FeatureSet, fraction: f64, seed: u64) -> (FeatureSet, FeatureSet) {
    let held = calibration_rows(&set.labels, set.classes.len(), fraction, seed);
    let pick = |keep: bool, split: &str| {
        let rows: Vec<usize> = (0..set.len()).filter(|&i| held[i] != keep).collect();
        FeatureSet {
            split: split.to_string(),
            keys: rows.iter().map(|&i| set.keys[i].clone()).collect(),
            labels: rows.iter().map(|&i| set.labels[i]).collect(),
            features: rows
                .iter()
                .flat_map(|&i| set.features[i * set.dim..(i + 1) * set.dim].to_vec())
                .collect(),
            ..set.clone()
        }
    };
    (
        pick(true, &set.split),
        pick(false, &format!("{}-held-out-{fraction}", set.split)),
    )
}

fn to_params(f: &Fit) -> HeadParams {
    match f {
        Fit::Linear(l) => HeadParams::Linear(l.clone()),
        Fit::Mlp(m) => HeadParams::Mlp(m.clone()),
    }
}

fn opts(cfg: &TrainConfig) -> FitOptions {
    FitOptions {
        max_iter: cfg.max_iter,
        tol: cfg.tol,
        history: 10,
    }
}

/// What every training round shares.
struct Rounds<'a> {
    lanes: &'a [Lane],
    labels: &'a [u32],
    cfg: &'a TrainConfig,
    stop: &'a Arc<AtomicBool>,
    verbosity: Verbosity,
}

/// Every candidate trained, its validation loss, and the scheduler timeline.
struct Trained {
    tried: Vec<Tried>,
    loss: Vec<f64>,
    timeline: Vec<TimelineEntry>,
}

impl Rounds<'_> {
    /// Runs one round of jobs with a progress bar; outcomes in job order.
    fn run(
        &self,
        jobs: &[Job],
        k: usize,
        label: &'static str,
    ) -> Vec<Option<scheduler::JobOutcome>> {
        let total: usize = jobs.iter().map(Job::heads).sum();
        let pb = bar(total as u64, label, self.verbosity);
        let (ev_tx, ev_rx) = channel::unbounded::<Event>();
        let outcomes = std::thread::scope(|s| {
            let pb = &pb;
            s.spawn(move || {
                for ev in ev_rx.iter() {
                    if let Event::Finished { heads, .. } = ev {
                        pb.inc(heads as u64);
                    }
                }
            });
            let o = opts(self.cfg);
            let stop = Arc::clone(self.stop);
            scheduler::run(jobs, self.lanes, self.labels, k, &o, Some(ev_tx), stop)
        });
        pb.finish_and_clear();
        outcomes
    }

    /// Every head over its grid, then extension rounds until no best C sits
    /// on an end it may still move past.
    fn train(&self, v: &Val, seed: u64) -> Result<Trained, TrainError> {
        let (k, cfg) = (v.k, self.cfg);
        let t0 = Instant::now();
        let mut jobs = plan::initial_jobs(cfg, k, seed);
        let (mut tried, mut loss, mut timeline) = (Vec::new(), Vec::new(), Vec::new());
        let mut label = "train";
        loop {
            let offset = t0.elapsed().as_secs_f64();
            let outcomes = self.run(&jobs, k, label);
            for (job, o) in jobs.iter().zip(&outcomes) {
                let Some(o) = o else { continue };
                timeline.push(TimelineEntry {
                    job: job.describe(),
                    lane: o.lane,
                    start_s: plan::shifted(o.start, offset),
                    end_s: plan::shifted(o.end, offset),
                    heads: job.heads(),
                });
            }
            let round = plan::decode(&jobs, outcomes, k)
                .ok_or(TrainError::Interrupted)?
                .map_err(|(head, message)| TrainError::Head { head, message })?;
            // Only this round's candidates are new; earlier losses stand.
            let new = select::losses(&round, v, cfg).map_err(|message| TrainError::Head {
                head: "selection".into(),
                message,
            })?;
            tried.extend(round);
            loss.extend(new);
            let best = select::best(&tried, &loss, k + 1);
            jobs = plan::extension_jobs(cfg, k, &select::extensions(&tried, &best, cfg, k));
            if jobs.is_empty() {
                return Ok(Trained {
                    tried,
                    loss,
                    timeline,
                });
            }
            label = "extend grid";
        }
    }
}

/// The record of head `id`'s chosen candidate `i`.
fn record(
    name: String,
    id: u64,
    t: &Trained,
    i: usize,
    cfg: &TrainConfig,
    seed: u64,
    k: usize,
) -> HeadRecord {
    let (tried, loss) = (&t.tried, &t.loss);
    let c = &tried[i];
    let (kind, iterations, converged, objective, best_epoch) = match &c.fit {
        Fit::Linear(f) => (
            HeadKind::Linear,
            f.iterations,
            f.converged,
            Some(f.objective),
            None,
        ),
        Fit::Mlp(m) => (
            HeadKind::Mlp,
            m.epochs,
            m.converged,
            None,
            Some(m.best_epoch),
        ),
    };
    HeadRecord {
        name,
        kind,
        c: c.slot.c,
        weighting: c.slot.weighting,
        val_loss: loss[i],
        val_loss_grid: select::grid_points(tried, loss, c.slot.head),
        grid_edge: select::grid_edge(tried, c, cfg, k),
        iterations,
        converged,
        objective,
        best_epoch,
        seed: head_seed(seed, id),
        seconds: c.seconds,
    }
}

/// Calibration on the held-out rows: every joint combiner, the choice
/// among them by nested CV, and the multiclass temperature.
fn calibrate(
    w: &Weights,
    cal: &FeatureSet,
    cfg: &TrainConfig,
    seed: u64,
) -> Result<CalibrationRecord, TrainError> {
    let (nc, d, k) = (cal.len(), cal.dim, w.specialists.len());
    let x = w.standardizer.apply(&cal.features);
    let z = specialist_logits(w, &x, nc, d);
    let failed = |head: &str| {
        let head = head.to_string();
        move |e: crate::calibration::CalibrationError| TrainError::Head {
            head,
            message: e.to_string(),
        }
    };
    let params = crate::calibration::JointParams {
        seed,
        extensions: cfg.grid_extension,
        ..cfg.joint.clone()
    };
    let groups = crate::images::emoji40::groups(&cal.keys);
    let (joint, selection) = crate::calibration::calibrate(&z, &cal.labels, &groups, k, &params)
        .map_err(failed("calibration of the specialists"))?;
    let temperature = Temperature::fit(&w.multiclass.logits(&x, nc, d), &cal.labels, nc, k)
        .map_err(failed("temperature of the multiclass head"))?;
    Ok(CalibrationRecord {
        split: cal.split.clone(),
        specialists: joint,
        selection,
        multiclass: temperature,
    })
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
    combiner: crate::calibration::Combiner,
    v: &Val,
    cal_is_val: bool,
) -> (ValidationRecord, ValidationPredictions) {
    let acc = |pred: &[u32]| {
        pred.iter().zip(v.labels).filter(|(p, y)| p == y).count() as f64 / v.n.max(1) as f64
    };
    let z = specialist_logits(w, v.x, v.n, v.d);
    let (_, specialists) = specialists_probs(&cal.specialists, combiner, &z, v.n, v.k);
    let specialists_accuracy = match cal
        .selection
        .candidates
        .iter()
        .find(|c| c.combiner == combiner)
    {
        Some(c) if cal_is_val => c.cv_accuracy,
        _ => acc(&specialists),
    };
    let (_, multiclass) = multiclass_probs(&w.multiclass.logits(v.x, v.n, v.d), v.n, v.k);
    let record = ValidationRecord {
        images: v.n,
        specialists_accuracy,
        multiclass_accuracy: acc(&multiclass),
    };
    (
        record,
        ValidationPredictions {
            specialists,
            multiclass,
        },
    )
}

/// Trains specialists and the multiclass head, selects, calibrates.
pub fn train_ensemble(
    train: &FeatureSet,
    val: &FeatureSet,
    cfg: &TrainConfig,
    seed: u64,
    stop: Arc<AtomicBool>,
    verbosity: Verbosity,
) -> Result<TrainOutcome, TrainError> {
    let t0 = Instant::now();
    let held = match cfg.calibration_split {
        CalibrationSplit::Val => None,
        CalibrationSplit::TrainFraction(f) => Some(hold_out(train, f, seed)),
    };
    let (train, cal) = match &held {
        Some((fit, cal)) => (fit, cal),
        None => (train, val),
    };
    check(train, val)?;
    check(train, cal)?;
    let (k, d, n) = (train.classes.len(), train.dim, train.len());
    let std = Standardizer::fit(&train.features, n, d);
    let (x_tr, x_va) = (std.apply(&train.features), std.apply(&val.features));
    let v = Val {
        x: &x_va,
        n: val.len(),
        d,
        labels: &val.labels,
        k,
    };
    let lanes = open_lanes(cfg, &x_tr, train, &v)?;
    let rounds = Rounds {
        lanes: &lanes,
        labels: &train.labels,
        cfg,
        stop: &stop,
        verbosity,
    };
    let trained = rounds.train(&v, seed)?;
    let (tried, loss) = (&trained.tried, &trained.loss);
    let best = select::best(tried, loss, k + 1);
    let chosen = |h: usize| best[h].ok_or(TrainError::Interrupted);
    let mut specialists = Vec::with_capacity(k);
    let mut params = Vec::with_capacity(k);
    for c in 0..k {
        let i = chosen(c)?;
        let name = train.classes[c].clone();
        specialists.push(record(name, c as u64, &trained, i, cfg, seed, k));
        params.push(to_params(&tried[i].fit));
    }
    let m = chosen(k)?;
    let multiclass = record("multiclass".into(), k as u64, &trained, m, cfg, seed, k);
    let weights = Weights {
        standardizer: std.clone(),
        specialists: params,
        multiclass: to_params(&tried[m].fit),
    };
    let t_heads = t0.elapsed().as_secs_f64();
    let calibration = calibrate(&weights, cal, cfg, seed)?;
    if verbosity >= Verbosity::Verbose {
        eprintln!(
            "heads trained and selected in {t_heads:.2} s, calibrated in {:.2} s",
            t0.elapsed().as_secs_f64() - t_heads
        );
    }
    let combiner = cfg.combiner.unwrap_or(calibration.selection.chosen);
    let (validation, validation_predictions) =
        validate(&weights, &calibration, combiner, &v, held.is_none());
    // A stop requested after the last job started (during calibration, say)
    // still means "nothing will be saved".
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(TrainError::Interrupted);
    }
    Ok(TrainOutcome {
        weights,
        specialists,
        multiclass,
        calibration,
        validation,
        validation_predictions,
        timeline: trained.timeline,
        heads_seconds: t_heads,
        train_seconds: t0.elapsed().as_secs_f64(),
    })
}

/// One lane per device (on CUDA each has its own stream).
fn open_lanes(
    cfg: &TrainConfig,
    x_tr: &[f32],
    train: &FeatureSet,
    v: &Val,
) -> Result<Vec<Lane>, TrainError> {
    let rows_tr = Rows {
        x: x_tr,
        n: train.len(),
        d: v.d,
        labels: &train.labels,
    };
    let rows_va = Rows {
        x: v.x,
        n: v.n,
        d: v.d,
        labels: v.labels,
    };
    let devices = cfg
        .device
        .open_lanes(cfg.lanes)
        .map_err(|e| TrainError::Lane {
            lane: 0,
            message: e.to_string(),
        })?;
    devices
        .iter()
        .enumerate()
        .map(|(i, dev)| {
            Lane::on_device(i, dev, &rows_tr, &rows_va)
                .map_err(|message| TrainError::Lane { lane: i, message })
        })
        .collect()
}
