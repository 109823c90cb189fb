//! Stage 2 (features): [`FeatureSet`], one split of a dataset's features
//! as the later stages read it: a safetensors file with `features [N, D]`
//! (f32), `labels [N]` (u32) and metadata (class names, item keys, backbone
//! id, weights hash, split), byte-reproducible (metadata in key order, see
//! [`super::st_file`]). The per-content cache it is assembled from lives in
//! [`super::store`].

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors};

use super::st_file::TensorBytes;
use super::store::{bytes_f32, f32_bytes, malformed, read, save, StoreError};

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

    /// Writes the set atomically as safetensors; the same set gives the
    /// same bytes.
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
        let meta = BTreeMap::from([
            ("format".to_string(), "ovr-features-1".to_string()),
            ("dataset".to_string(), self.dataset.clone()),
            ("split".to_string(), self.split.clone()),
            ("backbone".to_string(), self.backbone.clone()),
            ("weights_sha256".to_string(), self.weights_sha256.clone()),
            ("classes".to_string(), json(&self.classes)),
            ("keys".to_string(), json(&self.keys)),
        ]);
        let tensors = [
            TensorBytes {
                name: "features",
                dtype: Dtype::F32,
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
