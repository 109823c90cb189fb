//! Stage 2 (features): sharded extraction, the bookkeeping around
//! [`super::extract`]. `ovr extract --shard K/N` embeds only the images whose
//! content hash falls in shard K of N ([`shard_of`]: the first 64 bits of the
//! SHA-256 of the image bytes, modulo N, so adding images never moves an
//! existing one to another shard and duplicates land in one shard). Each
//! worker appends to the shared per-content cache (shards named by their
//! bytes, so writers never replace each other's) and, once it has covered
//! all its images, writes a done-marker `<cache dir>/done/<dataset>/K-of-N.json`
//! atomically (temp file + rename: no locks, safe on NFS where every writer
//! sees one filesystem). `ovr extract --merge` then computes nothing: it
//! hashes every image, and if some are not cached it names the shard
//! indices they belong to (and whether that shard ever finished).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::backbone::Backbone;
use super::extract::{
    content_cache_dir, embed_all, open_cache, report, ExtractError, ExtractOptions, ExtractReport,
    Finished, PipelineRun,
};
pub use super::shard_spec::{shard_of, DoneMarker, FailedItem, MissingShard, Scope, ShardSpec};
use super::store::StoreError;
use super::store_io::write_failed;
use crate::assets::cache::write_atomic;
use crate::assets::cache::Cache;
use crate::images::dataset::Dataset;

pub const MARKER_FORMAT: &str = "ovr-shard-done-1";

/// Where the done-markers of `dataset` live inside one per-content cache
/// directory (one backbone + weights + preprocessing).
pub fn marker_dir(content_dir: &Path, dataset: &Dataset) -> PathBuf {
    content_dir.join("done").join(dataset.export_key())
}

pub fn marker_path(dir: &Path, spec: ShardSpec) -> PathBuf {
    dir.join(format!("{}-of-{}.json", spec.index, spec.count))
}

/// Writes the marker atomically (same marker, same bytes).
pub fn write_marker(path: &Path, marker: &DoneMarker) -> Result<(), StoreError> {
    let text = serde_json::to_string_pretty(marker).map_err(|source| StoreError::Encode {
        path: path.to_path_buf(),
        what: "done-marker",
        source,
    })?;
    write_atomic(path, text.as_bytes()).map_err(write_failed(path))
}

/// Every readable done-marker in `dir` (none if it does not exist), sorted
/// by (N, K); the ones that cannot be read are returned with the reason.
pub fn read_markers(dir: &Path) -> (Vec<DoneMarker>, Vec<(PathBuf, String)>) {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (ok, bad);
    };
    for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if !name.is_some_and(|n| n.ends_with(".json") && !n.starts_with('.')) {
            continue;
        }
        let parsed = std::fs::read_to_string(&p)
            .map_err(|e| crate::util::chain::chain(&e))
            .and_then(|t| {
                serde_json::from_str::<DoneMarker>(&t).map_err(|e| crate::util::chain::chain(&e))
            });
        match parsed {
            Ok(m) if m.format == MARKER_FORMAT && m.shard < m.of => ok.push(m),
            Ok(_) => bad.push((p, format!("not a {MARKER_FORMAT} marker"))),
            Err(e) => bad.push((p, e)),
        }
    }
    ok.sort_by_key(|m| (m.of, m.shard));
    (ok, bad)
}

/// For every shard count some marker was written for, the shards that the
/// `missing` content hashes belong to (sorted by N, then K).
pub fn missing_shards(missing: &[String], markers: &[DoneMarker]) -> Vec<MissingShard> {
    let mut counts: Vec<usize> = markers.iter().map(|m| m.of).collect();
    counts.sort_unstable();
    counts.dedup();
    let mut out = Vec::new();
    for n in counts {
        let mut per: BTreeMap<usize, usize> = BTreeMap::new();
        for h in missing {
            *per.entry(shard_of(h, n)).or_default() += 1;
        }
        for (k, images) in per {
            let finished = markers.iter().any(|m| m.of == n && m.shard == k);
            out.push(MissingShard {
                spec: ShardSpec { index: k, count: n },
                images,
                finished,
            });
        }
    }
    out
}

