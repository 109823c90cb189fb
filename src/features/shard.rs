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
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::backbone::Backbone;
use super::extract::{ExtractError, PipelineRun};
use super::store::StoreError;
use crate::assets::cache::write_atomic;
use crate::images::dataset::Dataset;

/// Shard K of N (0-based, as Slurm array and Kubernetes Indexed Job indices are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

impl FromStr for ShardSpec {
    type Err = String;

    /// `K/N` with 0 <= K < N, e.g. `0/4` .. `3/4`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("`{s}` is not a shard K/N: {why} (e.g. 0/4 .. 3/4)");
        let (k, n) = s.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let num = |t: &str, what: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| bad(&format!("{what} `{t}` is not a whole number >= 0")))
        };
        let (index, count) = (num(k, "K")?, num(n, "N")?);
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index >= count {
            return Err(bad(&format!(
                "K counts from 0, so it must be below N = {count}"
            )));
        }
        Ok(ShardSpec { index, count })
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard (0..count) of an image with this content hash (hex SHA-256):
/// its first 16 hex digits as a big-endian u64, modulo `count`. A hash that
/// is not hex (never made by `ovr`) falls back to a SHA-256 of the text.
pub fn shard_of(content_hash: &str, count: usize) -> usize {
    let head = content_hash.get(..16).unwrap_or(content_hash);
    let v = u64::from_str_radix(head, 16).unwrap_or_else(|_| {
        let d = crate::assets::cache::sha256_hex(content_hash.as_bytes());
        u64::from_str_radix(&d[..16], 16).unwrap_or(0)
    });
    (v % count.max(1) as u64) as usize
}

/// What one extraction run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every image: compute what is not cached, then write the split files.
    All,
    /// Only this shard's images; writes its done-marker, no split files.
    Shard(ShardSpec),
    /// Compute nothing: write the split files if every image is cached,
    /// else fail naming the shards that lack images.
    Merge,
}

/// An image a shard could not embed (unreadable or undecodable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedItem {
    pub key: String,
    /// Its content hash, when the file could be read.
    pub hash: Option<String>,
    pub reason: String,
}

/// Written once a shard has covered all its images (`K-of-N.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneMarker {
    pub format: String,
    pub shard: usize,
    pub of: usize,
    pub dataset: String,
    pub backbone: String,
    /// Content hashes of the shard's images now in the cache (sorted).
    pub hashes: Vec<String>,
    /// The shard's images that could not be embedded (sorted by key).
    pub failed: Vec<FailedItem>,
}

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
    let write_err = |message: String| StoreError::Write {
        path: path.to_path_buf(),
        message,
    };
    let text = serde_json::to_string_pretty(marker).map_err(|e| write_err(e.to_string()))?;
    write_atomic(path, text.as_bytes()).map_err(|e| write_err(e.to_string()))
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
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<DoneMarker>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(m) if m.format == MARKER_FORMAT && m.shard < m.of => ok.push(m),
            Ok(_) => bad.push((p, format!("not a {MARKER_FORMAT} marker"))),
            Err(e) => bad.push((p, e)),
        }
    }
    ok.sort_by_key(|m| (m.of, m.shard));
    (ok, bad)
}

/// Shards that lack images, for one shard count N.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingShard {
    pub spec: ShardSpec,
    /// Images of this shard not in the cache.
    pub images: usize,
    /// Whether this shard wrote its done-marker (then its images were
    /// cached once and are gone since, e.g. a quarantined cache shard).
    pub finished: bool,
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

#[cfg(test)]
mod tests;
