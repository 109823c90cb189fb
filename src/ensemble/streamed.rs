//! Ensemble stage, the streamed entry (`train.block_rows`, issue 15): the
//! training split stays a memory-mapped file (`features::mapped`). The
//! standardizer is fitted in two passes over the map, every lane reads the
//! split block by block (decoded, standardized, sent to its device, pages
//! released: `heads::rows::MappedRows`), and from there the pipeline is the
//! in-memory one (`build::Fitting`). Validation (which also calibrates)
//! stays in memory: it is the small split. What needs the training matrix
//! whole is refused here with the field named: MLP heads (mini-batch
//! epochs over the matrix), a calibration fraction held out of train and
//! held-out classes (both rewrite the training rows).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use super::build::{standardize, Fitting, TrainOutcome};
use super::params::{CalibrationSplit, TrainParams};
use super::split::{check, TrainSide};
use super::train_error::TrainError;
use crate::features::mapped::MappedFeatures;
use crate::features::store::FeatureSet;
use crate::heads::rows::{whole_units, DEFAULT_BLOCK_ROWS};
use crate::heads::HeadKind;
use crate::heads::MappedRows;
use crate::progress::Verbosity;
use crate::scheduler::lane::{Streamed, TrainRows};

/// The rows per block of a streamed run (`train.block_rows`, whole 256-row
/// chunks), or the first option it cannot honour, named.
pub fn streamed_block_rows(cfg: &TrainParams) -> Result<usize, TrainError> {
    let refuse = |field, value: String, reason| TrainError::NotStreamable {
        field,
        value,
        reason,
    };
    let mlp = "MLP heads train on mini-batches of the whole training matrix in memory; \
               use \"linear\" or unset train.block_rows";
    if cfg.specialist_head == HeadKind::Mlp {
        return Err(refuse("train.specialist_head", "\"mlp\"".into(), mlp));
    }
    if cfg.multiclass_head == HeadKind::Mlp {
        return Err(refuse("train.multiclass_head", "\"mlp\"".into(), mlp));
    }
    if let CalibrationSplit::TrainFraction(f) = cfg.calibration_split {
        return Err(refuse(
            "train.calibration_split",
            f.to_string(),
            "holding rows out of train rewrites the training matrix; use \"val\"",
        ));
    }
    if cfg.holdout_classes > 0 {
        return Err(refuse(
            "train.holdout_classes",
            cfg.holdout_classes.to_string(),
            "leaving classes out rewrites the training matrix; use 0",
        ));
    }
    Ok(whole_units(cfg.block_rows.unwrap_or(DEFAULT_BLOCK_ROWS)))
}

/// What the checks and the manifest need of a mapped training split.
fn side(map: &MappedFeatures) -> TrainSide<'_> {
    TrainSide {
        classes: &map.header.classes,
        dim: map.dim,
        backbone: &map.header.backbone,
        weights_sha256: &map.header.weights_sha256,
        labels: &map.labels,
    }
}

/// [`super::build::train_ensemble`] over a mapped training split, read in
/// blocks of `train.block_rows`; `val` (in memory) selects and calibrates.
/// The outcome is bitwise the in-memory one for every block size: the
/// gradient is reduced in fixed 4,096-row units whatever the block
/// (`heads::rows`, docs/scale.md).
pub fn train_ensemble_mapped(
    map: &Arc<MappedFeatures>,
    val: &FeatureSet,
    cfg: &TrainParams,
    seed: u64,
    stop: Arc<AtomicBool>,
    verbosity: Verbosity,
) -> Result<TrainOutcome, TrainError> {
    let block_rows = streamed_block_rows(cfg)?;
    let t0 = Instant::now();
    let train = side(map);
    check(train, val)?;
    let std = MappedRows::fit_standardizer(map, block_rows).map_err(standardize)?;
    let std = Arc::new(std);
    let rows = TrainRows::Streamed(Streamed {
        map: Arc::clone(map),
        standardizer: Arc::clone(&std),
        block_rows,
    });
    let fitting = Fitting {
        train,
        standardizer: &std,
        rows,
        cal: val,
        cal_is_val: true,
    };
    fitting.run(val, cfg, seed, (stop, verbosity, t0))
}
