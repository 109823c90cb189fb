//! `ovr extract`: dataset (images stage) -> backbone -> cached features,
//! then a summary on stdout and `summary.json` next to the feature files.

use crate::assets::cache::{write_atomic, Cache};
use crate::assets::weights::fetch_weights;
use crate::config::Config;
use crate::features::backbone::Backbone;
use crate::features::efficientnet_lite::LiteVariant;
use crate::features::extract::{
    dataset_features_dir, extract, ExtractError, ExtractOptions, ExtractReport,
};
use crate::features::registry::{lite_weights_path, load_backbone};
use crate::features::store::FeatureSet;
use crate::images::dataset::{Dataset, Split};
use crate::images::open_dataset;
use crate::progress::Verbosity;
use crate::{Error, Result};

/// Fetches Lite weights on first use when the config points at the cache.
pub fn ensure_weights(config: &Config, cache: &Cache, verbosity: Verbosity) -> Result<()> {
    if let (Some(v), None) = (
        LiteVariant::from_id(&config.backbone.name),
        &config.backbone.weights,
    ) {
        if !lite_weights_path(cache, v).exists() {
            if verbosity > Verbosity::Quiet {
                eprintln!("{} weights are not cached yet: fetching them", v.id());
            }
            fetch_weights(cache, v.id())?;
        }
    }
    Ok(())
}

/// Opens the dataset, loads the backbone and extracts (or reuses) every feature.
pub fn extract_features(
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<(Dataset, Box<dyn Backbone>, ExtractReport)> {
    let ds = open_dataset(&config.dataset, cache, config.seed)?;
    ensure_weights(config, cache, verbosity)?;
    let backbone = load_backbone(&config.backbone, cache)?;
    let opts = ExtractOptions {
        batch_size: config.extract.batch_size,
        decode_threads: config.extract.decode_threads,
        resize: config.extract.resize,
        verbosity,
    };
    let r = extract(&ds, backbone.as_ref(), cache, &opts)?;
    Ok((ds, backbone, r))
}

/// The feature sets of `splits` (extracting what is not cached yet).
pub fn features_for(
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
    splits: &[Split],
) -> Result<Vec<FeatureSet>> {
    let (ds, _, r) = extract_features(config, cache, verbosity)?;
    if !r.failed.is_empty() && verbosity > Verbosity::Quiet {
        eprintln!(
            "warning: {} unreadable image(s) skipped (`ovr extract` lists them)",
            r.failed.len()
        );
    }
    splits
        .iter()
        .map(|split| {
            let (_, path, _) = r.outputs.iter().find(|o| o.0 == *split).ok_or_else(|| {
                Error::Usage(format!(
                    "dataset `{}` has no {} images",
                    ds.name,
                    split.as_str()
                ))
            })?;
            Ok(FeatureSet::load(path).map_err(ExtractError::from)?)
        })
        .collect()
}

pub fn run(config: &Config, cache: &Cache, verbosity: Verbosity) -> Result<()> {
    let (ds, backbone, r) = extract_features(config, cache, verbosity)?;
    let [tr, va, te] = ds.split_counts();
    println!(
        "{} / {}: {} images in {} classes (train {tr}, val {va}, test {te})",
        ds.name,
        backbone.id(),
        ds.items.len(),
        ds.classes.len()
    );
    let secs = r.elapsed.as_secs_f64();
    if r.computed == 0 {
        println!(
            "nothing to compute: {} images reused from the cache ({secs:.1} s)",
            r.reused
        );
    } else {
        println!(
            "computed {} images, reused {} from the cache, in {secs:.1} s ({:.1} images/s through the backbone)",
            r.computed,
            r.reused,
            r.computed as f64 / r.backbone_seconds.max(1e-9)
        );
    }
    for (split, path, rows) in &r.outputs {
        println!(
            "  {:<5} {rows:>6} x {} -> {}",
            split.as_str(),
            backbone.feature_dim(),
            path.display()
        );
    }
    if !r.failed.is_empty() {
        println!("skipped {} unreadable image(s):", r.failed.len());
        for (key, why) in &r.failed {
            println!("  {key}: {why}");
        }
    }
    if !ds.ignored.is_empty() {
        println!(
            "ignored {} file(s) that are not images{}",
            ds.ignored.len(),
            if verbosity == Verbosity::Verbose {
                ":"
            } else {
                " (-v lists them)"
            }
        );
        if verbosity == Verbosity::Verbose {
            for (p, why) in &ds.ignored {
                println!("  {}: {why}", p.display());
            }
        }
    }
    let summary = serde_json::json!({
        "dataset": ds.name,
        "backbone": backbone.id(),
        "weights_sha256": backbone.weights_hash(),
        "images": ds.items.len(),
        "computed": r.computed,
        "reused": r.reused,
        "seconds": secs,
        "backbone_seconds": r.backbone_seconds,
        "failed": r.failed.iter().map(|(k, w)| serde_json::json!({"item": k, "reason": w})).collect::<Vec<_>>(),
        "ignored": ds.ignored.iter().map(|(p, w)| serde_json::json!({"path": p, "reason": w})).collect::<Vec<_>>(),
        "outputs": r.outputs.iter().map(|(s, p, n)| serde_json::json!({"split": s.as_str(), "path": p, "rows": n})).collect::<Vec<_>>(),
    });
    let path = dataset_features_dir(cache, &ds.name, backbone.as_ref()).join("summary.json");
    write_atomic(
        &path,
        serde_json::to_string_pretty(&summary)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(())
}
