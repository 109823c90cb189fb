//! Stage 2 (features): where features live on disk.
//!
//! * [`FeatureCache`]: one vector per image *content* (SHA-256 of its bytes)
//!   for one backbone + weights + preprocessing, appended in small safetensors
//!   shards written atomically after each batch. An interrupted extraction
//!   keeps every finished batch; a re-run computes nothing already cached.
//!   Each shard records the SHA-256 of its image hashes and feature bytes and
//!   is named by the SHA-256 of the whole file, so concurrent writers never
//!   replace each other's shards (same name, same bytes). A shard that fails
//!   to parse or verify is moved to `quarantine/` once and its images are
//!   recomputed.
//! * [`FeatureSet`] (in [`super::feature_set`], re-exported here): one split
//!   of a dataset as the later stages read it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

pub use super::feature_set::FeatureSet;
use super::st_file::{serialize, TensorBytes};
pub use super::store_io::StoreError;
use super::store_io::{bytes_f32, f32_bytes, malformed, read};
use crate::assets::cache::write_atomic;

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a shard's `sha256` metadata records: its `hashes` text and its
/// feature bytes.
fn shard_checksum(hashes_json: &str, data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(hashes_json.as_bytes());
    h.update([0u8]);
    h.update(data);
    hex(&h.finalize())
}

fn is_shard_name(p: &Path) -> bool {
    let n = p
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    n.starts_with("shard-") && n.ends_with(".safetensors")
}

/// Where a damaged shard is moved: `<dir>/quarantine/<name>` (a numbered
/// suffix if that name is taken).
pub const QUARANTINE_DIR: &str = "quarantine";

/// A shard that could not be used, why, and where it was moved.
#[derive(Debug, Clone)]
pub struct BadShard {
    pub path: PathBuf,
    pub reason: String,
    /// `Ok(new path)` once moved aside; `Err(why not)` if it stays (e.g. an
    /// I/O error reading it, or a read-only cache): then it is reported again.
    pub moved_to: Result<PathBuf, String>,
}

fn quarantine(path: &Path) -> Result<PathBuf, String> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err("no parent directory".into());
    };
    let qdir = dir.join(QUARANTINE_DIR);
    std::fs::create_dir_all(&qdir).map_err(|e| format!("{}: {e}", qdir.display()))?;
    let name = name.to_string_lossy();
    for i in 0..1000 {
        let dest = if i == 0 {
            qdir.join(name.as_ref())
        } else {
            qdir.join(format!("{name}.{i}"))
        };
        if dest.exists() {
            continue;
        }
        return std::fs::rename(path, &dest)
            .map(|()| dest)
            .map_err(|e| e.to_string());
    }
    Err(format!("{} is full", qdir.display()))
}

/// Per-content feature cache of one (backbone, weights, preprocessing).
pub struct FeatureCache {
    dir: PathBuf,
    dim: usize,
    map: HashMap<String, Vec<f32>>,
}

