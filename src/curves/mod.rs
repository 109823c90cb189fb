//! Learning curves (`ovr curves`): which classes would gain most from more
//! training images. Sits beside `ensemble` and `metrics` in the data flow:
//!
//! cached train/val/test features -> [`subset`] (nested, seeded subsets of
//! each class's training rows, one per fraction and curve seed) -> the
//! ordinary `train_ensemble` pipeline (scheduler, selection on val,
//! calibration on val), in memory, never saved -> the approaches
//! `specialists-calibrated` and `multiclass-temperature` on the whole test
//! split -> per-class F1 and accuracy per fraction ([`fit::Stat`] over seeds)
//! and the slope of F1 against log2(fraction) over the last
//! [`FIT_POINTS`] fractions ([`fit::ls_slope`]) -> `report::curves`.
//!
//! Every class is subsampled at the same fraction in one training run, so a
//! class's slope is its F1 gain when *every* class's images double (the
//! cost of one run per fraction and seed instead of one per class as well).
//! The x of the fit is log2 of the fraction of the class's images actually
//! kept (rounding and the one-image floor make it differ from the nominal
//! fraction for small classes). Training is deterministic, so a subset that
//! repeats (every seed's 100 % subset is the whole split) is trained once.

use crate::util::choice::Choice;
pub mod fit;
pub mod subset;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Serialize;

use crate::config::train::CalibrationSplit;
use crate::config::Config;
use crate::ensemble::build::{train_ensemble, TrainError};
use crate::ensemble::predict::Approach;
use crate::ensemble::{Ensemble, Manifest};
use crate::features::store::FeatureSet;
use crate::progress::Verbosity;
use fit::{Slope, Stat};

/// Fractions the slope is fitted over: the largest ones, at most this many.
pub const FIT_POINTS: usize = 3;
/// The approaches scored: the key one and its baseline (as in `compare`).
pub const APPROACHES: [Approach; 2] = [
    Approach::SpecialistsCalibrated,
    Approach::MulticlassTemperature,
];

#[derive(Debug, thiserror::Error)]
pub enum CurvesError {
    #[error("{0}")]
    Spec(String),
    #[error("training on {percent}% of the training images (curve seed {seed})")]
    Train {
        percent: f64,
        seed: usize,
        #[source]
        source: TrainError,
    },
    #[error("scoring the test split ({percent}%, curve seed {seed})")]
    Score {
        percent: f64,
        seed: usize,
        #[source]
        source: crate::ensemble::EnsembleError,
    },
    #[error("test metrics ({percent}%, curve seed {seed})")]
    Metric {
        percent: f64,
        seed: usize,
        #[source]
        source: crate::metrics::MetricError,
    },
}

/// What to run: fractions in (0, 1], ascending, and the number of seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveSpec {
    pub fractions: Vec<f64>,
    pub seeds: usize,
}

impl CurveSpec {
    /// Checks and sorts: at least two distinct fractions in (0, 1], one seed.
    pub fn new(mut fractions: Vec<f64>, seeds: usize) -> Result<CurveSpec, CurvesError> {
        if let Some(f) = fractions.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
            return Err(CurvesError::Spec(format!(
                "--fractions: {f} is not a fraction in (0, 1], e.g. 0.1,0.25,0.5,1"
            )));
        }
        fractions.sort_by(f64::total_cmp);
        fractions.dedup();
        if fractions.len() < 2 {
            return Err(CurvesError::Spec(
                "--fractions: a curve needs at least two distinct fractions, e.g. 0.5,1".into(),
            ));
        }
        if seeds == 0 {
            return Err(CurvesError::Spec("--seeds must be at least 1".into()));
        }
        Ok(CurveSpec { fractions, seeds })
    }
}

