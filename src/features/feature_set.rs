//! Stage 2 (features): [`FeatureSet`], one split of a dataset's features
//! as the later stages read it: a safetensors file with `features [N, D]`
//! (f32, or f16 with `extract.dtype = "f16"`), `labels [N]` (u32) and
//! metadata (class names, item keys, backbone id, weights hash, split),
//! byte-reproducible (metadata in key order, see [`super::st_file`]). The
//! per-content cache it is assembled from lives in [`super::store`]; the
//! memory-mapped reading of the same files in [`super::mapped`].

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::st_file::TensorBytes;
use super::store_io::{bad_metadata, f32_bytes, malformed, read, save, unreadable, StoreError};

/// How a split file stores its features: f32 (the default, exact) or f16
/// (half the bytes; rounded to nearest, about 3 significant digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeatureDtype {
    #[default]
    F32,
    F16,
}

impl crate::util::choice::Choice for FeatureDtype {
    const TABLE: &'static [(&'static str, Self)] =
        &[("f32", FeatureDtype::F32), ("f16", FeatureDtype::F16)];
    const UNKNOWN: &'static str = "unknown feature dtype";
}
crate::util::choice::choice_serde!(FeatureDtype);

impl FeatureDtype {
    /// Bytes per stored value.
    pub fn size(self) -> usize {
        match self {
            FeatureDtype::F32 => 4,
            FeatureDtype::F16 => 2,
        }
    }

    pub(super) fn st_dtype(self) -> Dtype {
        match self {
            FeatureDtype::F32 => Dtype::F32,
            FeatureDtype::F16 => Dtype::F16,
        }
    }

    /// Little-endian bytes of `v` in this dtype.
    pub fn encode(self, v: &[f32]) -> Vec<u8> {
        match self {
            FeatureDtype::F32 => f32_bytes(v),
            FeatureDtype::F16 => v
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect(),
        }
    }

    /// Decodes little-endian `bytes` of this dtype into `out` (as many values).
    pub fn decode_into(self, bytes: &[u8], out: &mut [f32]) {
        match self {
            FeatureDtype::F32 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            FeatureDtype::F16 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
        }
    }
}

impl std::fmt::Display for FeatureDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::util::choice::Choice::name(*self))
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

    /// Writes the set atomically as safetensors with f32 features; the same
    /// set gives the same bytes.
    pub fn save(&self, path: &Path) -> Result<(), StoreError> {
        self.save_as(path, FeatureDtype::F32)
    }

    /// [`FeatureSet::save`] with the features stored as `dtype`.
    pub fn save_as(&self, path: &Path, dtype: FeatureDtype) -> Result<(), StoreError> {
        let n = self.keys.len();
        if self.labels.len() != n || self.features.len() != n * self.dim {
            return Err(StoreError::Write {
                path: path.to_path_buf(),
                message: "features, labels and keys disagree in length".into(),
            });
        }
        let fb = dtype.encode(&self.features);
        let lb = label_bytes(&self.labels);
        let meta = self.header().metadata(path, &self.keys)?;
        let tensors = [
            TensorBytes {
                name: "features",
                dtype: dtype.st_dtype(),
                shape: vec![n, self.dim],
                data: &fb,
            },
            TensorBytes {
                name: "labels",
                dtype: Dtype::U32,
                shape: vec![n],
                data: &lb,
            },
        ];
        save(path, &tensors, &meta)
    }

    /// The metadata of the set (all but keys, labels and features).
    pub fn header(&self) -> SplitHeader {
        SplitHeader {
            dataset: self.dataset.clone(),
            split: self.split.clone(),
            backbone: self.backbone.clone(),
            weights_sha256: self.weights_sha256.clone(),
            classes: self.classes.clone(),
        }
    }

    /// Reads a set written by [`FeatureSet::save`] / [`FeatureSet::save_as`]
    /// (f16 features are widened to f32).
    pub fn load(path: &Path) -> Result<FeatureSet, StoreError> {
        let bytes = read(path)?;
        let parsed = parse(path, &bytes, true)?;
        let mut features = vec![0f32; parsed.n * parsed.dim];
        parsed
            .dtype
            .decode_into(parsed.features.data(), &mut features);
        let h = parsed.header;
        Ok(FeatureSet {
            dataset: h.dataset,
            split: h.split,
            backbone: h.backbone,
            weights_sha256: h.weights_sha256,
            classes: h.classes,
            keys: parsed.keys,
            labels: parsed.labels,
            dim: parsed.dim,
            features,
        })
    }
}

