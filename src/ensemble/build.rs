//! Ensemble stage: from cached features to a calibrated ensemble. Fits the
//! standardizer on train, sends every (specialist, C) and (multiclass, C)
//! job through the scheduler, picks each head's C on the validation split,
//! calibrates on the same held-out split (Platt or isotonic per specialist,
//! temperature for the multiclass head) and reports validation accuracy.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel;

use super::manifest::{head_seed, CalibrationRecord, HeadRecord, TimelineEntry, ValidationRecord};
use super::{HeadParams, Weights};
use crate::calibration::{argmax_rows, combine, BinaryCalibrator, Combiner, Temperature};
use crate::config::train::{CalibrationSplit, HeadKind, TrainConfig};
use crate::features::store::FeatureSet;
use crate::heads::{binary_val_loss, softmax_val_loss, BinaryJob, FitOptions, Standardizer};
use crate::images::dataset::{stratified_split, Split};
use crate::progress::{bar, Verbosity};
use crate::scheduler::lane::Rows;
use crate::scheduler::{self, fuse_binary, Event, Fit, Job, Lane};

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
    pub timeline: Vec<TimelineEntry>,
    pub train_seconds: f64,
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

/// Splits `set` into (rows kept for training, rows held out for
/// calibration): `fraction` of each class, seeded and stratified.
fn hold_out(set: &FeatureSet, fraction: f64, seed: u64) -> (FeatureSet, FeatureSet) {
    let k = set.classes.len();
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &y) in set.labels.iter().enumerate() {
        by_class[y as usize].push(i);
    }
    let mut held = vec![false; set.len()];
    for (c, rows) in by_class.iter().enumerate() {
        let s = stratified_split(rows.len(), fraction, 0.0, seed, c as u64);
        for (&i, sp) in rows.iter().zip(s) {
            held[i] = sp == Split::Val;
        }
    }
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