/// One training run (a fraction and a curve seed).
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub fraction: f64,
    pub seed: usize,
    pub train_images: usize,
    /// The calibrated argmax's combiner chosen in this run.
    pub combiner: String,
    /// Test accuracy by approach.
    pub accuracy: BTreeMap<String, f64>,
    /// Training seconds (0 when the run reused an identical subset's).
    pub seconds: f64,
    /// The subset equals an earlier run's, whose heads were reused.
    pub reused: bool,
}

/// One approach's test figures per fraction (index = fraction).
#[derive(Debug, Clone, Serialize)]
pub struct OverallCurve {
    pub approach: String,
    pub accuracy: Vec<Stat>,
    pub macro_f1: Vec<Stat>,
}

/// A class's F1 at one fraction.
#[derive(Debug, Clone, Serialize)]
pub struct FractionPoint {
    pub fraction: f64,
    /// Training images of the class at this fraction (every seed keeps as many).
    pub images: usize,
    #[serde(flatten)]
    pub f1: Stat,
    pub per_seed: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassCurve {
    pub name: String,
    /// Training images of the class in the whole split.
    pub train_images: usize,
    pub test_images: usize,
    /// By approach name, one point per fraction.
    pub f1_by_fraction: BTreeMap<String, Vec<FractionPoint>>,
    /// By approach name.
    pub slope: BTreeMap<String, Slope>,
    /// 1 = would gain most (mean gain over the approaches, descending).
    pub rank: usize,
}

/// Everything `ovr curves` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Curves {
    pub dataset: String,
    pub backbone: String,
    pub seed: u64,
    pub fractions: Vec<f64>,
    pub seeds: usize,
    pub fit_points: usize,
    pub approaches: Vec<String>,
    pub train_images: usize,
    pub val_images: usize,
    pub test_images: usize,
    /// Distinct trainings (repeated subsets are trained once).
    pub trainings: usize,
    pub seconds: f64,
    /// One per (fraction, seed), fraction-major.
    pub runs: Vec<RunRecord>,
    pub overall: Vec<OverallCurve>,
    pub classes: Vec<ClassCurve>,
}

/// One trained subset scored on test.
struct Scored {
    /// By approach: per-class F1, accuracy, macro-F1.
    f1: Vec<Vec<f64>>,
    accuracy: Vec<f64>,
    macro_f1: Vec<f64>,
    combiner: String,
    seconds: f64,
}

/// The smallest number of training images a class may keep: 1, or 3 when
/// calibration holds out part of train (so both parts keep the class).
fn min_per_class(config: &Config) -> usize {
    match config.train.calibration_split {
        CalibrationSplit::Val => 1,
        CalibrationSplit::TrainFraction(_) => 3,
    }
}

fn score(
    config: &Config,
    train: &FeatureSet,
    val: &FeatureSet,
    test: &FeatureSet,
    ctx: (f64, usize),
    stop: &Arc<AtomicBool>,
) -> Result<Scored, CurvesError> {
    let (percent, seed) = (ctx.0 * 100.0, ctx.1);
    let o = train_ensemble(
        train,
        val,
        &config.train,
        config.seed,
        Arc::clone(stop),
        Verbosity::Quiet,
    )
    .map_err(|source| CurvesError::Train {
        percent,
        seed,
        source,
    })?;
    let seconds = o.train_seconds;
    let score = |source| CurvesError::Score {
        percent,
        seed,
        source,
    };
    let manifest = Manifest::from_training("curves", config, train, &o).map_err(score)?;
    let ens = Ensemble {
        dir: PathBuf::from("(learning curve run)"),
        manifest,
        weights: o.weights,
    };
    let metric = |source| CurvesError::Metric {
        percent,
        seed,
        source,
    };
    let out = ens
        .head_outputs(&test.features, test.len())
        .map_err(score)?;
    let k = test.classes.len();
    let mut s = Scored {
        f1: Vec::new(),
        accuracy: Vec::new(),
        macro_f1: Vec::new(),
        combiner: ens.manifest.combiner.name().to_string(),
        seconds,
    };
    for a in APPROACHES {
        let input = ens.approach(&out, a);
        let pc = crate::metrics::per_class(&test.labels, &input.preds, k).map_err(metric)?;
        let acc = crate::metrics::accuracy(&test.labels, &input.preds).map_err(metric)?;
        s.macro_f1.push(pc.f1.iter().sum::<f64>() / k.max(1) as f64);
        s.accuracy.push(acc);
        s.f1.push(pc.f1);
    }
    Ok(s)
}