/// What a split file says about itself besides its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitHeader {
    pub dataset: String,
    pub split: String,
    pub backbone: String,
    pub weights_sha256: String,
    pub classes: Vec<String>,
}

impl SplitHeader {
    /// The file's `__metadata__` with these item keys (for the file at `path`).
    pub(super) fn metadata(
        &self,
        path: &Path,
        keys: &[String],
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let json = |what: &'static str, v: &[String]| {
            serde_json::to_string(v).map_err(|source| StoreError::Encode {
                path: path.to_path_buf(),
                what,
                source,
            })
        };
        Ok(BTreeMap::from([
            ("format".to_string(), "ovr-features-1".to_string()),
            ("dataset".to_string(), self.dataset.clone()),
            ("split".to_string(), self.split.clone()),
            ("backbone".to_string(), self.backbone.clone()),
            ("weights_sha256".to_string(), self.weights_sha256.clone()),
            ("classes".to_string(), json("class names", &self.classes)?),
            ("keys".to_string(), json("item keys", keys)?),
        ]))
    }
}

pub(super) fn label_bytes(labels: &[u32]) -> Vec<u8> {
    labels.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A split file's parts, checked: the features view still borrows the bytes.
pub(super) struct Parsed<'a> {
    pub header: SplitHeader,
    /// Empty unless asked for (a mapped reader only counts them).
    pub keys: Vec<String>,
    pub labels: Vec<u32>,
    pub n: usize,
    pub dim: usize,
    pub dtype: FeatureDtype,
    pub features: TensorView<'a>,
}

/// Parses and checks the bytes of a split file; `keep_keys`: return the item
/// keys (otherwise only their number is checked, without holding them).
pub(super) fn parse<'a>(
    path: &Path,
    bytes: &'a [u8],
    keep_keys: bool,
) -> Result<Parsed<'a>, StoreError> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(unreadable(path))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let text = |k: &str| {
        meta.get(k)
            .cloned()
            .ok_or_else(|| malformed(path, format!("no `{k}` metadata")))
    };
    let keys_json = meta
        .get("keys")
        .ok_or_else(|| malformed(path, "no `keys` metadata"))?;
    let (keys, key_count) = if keep_keys {
        let keys: Vec<String> =
            serde_json::from_str(keys_json).map_err(bad_metadata(path, "keys"))?;
        let count = keys.len();
        (keys, count)
    } else {
        let count = serde_json::from_str::<Vec<serde::de::IgnoredAny>>(keys_json)
            .map_err(bad_metadata(path, "keys"))?
            .len();
        (Vec::new(), count)
    };
    let st = SafeTensors::deserialize(bytes).map_err(unreadable(path))?;
    let f = st.tensor("features").map_err(unreadable(path))?;
    let l = st.tensor("labels").map_err(unreadable(path))?;
    let [n, dim] = *f.shape() else {
        return Err(malformed(path, "features must be 2-d"));
    };
    let dtype = match f.dtype() {
        Dtype::F32 => Some(FeatureDtype::F32),
        Dtype::F16 => Some(FeatureDtype::F16),
        _ => None,
    };
    let Some(dtype) =
        dtype.filter(|_| l.dtype() == Dtype::U32 && l.shape() == [n] && key_count == n)
    else {
        return Err(malformed(
            path,
            "features [N, D] f32 or f16, labels [N] u32 and N keys expected",
        ));
    };
    let labels: Vec<u32> = l
        .data()
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let classes: Vec<String> =
        serde_json::from_str(&text("classes")?).map_err(bad_metadata(path, "classes"))?;
    if let Some(bad) = labels.iter().find(|&&y| y as usize >= classes.len()) {
        return Err(malformed(
            path,
            format!("label {bad} but only {} classes", classes.len()),
        ));
    }
    Ok(Parsed {
        header: SplitHeader {
            dataset: text("dataset")?,
            split: text("split")?,
            backbone: text("backbone")?,
            weights_sha256: text("weights_sha256")?,
            classes,
        },
        keys,
        labels,
        n,
        dim,
        dtype,
        features: f,
    })
}
