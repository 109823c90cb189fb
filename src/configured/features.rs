//! The images and features stages as a whole config drives them (above the
//! stages: it reads [`Config`]'s seed, device, dataset, backbone and
//! extract sections together, which no stage imports): the assembly every
//! command reads features through: config -> dataset (images stage) -> each
//! configured backbone extracted (or reused from its per-content cache) on
//! its own -> logits if asked -> backbones concatenated per split.
//! A streamed training run maps the train split's file instead
//! ([`streamed_splits`]). `commands/` only wires this to the command line; the per-backbone
//! pipeline itself is [`crate::features::extract`].

use std::path::Path;
use std::sync::Arc;

use crate::assets::cache::{sha256_hex, Cache};
use crate::assets::weights::fetch_weights;
use crate::config::Config;
use crate::features::backbone::Backbone;
use crate::features::efficientnet_lite::LiteVariant;
use crate::features::extract::{ExtractError, ExtractOptions, ExtractReport};
use crate::features::mapped::MappedFeatures;
use crate::features::params::BackboneParams;
use crate::features::registry::{lite_weights_path, load_backbone};
use crate::features::shard::extract_scoped;
use crate::features::shard::Scope;
use crate::features::store::FeatureSet;
use crate::features::variant::{apply_kind, concat, FeatureKind};
use crate::images::dataset::{Dataset, Split};
use crate::images::inputs::{scoring_input, ScoreInput};
use crate::images::open_dataset;
use crate::progress::Verbosity;
use crate::util::choice::Choice;
use crate::{Error, Result};

/// Fetches Lite weights on first use when the config points at the cache.
pub fn ensure_weights(config: &Config, cache: &Cache, verbosity: Verbosity) -> Result<()> {
    for part in config.backbone.parts() {
        ensure_part_weights(&part, cache, verbosity)?;
    }
    Ok(())
}

fn ensure_part_weights(part: &BackboneParams, cache: &Cache, verbosity: Verbosity) -> Result<()> {
    if let (Some(v), None) = (LiteVariant::from_id(&part.name), &part.weights) {
        if !lite_weights_path(cache, v).exists() {
            if verbosity > Verbosity::Quiet {
                eprintln!("{} weights are not cached yet: fetching them", v.id());
            }
            fetch_weights(cache, v.id())?;
        }
    }
    Ok(())
}

pub fn extract_options(config: &Config, verbosity: Verbosity) -> ExtractOptions {
    ExtractOptions {
        batch_size: config.extract.batch_size,
        decode_threads: config.extract.decode_threads,
        decode: config.extract.decode_options(),
        verbosity,
        dtype: config.extract.dtype,
    }
}

/// Extracts (or reuses) the features of one backbone of the config, over
/// every image, one shard of them, or none (a merge).
pub fn extract_part(
    ds: &Dataset,
    part: &BackboneParams,
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
    scope: Scope,
) -> Result<(Box<dyn Backbone>, ExtractReport)> {
    // Fail fast on a missing GPU, before fetching anything.
    let device = config.device.open()?;
    ensure_part_weights(part, cache, verbosity)?;
    let backbone = load_backbone(part, cache, &device)?;
    let r = extract_scoped(
        ds,
        backbone.as_ref(),
        cache,
        &extract_options(config, verbosity),
        scope,
    )?;
    Ok((backbone, r))
}

/// What the configured feature variant gives for one dataset.
pub struct DatasetFeatures {
    /// One set per split that has rows, in split order.
    pub sets: Vec<FeatureSet>,
    /// Items some backbone could not read: key and reason.
    pub failed: Vec<(String, String)>,
}

