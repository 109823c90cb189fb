//! Ensemble stage, the rows each step sees: the calibration split (val, or
//! a seeded stratified fraction held out of train) and the checks that
//! train, val and the calibration rows describe the same classes and
//! features.

use super::params::{CalibrationSplit, TrainParams};
use super::train_error::TrainError;
use crate::features::store::FeatureSet;
use crate::images::dataset::{stratified_split, Split};

/// What the checks need of the training rows (a loaded set or a mapped
/// split's header and labels).
#[derive(Clone, Copy)]
pub struct TrainSide<'a> {
    pub classes: &'a [String],
    pub dim: usize,
    pub backbone: &'a str,
    pub weights_sha256: &'a str,
    pub labels: &'a [u32],
}

impl<'a> From<&'a FeatureSet> for TrainSide<'a> {
    fn from(s: &'a FeatureSet) -> Self {
        TrainSide {
            classes: &s.classes,
            dim: s.dim,
            backbone: &s.backbone,
            weights_sha256: &s.weights_sha256,
            labels: &s.labels,
        }
    }
}

/// Checks that `val` has `train`'s classes and features, and that every
/// class has a row in both.
pub fn check(train: TrainSide, val: &FeatureSet) -> Result<(), TrainError> {
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
    for (split, labels) in [("train", train.labels), (val.split.as_str(), &val.labels)] {
        let mut seen = vec![false; train.classes.len()];
        for &y in labels {
            if let Some(s) = seen.get_mut(y as usize) {
                *s = true;
            }
        }
        if let Some(c) = seen.iter().position(|s| !s) {
            return Err(TrainError::MissingClass {
                class: train.classes[c].clone(),
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

/// The training rows the heads see and the calibration rows, when some of
/// train is held out (`None`: all of train trains, val calibrates).
pub struct HeldOut(Option<(FeatureSet, FeatureSet)>);

impl HeldOut {
    pub fn new(train: &FeatureSet, cfg: &TrainParams, seed: u64) -> HeldOut {
        HeldOut(match cfg.calibration_split {
            CalibrationSplit::Val => None,
            CalibrationSplit::TrainFraction(f) => Some(hold_out(train, f, seed)),
        })
    }

    /// (rows that train the heads, rows that calibrate), checked against val.
    pub fn sets<'a>(
        &'a self,
        train: &'a FeatureSet,
        val: &'a FeatureSet,
    ) -> Result<(&'a FeatureSet, &'a FeatureSet), TrainError> {
        let (fit, cal) = match &self.0 {
            Some((fit, cal)) => (fit, cal),
            None => (train, val),
        };
        check(fit.into(), val)?;
        check(fit.into(), cal)?;
        Ok((fit, cal))
    }

    /// Whether val itself calibrates.
    pub fn calibrates_on_val(&self) -> bool {
        self.0.is_none()
    }
}