/// Every (fraction, seed) cell's scores: `cell[f][s]` indexes `scored`
/// (cells with the same rows share one training).
struct Grid {
    scored: Vec<Scored>,
    cell: Vec<Vec<usize>>,
}

impl Grid {
    fn at(&self, fi: usize, s: usize) -> &Scored {
        &self.scored[self.cell[fi][s]]
    }
}

/// Trains on every (fraction, seed) subset and summarizes. `on_run` is told
/// of each run as it finishes (progress, diagnostics).
pub fn learning_curves(
    sets: [&FeatureSet; 3],
    config: &Config,
    spec: &CurveSpec,
    stop: &Arc<AtomicBool>,
    on_run: &mut dyn FnMut(&RunRecord),
) -> Result<Curves, CurvesError> {
    let [train, val, test] = sets;
    let t0 = std::time::Instant::now();
    let (grid, runs) = train_grid(sets, config, spec, stop, on_run)?;
    let nf = spec.fractions.len();
    let mut classes = class_curves(&grid, train, test, spec, min_per_class(config));
    for (r, c) in ranked(&classes).into_iter().enumerate() {
        classes[c].rank = r + 1;
    }
    Ok(Curves {
        dataset: train.dataset.clone(),
        backbone: train.backbone.clone(),
        seed: config.seed,
        fractions: spec.fractions.clone(),
        seeds: spec.seeds,
        fit_points: FIT_POINTS.min(nf),
        approaches: APPROACHES.iter().map(|a| a.name().to_string()).collect(),
        train_images: train.len(),
        val_images: val.len(),
        test_images: test.len(),
        trainings: grid.scored.len(),
        seconds: t0.elapsed().as_secs_f64(),
        runs,
        overall: overall_curves(&grid, nf, spec.seeds),
        classes,
    })
}

/// Trains (once per distinct subset) and scores every (fraction, seed) cell.
fn train_grid(
    [train, val, test]: [&FeatureSet; 3],
    config: &Config,
    spec: &CurveSpec,
    stop: &Arc<AtomicBool>,
    on_run: &mut dyn FnMut(&RunRecord),
) -> Result<(Grid, Vec<RunRecord>), CurvesError> {
    let k = train.classes.len();
    let min = min_per_class(config);
    let (nf, ns) = (spec.fractions.len(), spec.seeds);
    let mut memo: HashMap<Vec<usize>, usize> = HashMap::new();
    let mut grid = Grid {
        scored: Vec::new(),
        cell: vec![vec![0usize; ns]; nf],
    };
    let mut runs = Vec::with_capacity(nf * ns);
    let orders: Vec<Vec<Vec<usize>>> = (0..ns)
        .map(|s| subset::class_orders(&train.labels, k, subset::subset_seed(config.seed, s)))
        .collect();
    for (fi, &f) in spec.fractions.iter().enumerate() {
        for (s, order) in orders.iter().enumerate() {
            let rows = subset::subset_rows(order, f, min);
            let n = rows.len();
            let (idx, reused) = match memo.get(&rows) {
                Some(&i) => (i, true),
                None => {
                    let sub = subset::select(train, &rows);
                    grid.scored
                        .push(score(config, &sub, val, test, (f, s), stop)?);
                    memo.insert(rows, grid.scored.len() - 1);
                    (grid.scored.len() - 1, false)
                }
            };
            grid.cell[fi][s] = idx;
            let sc = &grid.scored[idx];
            let r = RunRecord {
                fraction: f,
                seed: s,
                train_images: n,
                combiner: sc.combiner.clone(),
                accuracy: APPROACHES
                    .iter()
                    .zip(&sc.accuracy)
                    .map(|(a, &v)| (a.name().to_string(), v))
                    .collect(),
                seconds: if reused { 0.0 } else { sc.seconds },
                reused,
            };
            on_run(&r);
            runs.push(r);
        }
    }
    Ok((grid, runs))
}