/// The error text of a merge that lacks `missing` images.
pub fn describe_missing(missing: usize, shards: &[MissingShard], dir: &Path) -> String {
    if shards.is_empty() {
        return format!(
            "{missing} image(s) are not in the cache and no shard has finished for this dataset \
             and backbone (no done-marker in {}): run `ovr extract --shard K/N` for every K in \
             0..N first, or a plain `ovr extract` to compute them here",
            dir.display()
        );
    }
    let list: Vec<String> = shards
        .iter()
        .map(|s| {
            let state = if s.finished {
                "finished, but they are gone from the cache since"
            } else {
                "no done-marker: never finished"
            };
            format!("shard {} ({} image(s), {state})", s.spec, s.images)
        })
        .collect();
    let rerun: Vec<String> = shards
        .iter()
        .map(|s| format!("`ovr extract --shard {}`", s.spec))
        .collect();
    format!(
        "{missing} image(s) are not in the cache: missing from {}; rerun {} and merge again",
        list.join(", "),
        rerun.join(", ")
    )
}

/// After a shard's run: its done-marker, with the hashes of its images now
/// cached and the ones that failed. Returns the marker's path.
pub fn finish_shard(
    dataset: &Dataset,
    backbone: &dyn Backbone,
    run: &PipelineRun,
    spec: ShardSpec,
    dir: &Path,
) -> Result<PathBuf, StoreError> {
    let mut hashes: Vec<String> = run.hashes.iter().flatten().cloned().collect();
    hashes.sort();
    hashes.dedup();
    let mut failed: Vec<FailedItem> = run
        .failed
        .iter()
        .map(|(i, hash, reason)| FailedItem {
            key: dataset.items[*i].key.clone(),
            hash: hash.clone(),
            reason: reason.clone(),
        })
        .collect();
    failed.sort_by(|a, b| a.key.cmp(&b.key));
    let marker = DoneMarker {
        format: MARKER_FORMAT.into(),
        shard: spec.index,
        of: spec.count,
        dataset: dataset.name.clone(),
        backbone: backbone.id().to_string(),
        hashes,
        failed,
    };
    let path = marker_path(dir, spec);
    write_marker(&path, &marker)?;
    Ok(path)
}

/// Before a merge writes the split files: every image must be cached, or
/// have failed in the shard that owns it (then it is skipped with the
/// reason that shard recorded). Otherwise the error names the shards.
pub fn check_merge(
    dataset: &Dataset,
    backbone: &dyn Backbone,
    run: &mut PipelineRun,
    dir: &Path,
) -> Result<(), ExtractError> {
    let (markers, unreadable) = read_markers(dir);
    for (p, why) in &unreadable {
        eprintln!(
            "warning: ignoring done-marker {}: {why} (rerun its shard)",
            p.display()
        );
    }
    let known: BTreeMap<&str, (&DoneMarker, &str)> = markers
        .iter()
        .flat_map(|m| {
            m.failed
                .iter()
                .filter_map(move |f| Some((f.hash.as_deref()?, (m, f.reason.as_str()))))
        })
        .collect();
    let mut missing = Vec::new();
    for (idx, hash) in std::mem::take(&mut run.missing) {
        match known.get(hash.as_str()) {
            Some((m, reason)) => run.failed.push((
                idx,
                Some(hash.clone()),
                format!("{reason} (shard {}/{})", m.shard, m.of),
            )),
            None => missing.push(hash),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    missing.dedup();
    let shards = missing_shards(&missing, &markers);
    Err(ExtractError::MissingShards {
        dataset: dataset.name.clone(),
        backbone: backbone.id().to_string(),
        detail: describe_missing(missing.len(), &shards, dir),
        shards,
    })
}

/// [`super::extract::extract`] over a [`Scope`]: every image, one shard of
/// them (no split files; a done-marker once the shard is covered), or a
/// merge that computes nothing and fails naming the shards that lack images.
pub fn extract_scoped(
    dataset: &Dataset,
    backbone: &dyn Backbone,
    cache: &Cache,
    opts: &ExtractOptions,
    scope: Scope,
) -> Result<ExtractReport, ExtractError> {
    if scope == Scope::All {
        return super::extract::extract(dataset, backbone, cache, opts);
    }
    let start = std::time::Instant::now();
    let content_dir = content_cache_dir(cache, backbone, &opts.decode);
    let mut fcache = open_cache(&content_dir, backbone.feature_dim())?;
    let mut run = embed_all(dataset, backbone, &mut fcache, opts, scope)?;
    let dir = marker_dir(&content_dir, dataset);
    let marker = match scope {
        Scope::Shard(spec) => Some(finish_shard(dataset, backbone, &run, spec, &dir)?),
        _ => {
            check_merge(dataset, backbone, &mut run, &dir)?;
            None
        }
    };
    let done = Finished {
        fcache: &fcache,
        run,
        marker,
        write_splits: !matches!(scope, Scope::Shard(_)),
        start,
    };
    report(dataset, backbone, cache, opts, done)
}

#[cfg(test)]
mod tests;
