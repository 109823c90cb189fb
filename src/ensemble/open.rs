//! Ensemble stage, opening a saved ensemble for a later stage (`compare`,
//! `score`): its manifest and weights, the config it was trained with (plus
//! this command line's overrides) and the cache that config points at, and
//! the check that an override does not re-split the evaluation data.

use std::path::Path;

use super::{load, Ensemble};
use crate::assets::cache::Cache;
use crate::config::{CliSettings, Config, ConfigError};
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