/// Accuracy and macro-F1 of every approach per fraction, over the seeds.
fn overall_curves(grid: &Grid, nf: usize, ns: usize) -> Vec<OverallCurve> {
    APPROACHES
        .iter()
        .enumerate()
        .map(|(ai, a)| OverallCurve {
            approach: a.name().to_string(),
            accuracy: (0..nf)
                .map(|fi| {
                    Stat::of(
                        &(0..ns)
                            .map(|s| grid.at(fi, s).accuracy[ai])
                            .collect::<Vec<_>>(),
                    )
                })
                .collect(),
            macro_f1: (0..nf)
                .map(|fi| {
                    Stat::of(
                        &(0..ns)
                            .map(|s| grid.at(fi, s).macro_f1[ai])
                            .collect::<Vec<_>>(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Each class's test F1 per fraction and approach, and its fitted slope
/// (ranks still 0).
fn class_curves(
    grid: &Grid,
    train: &FeatureSet,
    test: &FeatureSet,
    spec: &CurveSpec,
    min: usize,
) -> Vec<ClassCurve> {
    let (k, nf, ns) = (train.classes.len(), spec.fractions.len(), spec.seeds);
    let mut n_train = vec![0usize; k];
    train.labels.iter().for_each(|&y| n_train[y as usize] += 1);
    let mut n_test = vec![0usize; k];
    test.labels.iter().for_each(|&y| n_test[y as usize] += 1);
    (0..k)
        .map(|c| {
            let images: Vec<usize> = spec
                .fractions
                .iter()
                .map(|&f| subset::take(n_train[c], f, min))
                .collect();
            let mut f1_by_fraction = BTreeMap::new();
            let mut slope = BTreeMap::new();
            for (ai, a) in APPROACHES.iter().enumerate() {
                let f1: Vec<Vec<f64>> = (0..nf)
                    .map(|fi| (0..ns).map(|s| grid.at(fi, s).f1[ai][c]).collect())
                    .collect();
                let fitted = fit::slope(&spec.fractions, &images, n_train[c], &f1, FIT_POINTS);
                slope.insert(a.name().to_string(), fitted);
                let points: Vec<FractionPoint> = f1
                    .into_iter()
                    .enumerate()
                    .map(|(fi, per_seed)| FractionPoint {
                        fraction: spec.fractions[fi],
                        images: images[fi],
                        f1: Stat::of(&per_seed),
                        per_seed,
                    })
                    .collect();
                f1_by_fraction.insert(a.name().to_string(), points);
            }
            ClassCurve {
                name: train.classes[c].clone(),
                train_images: n_train[c],
                test_images: n_test[c],
                f1_by_fraction,
                slope,
                rank: 0,
            }
        })
        .collect()
}

/// The mean over the approaches of a class's gain per doubling (classes
/// without a slope sort last).
pub fn priority(c: &ClassCurve) -> f64 {
    let g: Vec<f64> = c
        .slope
        .values()
        .filter_map(|s| s.gain_per_doubling)
        .collect();
    if g.is_empty() {
        f64::NEG_INFINITY
    } else {
        g.iter().sum::<f64>() / g.len() as f64
    }
}

/// Class indices, the one that would gain most first (ties: by name).
pub fn ranked(classes: &[ClassCurve]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..classes.len()).collect();
    idx.sort_by(|&a, &b| {
        priority(&classes[b])
            .total_cmp(&priority(&classes[a]))
            .then_with(|| classes[a].name.cmp(&classes[b].name))
    });
    idx
}

#[cfg(test)]
mod tests;
