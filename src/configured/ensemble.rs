//! The ensemble stage as a whole config drives it (above the stages: it
//! reads [`Config`], which the stages never import): the manifest of a
//! training run (its settings and the TOML it was resolved from), and a
//! saved ensemble opened for a later stage (`compare`, `score`) with its
//! manifest and weights, the config it was trained with (plus this command
//! line's overrides) and the cache that config points at, and the check
//! that an override does not re-split the evaluation data.

use std::path::Path;

use crate::assets::cache::Cache;
use crate::config::{CliSettings, Config, ConfigError};
use crate::ensemble::build::TrainOutcome;
use crate::ensemble::manifest::FORMAT;
use crate::ensemble::{load, Ensemble, EnsembleError, Manifest};
use crate::features::feature_set::SplitHeader;
use crate::features::store::FeatureSet;
use crate::heads::HeadKind;
use crate::{Error, Result};

/// The config an ensemble was trained with, plus this command line's
/// `--set` overrides and shortcut flags.
pub fn ensemble_config(
    e: &Ensemble,
    overrides: &[String],
    cli: &CliSettings,
) -> Result<Config, ConfigError> {
    let origin = format!("config saved in {}", e.dir.join("manifest.json").display());
    Config::from_toml_cli(&e.manifest.config_toml, &origin, overrides, cli)
}

/// `compare` evaluates an ensemble on its own dataset's splits: an override
/// of the seed or of the dataset would re-split (or swap) the images, so
/// that "test" could hold training rows. Refused, naming the field.
pub fn same_split_as_training(e: &Ensemble, config: &Config) -> Result<()> {
    let saved = ensemble_config(e, &[], &CliSettings::default())?;
    let (a, b) = (&saved.dataset, &config.dataset);
    let changed = [
        ("seed", saved.seed != config.seed),
        ("dataset.kind / dataset.root", a.kind != b.kind),
        ("dataset.val_fraction", a.val_fraction != b.val_fraction),
        ("dataset.test_fraction", a.test_fraction != b.test_fraction),
        (
            "dataset.limit_per_class",
            a.limit_per_class != b.limit_per_class,
        ),
        ("dataset.style", a.style != b.style),
    ];
    match changed.iter().find(|(_, c)| *c) {
        Some((field, _)) => Err(Error::Usage(format!(
            "`{field}` differs from the value ensemble `{}` was trained with: compare \
             evaluates on the ensemble's own split, and a different {field} would re-split or \
             swap the images (test rows could be training rows). Drop that --set; use \
             `compare --seed` for the bootstrap seed or `ovr score` for other images",
            e.manifest.name
        ))),
        None => Ok(()),
    }
}

/// Loads an ensemble with its saved config (plus overrides) and the cache
/// (`cache_dir` first, else the config's, else `$OVR_CACHE`).
pub fn open_ensemble(
    dir: &Path,
    overrides: &[String],
    cli: &CliSettings,
    cache_dir: Option<&Path>,
) -> Result<(Ensemble, Config, Cache)> {
    let e = load(dir)?;
    let config = ensemble_config(&e, overrides, cli)?;
    let cache = Cache::from_env(cache_dir.or(config.cache_dir.as_deref()))?;
    Ok((e, config, cache))
}

impl Manifest {
    /// The manifest of an ensemble trained by [`crate::ensemble::build::train_ensemble`] on `train`
    /// under `config`; an error only if the config cannot be written as JSON.
    pub fn from_training(
        name: &str,
        config: &Config,
        train: &FeatureSet,
        o: &TrainOutcome,
    ) -> Result<Manifest, EnsembleError> {
        Manifest::from_training_split(name, config, &train.header(), train.len(), train.dim, o)
    }

    /// [`Manifest::from_training`] from the training split's header, rows
    /// and width (a mapped split, whose features are not loaded).
    pub fn from_training_split(
        name: &str,
        config: &Config,
        train: &SplitHeader,
        rows: usize,
        dim: usize,
        o: &TrainOutcome,
    ) -> Result<Manifest, EnsembleError> {
        let t = &config.train;
        Ok(Manifest {
            format: FORMAT,
            name: name.to_string(),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            dataset: train.dataset.clone(),
            backbone: train.backbone.clone(),
            weights_sha256: train.weights_sha256.clone(),
            feature_dim: dim,
            classes: train.classes.clone(),
            seed: config.seed,
            train_images: rows,
            config: serde_json::to_value(config).map_err(|source| EnsembleError::Serialize {
                what: "run config",
                source,
            })?,
            config_toml: config.source_toml.clone(),
            specialists: o.specialists.clone(),
            multiclass: o.multiclass.clone(),
            mlp: (t.specialist_head == HeadKind::Mlp || t.multiclass_head == HeadKind::Mlp)
                .then(|| t.mlp.clone()),
            calibration: o.calibration.clone(),
            combiner: t.combiner.unwrap_or(o.calibration.selection.chosen),
            validation: o.validation.clone(),
            holdout_classes: Vec::new(),
            lanes: t.lanes,
            timeline: o.timeline.clone(),
            train_seconds: o.train_seconds,
        })
    }
}