/// Every split's features of `ds` for the config's backbone(s) and feature
/// kind: each backbone extracted (or reused from its cache) on its own, then
/// mapped to logits if asked and concatenated.
pub fn dataset_features(
    ds: &Dataset,
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<DatasetFeatures> {
    let parts = config.backbone.parts();
    let mut per_split: Vec<Vec<FeatureSet>> = vec![Vec::new(); Split::ALL.len()];
    let mut failed = Vec::new();
    for part in &parts {
        let (backbone, r) = extract_part(ds, part, config, cache, verbosity, Scope::All)?;
        failed.extend(r.failed);
        for (split, path, _) in &r.outputs {
            let set = FeatureSet::load(path).map_err(ExtractError::from)?;
            let set = apply_kind(backbone.as_ref(), set, config.backbone.features)?;
            let i = Split::ALL.iter().position(|s| s == split).unwrap_or(0);
            per_split[i].push(set);
        }
    }
    failed.sort();
    failed.dedup();
    let mut sets = Vec::new();
    for group in per_split {
        if group.len() == parts.len() {
            sets.push(concat(group)?);
        }
    }
    Ok(DatasetFeatures { sets, failed })
}

/// The train, val and test feature sets, in that order (extracting what is
/// not cached yet).
pub fn all_splits(config: &Config, cache: &Cache, verbosity: Verbosity) -> Result<[FeatureSet; 3]> {
    features_for(config, cache, verbosity, &Split::ALL)?
        .try_into()
        .map_err(|_| crate::Error::Usage("train, val and test features are required".into()))
}

/// The feature sets of `splits` (extracting what is not cached yet).
pub fn features_for(
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
    splits: &[Split],
) -> Result<Vec<FeatureSet>> {
    let ds = open_dataset(&config.dataset, cache, config.seed)?;
    let mut f = dataset_features(&ds, config, cache, verbosity)?;
    if !f.failed.is_empty() && verbosity > Verbosity::Quiet {
        eprintln!(
            "warning: {} unreadable image(s) skipped (`ovr extract` lists them)",
            f.failed.len()
        );
    }
    splits
        .iter()
        .map(|split| {
            let i = f
                .sets
                .iter()
                .position(|s| s.split == split.name())
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "dataset `{}` has no {} images",
                        ds.name,
                        split.name()
                    ))
                })?;
            Ok(f.sets.remove(i))
        })
        .collect()
}

/// The images under `input` (a folder or list, as `score` takes) and their
/// features through the cache; unreadable ones are named on stderr.
pub fn input_features(
    input: &Path,
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<(ScoreInput, FeatureSet)> {
    let canonical = input.canonicalize().unwrap_or_else(|_| input.to_path_buf());
    let name = format!(
        "score-{}",
        &sha256_hex(canonical.display().to_string().as_bytes())[..12]
    );
    let si = scoring_input(&name, input).map_err(crate::images::OpenDatasetError::from)?;
    let f = dataset_features(&si.dataset, config, cache, verbosity)?;
    for (key, why) in &f.failed {
        eprintln!("skipped {key}: {why}");
    }
    let set = f
        .sets
        .into_iter()
        .find(|s| s.split == Split::Test.name())
        .ok_or_else(|| Error::Usage(format!("no readable images in {}", input.display())))?;
    Ok((si, set))
}

/// What a streamed `ovr train` reads (`train.block_rows`): the training
/// split's file memory-mapped, its features left on disk, and the
/// validation split loaded (the small one, which selects and calibrates).
pub struct StreamedSplits {
    pub train: Arc<MappedFeatures>,
    pub val: FeatureSet,
}

/// The train split mapped and the val split loaded for a streamed run
/// (extracting what is not cached yet). Only one backbone's penultimate
/// features can be mapped as they are on disk: stacked backbones and
/// logits are assembled in memory, so those configs are refused, named.
pub fn streamed_splits(
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<StreamedSplits> {
    let parts = config.backbone.parts();
    let part = match parts.as_slice() {
        [one] if config.backbone.features == FeatureKind::Penultimate => one,
        _ => {
            return Err(Error::Usage(format!(
                "train.block_rows streams the training split's feature file as it is on disk, \
                 which needs one backbone and backbone.features = \"penultimate\" (this config \
                 has {} backbone(s) and features = \"{}\"): unset train.block_rows",
                parts.len(),
                config.backbone.features.name()
            )))
        }
    };
    let ds = open_dataset(&config.dataset, cache, config.seed)?;
    let (_, r) = extract_part(&ds, part, config, cache, verbosity, Scope::All)?;
    if !r.failed.is_empty() && verbosity > Verbosity::Quiet {
        eprintln!(
            "warning: {} unreadable image(s) skipped (`ovr extract` lists them)",
            r.failed.len()
        );
    }
    let path_of = |split: Split| {
        r.outputs
            .iter()
            .find(|(s, _, _)| *s == split)
            .map(|(_, p, _)| p.clone())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "dataset `{}` has no {} images",
                    ds.name,
                    split.name()
                ))
            })
    };
    let train = MappedFeatures::open(&path_of(Split::Train)?).map_err(ExtractError::from)?;
    let val = FeatureSet::load(&path_of(Split::Val)?).map_err(ExtractError::from)?;
    Ok(StreamedSplits {
        train: Arc::new(train),
        val,
    })
}
