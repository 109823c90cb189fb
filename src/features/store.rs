//! Stage 2 (features): where features live on disk.
//!
//! * [`FeatureCache`]: one vector per image *content* (SHA-256 of its bytes)
//!   for one backbone + weights + preprocessing, appended in small safetensors
//!   shards written atomically after each batch. An interrupted extraction
//!   keeps every finished batch; a re-run computes nothing already cached.
//!   The cache holds an index (content hash -> shard file and byte offset),
//!   not the vectors: every shard is read and verified once when the cache
//!   is opened, and a vector is read back from its shard when asked for
//!   ([`FeatureCache::read_into`]), so the memory of an extraction does not
//!   grow with the features cached (about 100 B an image for the index).
//!   Each shard records the SHA-256 of its image hashes and feature bytes and
//!   is named by the SHA-256 of the whole file, so concurrent writers never
//!   replace each other's shards (same name, same bytes). A shard that fails
//!   to parse or verify is moved to `quarantine/` once and its images are
//!   recomputed.
//! * [`FeatureSet`] (in [`super::feature_set`], re-exported here): one split
//!   of a dataset as the later stages read it.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use safetensors::tensor::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

pub use super::feature_set::FeatureSet;
use super::st_file::{serialize, TensorBytes};
pub use super::store_io::StoreError;
use super::store_io::{
    bad_header, bad_metadata, bytes_f32, f32_bytes, malformed, read, unreadable, write_failed,
};
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

/// Where one cached vector lives: its shard (an index into
/// `FeatureCache::shards`) and the byte offset of its row in that file.
#[derive(Debug, Clone, Copy)]
struct Loc {
    shard: u32,
    offset: u64,
}

/// Per-content feature cache of one (backbone, weights, preprocessing).
pub struct FeatureCache {
    dir: PathBuf,
    dim: usize,
    index: HashMap<String, Loc>,
    /// Every verified shard, in the order indexed.
    shards: Vec<PathBuf>,
    /// The shard file last read from (reads go mostly in shard order).
    open_shard: Mutex<Option<(u32, File)>>,
}

/// Byte offset of the `features` tensor's data in a shard's bytes.
fn features_offset(path: &Path, bytes: &[u8]) -> Result<u64, StoreError> {
    let (n, meta) = SafeTensors::read_metadata(bytes).map_err(unreadable(path))?;
    let info = meta
        .info("features")
        .ok_or_else(|| malformed(path, "no `features` tensor"))?;
    Ok((8 + n + info.data_offsets.0) as u64)
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
            index: HashMap::new(),
            shards: Vec::new(),
            open_shard: Mutex::new(None),
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
                    reason: crate::util::chain::chain(&e),
                    moved_to: Err("left in place: an I/O error, not damage".into()),
                }),
                Err(e) => {
                    let moved_to = quarantine(&p);
                    bad.push(BadShard {
                        path: p,
                        reason: crate::util::chain::chain(&e),
                        moved_to,
                    });
                }
            }
        }
        Ok((cache, bad))
    }

    fn load_shard(&mut self, path: &Path) -> Result<(), StoreError> {
        let bytes = read(path)?;
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(unreadable(path))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let hashes_json = meta
            .get("hashes")
            .ok_or_else(|| malformed(path, "no `hashes` metadata"))?;
        let recorded = meta
            .get("sha256")
            .ok_or_else(|| malformed(path, "no `sha256` metadata (written before checksums)"))?;
        let st = SafeTensors::deserialize(&bytes).map_err(unreadable(path))?;
        let t = st.tensor("features").map_err(unreadable(path))?;
        let actual = shard_checksum(hashes_json, t.data());
        if &actual != recorded {
            return Err(StoreError::Checksum {
                path: path.to_path_buf(),
                recorded: recorded.clone(),
                actual,
            });
        }
        let hashes: Vec<String> =
            serde_json::from_str(hashes_json).map_err(bad_metadata(path, "hashes"))?;
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
        let offset = features_offset(path, &bytes)?;
        self.index_shard(path, hashes, offset);
        Ok(())
    }

    /// Makes a verified shard's rows visible: `hashes[i]`'s row starts at
    /// `offset + i * dim * 4`.
    fn index_shard(&mut self, path: &Path, hashes: Vec<String>, offset: u64) {
        let shard = self.shards.len() as u32;
        self.shards.push(path.to_path_buf());
        let row = (self.dim * 4) as u64;
        for (i, h) in hashes.into_iter().enumerate() {
            let offset = offset + i as u64 * row;
            self.index.insert(h, Loc { shard, offset });
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The cached vector of `hash`, read from its shard (`None`: not cached).
    pub fn get(&self, hash: &str) -> Result<Option<Vec<f32>>, StoreError> {
        let mut v = vec![0f32; self.dim];
        Ok(self.read_into(hash, &mut v)?.then_some(v))
    }

    /// Reads the cached vector of `hash` into `out` (`dim` values); false
    /// if it is not cached. Shards are never changed in place (they are
    /// named by their bytes and replaced only by an atomic rename), so a
    /// row verified at open reads back the same.
    pub fn read_into(&self, hash: &str, out: &mut [f32]) -> Result<bool, StoreError> {
        let Some(&loc) = self.index.get(hash) else {
            return Ok(false);
        };
        let path = &self.shards[loc.shard as usize];
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        if out.len() != self.dim {
            return Err(malformed(
                path,
                format!("asked for {} values of a {}-wide row", out.len(), self.dim),
            ));
        }
        let mut open = self.open_shard.lock().unwrap_or_else(|p| p.into_inner());
        if open.as_ref().is_none_or(|(i, _)| *i != loc.shard) {
            *open = Some((loc.shard, File::open(path).map_err(io)?));
        }
        let Some((_, file)) = open.as_mut() else {
            return Ok(false);
        };
        let mut bytes = vec![0u8; self.dim * 4];
        file.seek(SeekFrom::Start(loc.offset)).map_err(io)?;
        file.read_exact(&mut bytes).map_err(io)?;
        out.copy_from_slice(&bytes_f32(&bytes));
        Ok(true)
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.index.contains_key(hash)
    }

    /// Every cached content hash.
    pub fn hashes(&self) -> impl Iterator<Item = &String> {
        self.index.keys()
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
        let hashes_json = serde_json::to_string(&hashes).map_err(|source| StoreError::Encode {
            path: self.dir.clone(),
            what: "content hashes",
            source,
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
        let bytes = serialize(&tensors, &meta).map_err(bad_header(&self.dir))?;
        let name = hex(&Sha256::digest(&bytes));
        let path = self.dir.join(format!("shard-{}.safetensors", &name[..32]));
        write_atomic(&path, &bytes).map_err(write_failed(&path))?;
        let offset = features_offset(&path, &bytes)?;
        let hashes = entries.into_iter().map(|(h, _)| h).collect();
        self.index_shard(&path, hashes, offset);
        Ok(Some(path))
    }
}

#[cfg(test)]
mod tests;