fn first_min(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] < v[best] { i } else { best })
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
    let x_tr = std.apply(&train.features);
    let x_va = std.apply(&val.features);
    let nv = val.len();
    let (rows_tr, rows_va) = (
        Rows {
            x: &x_tr,
            n,
            d,
            labels: &train.labels,
        },
        Rows {
            x: &x_va,
            n: nv,
            d,
            labels: &val.labels,
        },
    );
    // One device per lane: on CUDA each has its own stream.
    let devices = cfg
        .device
        .open_lanes(cfg.lanes)
        .map_err(|e| TrainError::Lane {
            lane: 0,
            message: e.to_string(),
        })?;
    let lanes: Vec<Lane> = devices
        .iter()
        .enumerate()
        .map(|(i, dev)| {
            Lane::on_device(i, dev, &rows_tr, &rows_va, cfg.class_weight)
                .map_err(|message| TrainError::Lane { lane: i, message })
        })
        .collect::<Result<_, _>>()?;

    // Specialist jobs first, then the multiclass ones. Linear units are in
    // grid-major order: unit u = (grid g, class c) with u = g * k + c.
    let mut jobs = match cfg.specialist_head {
        HeadKind::Linear => {
            let units: Vec<BinaryJob> = cfg
                .c_grid
                .iter()
                .flat_map(|&c| {
                    (0..k as u32).map(move |class| BinaryJob {
                        class,
                        c,
                        weighting: cfg.class_weight,
                    })
                })
                .collect();
            let fuse = if cfg.fuse == 0 {
                units.len().div_ceil(cfg.lanes)
            } else {
                cfg.fuse
            };
            fuse_binary(&units, fuse)
        }
        HeadKind::Mlp => (0..k as u32)
            .map(|class| Job::MlpBinary {
                class,
                spec: cfg.mlp.clone(),
                seed: head_seed(seed, class as u64),
            })
            .collect(),
    };
    let first_multiclass = jobs.len();
    match cfg.multiclass_head {
        HeadKind::Linear => jobs.extend(cfg.multiclass_c_grid.iter().map(|&c| Job::Softmax { c })),
        HeadKind::Mlp => jobs.push(Job::MlpSoftmax {
            spec: cfg.mlp.clone(),
            seed: head_seed(seed, k as u64),
        }),
    }
    let opts = FitOptions {
        max_iter: cfg.max_iter,
        tol: cfg.tol,
        history: 10,
    };

    let total_heads: usize = jobs.iter().map(Job::heads).sum();
    let pb = bar(total_heads as u64, "train", verbosity);
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
        scheduler::run(&jobs, &lanes, &train.labels, k, &opts, Some(ev_tx), stop)
    });
    pb.finish_and_clear();

    // Fits in job order (specialists, then multiclass), with their job's seconds.
    let mut spec_fits: Vec<(Fit, f64)> = Vec::new();
    let mut multi_fits: Vec<(Fit, f64)> = Vec::new();
    let mut timeline = Vec::new();
    for (ji, o) in outcomes.into_iter().enumerate() {
        let o = o.ok_or(TrainError::Interrupted)?;
        let job = &jobs[ji];
        let secs = (o.end - o.start).as_secs_f64();
        timeline.push(TimelineEntry {
            job: job.describe(),
            lane: o.lane,
            start_s: o.start.as_secs_f64(),
            end_s: o.end.as_secs_f64(),
            heads: job.heads(),
        });
        let fits = o.result.map_err(|message| TrainError::Head {
            head: job.describe(),
            message,
        })?;
        let target = if ji < first_multiclass {
            &mut spec_fits
        } else {
            &mut multi_fits
        };
        target.extend(fits.into_iter().map(|f| (f, secs)));
    }

    let yes = |set: &FeatureSet, c: usize| -> Vec<bool> {
        set.labels.iter().map(|&y| y as usize == c).collect()
    };
    // Picks the fit with the lowest validation loss among `candidates`.
    let choose = |name: String,
                  id: u64,
                  candidates: Vec<(&(Fit, f64), Option<f64>)>,
                  loss: &dyn Fn(&HeadParams) -> f64| {
        let params: Vec<HeadParams> = candidates.iter().map(|(f, _)| to_params(&f.0)).collect();
        let losses: Vec<f64> = params
            .iter()
            .zip(&candidates)
            .map(|(p, (f, _))| match &f.0 {
                Fit::Linear(_) => loss(p),
                Fit::Mlp(m) => m.val_loss,
            })
            .collect();
        let g = first_min(&losses);
        let ((fit, secs), c) = (candidates[g].0, candidates[g].1);
        let record = HeadRecord {
            name,
            kind: match fit {
                Fit::Linear(_) => HeadKind::Linear,
                Fit::Mlp(_) => HeadKind::Mlp,
            },
            c,
            val_loss: losses[g],
            val_loss_grid: losses.clone(),
            iterations: match fit {
                Fit::Linear(f) => f.iterations,
                Fit::Mlp(m) => m.epochs,
            },
            converged: match fit {
                Fit::Linear(f) => f.converged,
                Fit::Mlp(m) => m.converged,
            },
            objective: match fit {
                Fit::Linear(f) => Some(f.objective),
                Fit::Mlp(_) => None,
            },
            best_epoch: match fit {
                Fit::Linear(_) => None,
                Fit::Mlp(m) => Some(m.best_epoch),
            },
            seed: head_seed(seed, id),
            seconds: *secs,
        };
        (params.into_iter().nth(g), record)
    };
    let mut specialists_params = Vec::with_capacity(k);
    let mut specialists = Vec::with_capacity(k);
    let mut val_logits = vec![0f32; nv * k];
    for c in 0..k {
        let pos = yes(val, c);
        let candidates: Vec<(&(Fit, f64), Option<f64>)> = match cfg.specialist_head {
            HeadKind::Linear => (0..cfg.c_grid.len())
                .map(|g| (&spec_fits[g * k + c], Some(cfg.c_grid[g])))
                .collect(),
            HeadKind::Mlp => vec![(&spec_fits[c], None)],
        };
        let loss = |p: &HeadParams| match p {
            HeadParams::Linear(f) => binary_val_loss(&x_va, nv, d, &pos, f, cfg.class_weight),
            HeadParams::Mlp(m) => m.val_loss,
        };
        let (params, record) = choose(train.classes[c].clone(), c as u64, candidates, &loss);
        let params = params.ok_or(TrainError::Interrupted)?;
        for (i, z) in params.logits(&x_va, nv, d).into_iter().enumerate() {
            val_logits[i * k + c] = z;
        }
        specialists_params.push(params);
        specialists.push(record);
    }
    let candidates: Vec<(&(Fit, f64), Option<f64>)> = match cfg.multiclass_head {
        HeadKind::Linear => multi_fits
            .iter()
            .zip(&cfg.multiclass_c_grid)
            .map(|(f, &c)| (f, Some(c)))
            .collect(),
        HeadKind::Mlp => multi_fits.iter().map(|f| (f, None)).collect(),
    };
    let loss = |p: &HeadParams| match p {
        HeadParams::Linear(f) => {
            softmax_val_loss(&x_va, nv, d, k, &val.labels, f, cfg.class_weight)
        }
        HeadParams::Mlp(m) => m.val_loss,
    };
    let (mc_params, multiclass) = choose("multiclass".into(), k as u64, candidates, &loss);
    let mc_params = mc_params.ok_or(TrainError::Interrupted)?;
    let weights = Weights {
        standardizer: std.clone(),
        specialists: specialists_params,
        multiclass: mc_params.clone(),
    };

    // Calibration on the held-out rows (val, or the part of train held out).
    let nc = cal.len();
    let x_cal = std.apply(&cal.features);
    let mut cal_logits = vec![0f32; nc * k];
    for (c, p) in weights.specialists.iter().enumerate() {
        for (i, z) in p.logits(&x_cal, nc, d).into_iter().enumerate() {
            cal_logits[i * k + c] = z;
        }
    }
    let mut calibrators = Vec::with_capacity(k);
    for c in 0..k {
        let scores: Vec<f32> = (0..nc).map(|i| cal_logits[i * k + c]).collect();
        let cal =
            BinaryCalibrator::fit(cfg.calibration, &scores, &yes(cal, c), None).map_err(|e| {
                TrainError::Head {
                    head: format!("calibration of `{}`", train.classes[c]),
                    message: e.to_string(),
                }
            })?;
        calibrators.push(cal);
    }
    let temperature = Temperature::fit(&mc_params.logits(&x_cal, nc, d), &cal.labels, nc, k)
        .map_err(|e| TrainError::Head {
            head: "temperature of the multiclass head".into(),
            message: e.to_string(),
        })?;
    let mc_val_logits = mc_params.logits(&x_va, nv, d);
    let accuracy = |pred: &[u32]| {
        pred.iter().zip(&val.labels).filter(|(p, y)| p == y).count() as f64 / nv.max(1) as f64
    };
    let spec_pred = argmax_rows(
        &combine(Combiner::CalibratedArgmax, &val_logits, nv, k, &calibrators),
        nv,
        k,
    );
    let mc_pred = argmax_rows(&mc_val_logits, nv, k);
    Ok(TrainOutcome {
        weights,
        specialists,
        multiclass,
        calibration: CalibrationRecord {
            split: cal.split.clone(),
            method: cfg.calibration,
            specialists: calibrators,
            multiclass: temperature,
        },
        validation: ValidationRecord {
            images: nv,
            specialists_accuracy: accuracy(&spec_pred),
            multiclass_accuracy: accuracy(&mc_pred),
        },
        timeline,
        train_seconds: t0.elapsed().as_secs_f64(),
    })
}
