//! Stage 2 (features): what a shard is, independent of how extraction runs
//! ([`super::extract`]) and of the markers' bookkeeping ([`super::shard`],
//! which re-exports these): the `K/N` spec, the content-hash assignment
//! [`shard_of`], the [`Scope`] of one extraction run, the done-marker's
//! serialized form, and a shard that lacks images.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