impl FeatureCache {
    /// Opens (creating if needed) the cache in `dir`, loading every shard.
    /// A shard that cannot be used (malformed, checksum mismatch, foreign)
    /// is moved to `quarantine/` and returned in the second value so the
    /// caller can report it once; its images are simply not cached.
    pub fn open(dir: &Path, dim: usize) -> Result<(Self, Vec<BadShard>), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut cache = FeatureCache {
            dir: dir.to_path_buf(),
            dim,
            map: HashMap::new(),
        };
        let mut bad = Vec::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_shard_name(p) && p.is_file())
            .collect();
        paths.sort();
        for p in paths {
            match cache.load_shard(&p) {
                Ok(()) => {}
                // Gone meanwhile (another process quarantined it): nothing to report.
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e @ StoreError::Io { .. }) => bad.push(BadShard {
                    path: p,
                    reason: e.to_string(),
                    moved_to: Err("left in place: an I/O error, not damage".into()),
                }),
                Err(e) => {
                    let moved_to = quarantine(&p);
                    bad.push(BadShard {
                        path: p,
                        reason: e.to_string(),
                        moved_to,
                    });
                }
            }
        }
        Ok((cache, bad))
    }

    fn load_shard(&mut self, path: &Path) -> Result<(), StoreError> {
        let bytes = read(path)?;
        let (_, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| malformed(path, e.to_string()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let hashes_json = meta
            .get("hashes")
            .ok_or_else(|| malformed(path, "no `hashes` metadata"))?;
        let recorded = meta
            .get("sha256")
            .ok_or_else(|| malformed(path, "no `sha256` metadata (written before checksums)"))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| malformed(path, e.to_string()))?;
        let t = st
            .tensor("features")
            .map_err(|e| malformed(path, e.to_string()))?;
        let actual = shard_checksum(hashes_json, t.data());
        if &actual != recorded {
            return Err(StoreError::Checksum {
                path: path.to_path_buf(),
                recorded: recorded.clone(),
                actual,
            });
        }
        let hashes: Vec<String> =
            serde_json::from_str(hashes_json).map_err(|e| malformed(path, e.to_string()))?;
        if st.len() != 1 || t.dtype() != Dtype::F32 || t.shape() != [hashes.len(), self.dim] {
            return Err(malformed(
                path,
                format!(
                    "expected only `features` [{}, {}] f32, found {} tensor(s), shape {:?}",
                    hashes.len(),
                    self.dim,
                    st.len(),
                    t.shape()
                ),
            ));
        }
        let v = bytes_f32(t.data());
        for (i, h) in hashes.into_iter().enumerate() {
            self.map
                .insert(h, v[i * self.dim..(i + 1) * self.dim].to_vec());
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, hash: &str) -> Option<&[f32]> {
        self.map.get(hash).map(Vec::as_slice)
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.map.contains_key(hash)
    }

    /// Every cached content hash.
    pub fn hashes(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }

    /// Writes one shard atomically under a name derived from its bytes
    /// (`shard-<sha256 prefix>.safetensors`), then makes its entries visible.
    /// Returns the shard's path.
    pub fn append(
        &mut self,
        entries: Vec<(String, Vec<f32>)>,
    ) -> Result<Option<PathBuf>, StoreError> {
        if entries.is_empty() {
            return Ok(None);
        }
        let hashes: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        let mut flat = Vec::with_capacity(entries.len() * self.dim);
        for (h, v) in &entries {
            if v.len() != self.dim {
                return Err(StoreError::Write {
                    path: self.dir.clone(),
                    message: format!(
                        "feature of {h} has length {}, expected {}",
                        v.len(),
                        self.dim
                    ),
                });
            }
            flat.extend_from_slice(v);
        }
        let data = f32_bytes(&flat);
        let hashes_json = serde_json::to_string(&hashes).map_err(|e| StoreError::Write {
            path: self.dir.clone(),
            message: e.to_string(),
        })?;
        let meta = BTreeMap::from([
            ("sha256".to_string(), shard_checksum(&hashes_json, &data)),
            ("hashes".to_string(), hashes_json),
        ]);
        let tensors = [TensorBytes {
            name: "features",
            dtype: Dtype::F32,
            shape: vec![entries.len(), self.dim],
            data: &data,
        }];
        let bytes = serialize(&tensors, &meta).map_err(|message| StoreError::Write {
            path: self.dir.clone(),
            message,
        })?;
        let name = hex(&Sha256::digest(&bytes));
        let path = self.dir.join(format!("shard-{}.safetensors", &name[..32]));
        write_atomic(&path, &bytes).map_err(|e| StoreError::Write {
            path: path.clone(),
            message: e.to_string(),
        })?;
        for (h, v) in entries {
            self.map.insert(h, v);
        }
        Ok(Some(path))
    }
}

#[cfg(test)]
mod tests;
