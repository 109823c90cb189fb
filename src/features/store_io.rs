//! Stage 2 (features): what the two on-disk forms of features share, the
//! per-content cache ([`super::store`]) and the split files
//! ([`super::feature_set`]): their error type, the little-endian f32 codec
//! (the shared [`crate::util::le`] one) and the atomic safetensors write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::st_file::{serialize, TensorBytes};
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
    #[error("cache shard {path} is damaged: its contents hash to {actual}, it records {recorded}")]
    Checksum {
        path: PathBuf,
        recorded: String,
        actual: String,
    },
}

pub(crate) fn malformed(path: &Path, message: impl Into<String>) -> StoreError {
    StoreError::Malformed {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    crate::util::le::f32_to_le(v)
}

pub(crate) fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Serializes (same inputs, same bytes) and writes atomically.
pub(crate) fn save(
    path: &Path,
    tensors: &[TensorBytes<'_>],
    meta: &BTreeMap<String, String>,
) -> Result<(), StoreError> {
    let write_err = |message: String| StoreError::Write {
        path: path.to_path_buf(),
        message,
    };
    let bytes = serialize(tensors, meta).map_err(write_err)?;
    write_atomic(path, &bytes).map_err(|e| write_err(e.to_string()))
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}
