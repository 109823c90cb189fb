//! `ovr extract`: dataset (images stage) -> backbone -> cached features,
//! then a summary on stdout and `summary.json` next to the feature files.
//! Wiring only: the assembly is [`crate::configured::features`].

use crate::util::choice::Choice;
use std::fmt::Write as _;

use crate::assets::cache::{write_atomic, Cache};
use crate::config::Config;
use crate::configured::features::extract_part;
use crate::features::backbone::Backbone;
use crate::features::extract::{dataset_features_dir, ExtractReport};
use crate::features::shard::{Scope, ShardSpec};
use crate::images::dataset::Dataset;
use crate::images::open_dataset;
use crate::progress::Verbosity;
use crate::Result;

/// `ovr extract`: every image (`Scope::All`), one shard (`--shard K/N`) or
/// a merge of finished shards (`--merge`), for each configured backbone.
pub fn run(config: &Config, cache: &Cache, verbosity: Verbosity, scope: Scope) -> Result<()> {
    let ds = open_dataset(&config.dataset, cache, config.seed)?;
    for part in config.backbone.parts() {
        let (backbone, r) = extract_part(&ds, &part, config, cache, verbosity, scope)?;
        match scope {
            Scope::Shard(spec) => report_shard(&ds, backbone.as_ref(), &r, spec)?,
            Scope::All | Scope::Merge => report(&ds, backbone.as_ref(), &r, cache, verbosity)?,
        }
    }
    Ok(())
}

/// What one shard did (no `summary.json`: many shards run at once; the
/// merge writes it).
fn report_shard(
    ds: &Dataset,
    backbone: &dyn Backbone,
    r: &ExtractReport,
    spec: ShardSpec,
) -> Result<()> {
    let mine = r.computed + r.reused + r.failed.len();
    let mut text = format!(
        "{} / {}: shard {spec}: {mine} of {} images are this shard's; computed {}, reused {} from the cache in {:.1} s\n",
        ds.name,
        backbone.id(),
        ds.items.len(),
        r.computed,
        r.reused,
        r.elapsed.as_secs_f64()
    );
    if !r.failed.is_empty() {
        let _ = writeln!(text, "skipped {} unreadable image(s):", r.failed.len());
        for (key, why) in &r.failed {
            let _ = writeln!(text, "  {key}: {why}");
        }
    }
    if let Some(m) = &r.marker {
        let _ = writeln!(text, "done-marker -> {}", m.display());
    }
    crate::output::print(&text)?;
    Ok(())
}

/// Writes what one backbone's extraction did to `summary.json`, then prints it.
fn report(
    ds: &Dataset,
    backbone: &dyn Backbone,
    r: &ExtractReport,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<()> {
    let [tr, va, te] = ds.split_counts();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} / {}: {} images in {} classes (train {tr}, val {va}, test {te})",
        ds.name,
        backbone.id(),
        ds.items.len(),
        ds.classes.len()
    );
    let secs = r.elapsed.as_secs_f64();
    if r.computed == 0 {
        let _ = writeln!(
            text,
            "nothing to compute: {} images reused from the cache ({secs:.1} s)",
            r.reused
        );
    } else {
        let _ = writeln!(
            text,
            "computed {} images, reused {} from the cache, in {secs:.1} s ({:.1} images/s through the backbone)",
            r.computed,
            r.reused,
            r.computed as f64 / r.backbone_seconds.max(1e-9)
        );
    }
    if let Some((free, total)) = crate::device::memory_info(backbone.device()) {
        let _ = writeln!(
            text,
            "GPU memory: {} MiB of {} MiB in use",
            (total - free) >> 20,
            total >> 20
        );
    }
    for (split, path, rows) in &r.outputs {
        let _ = writeln!(
            text,
            "  {:<5} {rows:>6} x {} -> {}",
            split.name(),
            backbone.feature_dim(),
            path.display()
        );
    }
    if !r.failed.is_empty() {
        let _ = writeln!(text, "skipped {} unreadable image(s):", r.failed.len());
        for (key, why) in &r.failed {
            let _ = writeln!(text, "  {key}: {why}");
        }
    }
    if !ds.ignored.is_empty() {
        let _ = writeln!(
            text,
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
                let _ = writeln!(text, "  {}: {why}", p.display());
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
        "outputs": r.outputs.iter().map(|(s, p, n)| serde_json::json!({"split": s.name(), "path": p, "rows": n})).collect::<Vec<_>>(),
    });
    let path = dataset_features_dir(cache, ds, backbone).join("summary.json");
    let json =
        serde_json::to_string_pretty(&summary).map_err(|source| crate::error::Error::Json {
            what: "the extraction summary",
            source,
        })?;
    write_atomic(&path, json.as_bytes())?;
    crate::output::print(&text)?;
    Ok(())
}
