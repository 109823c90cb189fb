//! Stage 2 (features): what the two on-disk forms of features share, the
//! per-content cache ([`super::store`]) and the split files
//! ([`super::feature_set`]): their error type, the little-endian f32 codec
//! (the shared [`crate::util::le`] one) and the atomic safetensors write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::st_file::{serialize, HeaderError, TensorBytes};
use crate::assets::cache::{write_atomic, AssetError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What is to be written does not fit (no underlying error).
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("cannot write {path}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: Box<AssetError>,
    },
    #[error("cannot write {path}: bad safetensors header")]
    Header {
        path: PathBuf,
        #[source]
        source: HeaderError,
    },
    #[error("cannot write {path}: cannot encode its {what} as JSON")]
    Encode {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A check on the contents failed (no underlying error).
    #[error("features file {path} is malformed: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("features file {path} is not a readable safetensors file")]
    Safetensors {
        path: PathBuf,
        #[source]
        source: Box<safetensors::SafeTensorError>,
    },
    #[error("features file {path} is malformed: its `{key}` metadata is not the expected JSON")]
    Metadata {
        path: PathBuf,
        key: &'static str,
        #[source]
        source: serde_json::Error,
    },
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

/// Shorthand for `map_err(unreadable(path))` on a safetensors parse.
pub(crate) fn unreadable(
    path: &Path,
) -> impl FnOnce(safetensors::SafeTensorError) -> StoreError + '_ {
    move |source| StoreError::Safetensors {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

/// Shorthand for `map_err(bad_metadata(path, key))` on a metadata JSON parse.
pub(crate) fn bad_metadata<'a>(
    path: &'a Path,
    key: &'static str,
) -> impl FnOnce(serde_json::Error) -> StoreError + 'a {
    move |source| StoreError::Metadata {
        path: path.to_path_buf(),
        key,
        source,
    }
}

/// Shorthand for `map_err(write_failed(path))` on an atomic write.
pub(crate) fn write_failed(path: &Path) -> impl FnOnce(AssetError) -> StoreError + '_ {
    move |source| StoreError::WriteFile {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

/// Shorthand for `map_err(bad_header(path))` on a header serialization.
pub(crate) fn bad_header(path: &Path) -> impl FnOnce(HeaderError) -> StoreError + '_ {
    move |source| StoreError::Header {
        path: path.to_path_buf(),
        source,
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
    let bytes = serialize(tensors, meta).map_err(bad_header(path))?;
    write_atomic(path, &bytes).map_err(write_failed(path))
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}
