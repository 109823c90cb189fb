//! Stage 2 (features): where features live on disk.
//!
//! * [`FeatureCache`]: one vector per image *content* (SHA-256 of its bytes)
//!   for one backbone + weights + preprocessing, appended in small safetensors
//!   shards written atomically after each batch. An interrupted extraction
//!   keeps every finished batch; a re-run computes nothing already cached.
//! * [`FeatureSet`]: one split of a dataset as the later stages read it: a
//!   safetensors file with `features [N, D]` (f32), `labels [N]` (u32) and
//!   metadata (class names, item keys, backbone id, weights hash, split).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::assets::cache::write_atomic;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("features file {path} is malformed: {message}")]
    Malformed { path: PathBuf, message: String },
}

fn malformed(path: &Path, message: impl Into<String>) -> StoreError {
    StoreError::Malformed {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn save(
    path: &Path,
    tensors: Vec<(&str, TensorView<'_>)>,
    meta: HashMap<String, String>,
) -> Result<(), StoreError> {
    let write_err = |message: String| StoreError::Write {
        path: path.to_path_buf(),
        message,
    };
    let bytes = safetensors::tensor::serialize(tensors, Some(meta))
        .map_err(|e| write_err(e.to_string()))?;
    write_atomic(path, &bytes).map_err(|e| write_err(e.to_string()))
}

fn view<'a>(
    path: &Path,
    dtype: Dtype,
    shape: Vec<usize>,
    data: &'a [u8],
) -> Result<TensorView<'a>, StoreError> {
    TensorView::new(dtype, shape, data).map_err(|e| StoreError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Per-content feature cache of one (backbone, weights, preprocessing).
pub struct FeatureCache {
    dir: PathBuf,
    dim: usize,
    map: HashMap<String, Vec<f32>>,
    shards: usize,
}

impl FeatureCache {
    /// Opens (creating if needed) the cache in `dir`, loading every shard.
    /// A shard that cannot be read (e.g. foreign or damaged) is skipped and
    /// returned in the second value so the caller can report it.
    pub fn open(dir: &Path, dim: usize) -> Result<(Self, Vec<(PathBuf, String)>), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut cache = FeatureCache {
            dir: dir.to_path_buf(),
            dim,
            map: HashMap::new(),
            shards: 0,
        };
        let mut bad = Vec::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                n.starts_with("shard-") && n.ends_with(".safetensors")
            })
            .collect();
        paths.sort();
        for p in paths {
            cache.shards += 1;
            if let Err(e) = cache.load_shard(&p) {
                bad.push((p, e.to_string()));
            }
        }
        Ok((cache, bad))
    }

    fn load_shard(&mut self, path: &Path) -> Result<(), StoreError> {
        let bytes = read(path)?;
        let (_, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| malformed(path, e.to_string()))?;
        let hashes: Vec<String> = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("hashes"))
            .ok_or_else(|| malformed(path, "no `hashes` metadata"))
            .and_then(|s| serde_json::from_str(s).map_err(|e| malformed(path, e.to_string())))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| malformed(path, e.to_string()))?;
        let t = st
            .tensor("features")
            .map_err(|e| malformed(path, e.to_string()))?;
        if t.dtype() != Dtype::F32 || t.shape() != [hashes.len(), self.dim] {
            return Err(malformed(
                path,
                format!(
                    "features shape {:?}, expected [{}, {}]",
                    t.shape(),
                    hashes.len(),
                    self.dim
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

    /// Writes one shard atomically, then makes its entries visible.
    pub fn append(&mut self, entries: Vec<(String, Vec<f32>)>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let path = loop {
            let p = self
                .dir
                .join(format!("shard-{:08}.safetensors", self.shards));
            self.shards += 1;
            if !p.exists() {
                break p;
            }
        };
        let hashes: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        let mut flat = Vec::with_capacity(entries.len() * self.dim);
        for (h, v) in &entries {
            if v.len() != self.dim {
                return Err(StoreError::Write {
                    path,
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
        let meta = HashMap::from([(
            "hashes".to_string(),
            serde_json::to_string(&hashes).unwrap_or_default(),
        )]);
        let t = view(&path, Dtype::F32, vec![entries.len(), self.dim], &data)?;
        save(&path, vec![("features", t)], meta)?;
        for (h, v) in entries {
            self.map.insert(h, v);
        }
        Ok(())
    }
}

/// One split of a dataset's features, as stored for the training stages.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSet {
    pub dataset: String,
    pub split: String,
    pub backbone: String,
    pub weights_sha256: String,
    pub classes: Vec<String>,
    /// Item keys (file paths or `idx:...` ids), one per row.
    pub keys: Vec<String>,
    pub labels: Vec<u32>,
    pub dim: usize,
    /// Row-major `[keys.len(), dim]`.
    pub features: Vec<f32>,
}

impl FeatureSet {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Writes the set atomically as safetensors.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        let n = self.keys.len();
        if self.labels.len() != n || self.features.len() != n * self.dim {
            return Err(StoreError::Write {
                path: path.to_path_buf(),
                message: "features, labels and keys disagree in length".into(),
            });
        }
        let fb = f32_bytes(&self.features);
        let lb: Vec<u8> = self.labels.iter().flat_map(|x| x.to_le_bytes()).collect();
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_default();
        let meta = HashMap::from([
            ("format".to_string(), "ovr-features-1".to_string()),
            ("dataset".to_string(), self.dataset.clone()),
            ("split".to_string(), self.split.clone()),
            ("backbone".to_string(), self.backbone.clone()),
            ("weights_sha256".to_string(), self.weights_sha256.clone()),
            ("classes".to_string(), json(&self.classes)),
            ("keys".to_string(), json(&self.keys)),
        ]);
        let tensors = vec![
            ("features", view(path, Dtype::F32, vec![n, self.dim], &fb)?),
            ("labels", view(path, Dtype::U32, vec![n], &lb)?),
        ];
        save(path, tensors, meta)
    }

    /// Reads a set written by [`FeatureSet::save`].
    pub fn load(path: &Path) -> Result<FeatureSet, StoreError> {
        let bytes = read(path)?;
        let (_, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| malformed(path, e.to_string()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let text = |k: &str| {
            meta.get(k)
                .cloned()
                .ok_or_else(|| malformed(path, format!("no `{k}` metadata")))
        };
        let list = |k: &str| -> Result<Vec<String>, StoreError> {
            serde_json::from_str(&text(k)?).map_err(|e| malformed(path, format!("`{k}`: {e}")))
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| malformed(path, e.to_string()))?;
        let f = st
            .tensor("features")
            .map_err(|e| malformed(path, e.to_string()))?;
        let l = st
            .tensor("labels")
            .map_err(|e| malformed(path, e.to_string()))?;
        let keys = list("keys")?;
        let [n, dim] = f.shape() else {
            return Err(malformed(path, "features must be 2-d"));
        };
        if f.dtype() != Dtype::F32
            || l.dtype() != Dtype::U32
            || l.shape() != [*n]
            || keys.len() != *n
        {
            return Err(malformed(
                path,
                "features [N, D] f32, labels [N] u32 and N keys expected",
            ));
        }
        let labels: Vec<u32> = l
            .data()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let classes = list("classes")?;
        if let Some(bad) = labels.iter().find(|&&y| y as usize >= classes.len()) {
            return Err(malformed(
                path,
                format!("label {bad} but only {} classes", classes.len()),
            ));
        }
        Ok(FeatureSet {
            dataset: text("dataset")?,
            split: text("split")?,
            backbone: text("backbone")?,
            weights_sha256: text("weights_sha256")?,
            classes,
            keys,
            labels,
            dim: *dim,
            features: bytes_f32(f.data()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_shards_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, bad) = FeatureCache::open(dir.path(), 3).unwrap();
        assert!(bad.is_empty() && c.is_empty());
        c.append(vec![
            ("a".into(), vec![1.0, 2.0, 3.0]),
            ("b".into(), vec![4.0, 5.0, 6.0]),
        ])
        .unwrap();
        c.append(vec![("c".into(), vec![7.0, 8.0, 9.0])]).unwrap();
        let (c2, bad) = FeatureCache::open(dir.path(), 3).unwrap();
        assert!(bad.is_empty());
        assert_eq!(c2.len(), 3);
        assert_eq!(c2.get("b"), Some(&[4.0f32, 5.0, 6.0][..]));
        assert!(c2.get("z").is_none());
        assert!(
            c.append(vec![("d".into(), vec![1.0])]).is_err(),
            "wrong dim"
        );
    }

    #[test]
    fn damaged_shard_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, _) = FeatureCache::open(dir.path(), 2).unwrap();
        c.append(vec![("a".into(), vec![1.0, 2.0])]).unwrap();
        std::fs::write(dir.path().join("shard-99999999.safetensors"), b"garbage").unwrap();
        let (c2, bad) = FeatureCache::open(dir.path(), 2).unwrap();
        assert_eq!(c2.len(), 1);
        assert_eq!(bad.len(), 1);
    }

    #[test]
    fn feature_set_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train.safetensors");
        let set = FeatureSet {
            dataset: "d".into(),
            split: "train".into(),
            backbone: "efficientnet-lite0".into(),
            weights_sha256: "ab".into(),
            classes: vec!["x".into(), "y".into()],
            keys: vec!["k1".into(), "k2".into()],
            labels: vec![1, 0],
            dim: 2,
            features: vec![0.5, -1.0, 2.0, 3.25],
        };
        set.save(&p).unwrap();
        assert_eq!(FeatureSet::load(&p).unwrap(), set);
        let mut bad = set.clone();
        bad.labels.pop();
        assert!(bad.save(&p).is_err());
    }
}
