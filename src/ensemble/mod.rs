//! Stage 5 of the data flow: the saved ensemble. After heads are trained and
//! calibrated, everything needed to score new images is written to
//! `ensembles/<name>/` atomically: `manifest.json` (what was trained on what,
//! with which hyperparameters, how long it took, the calibration parameters)
//! and `heads.safetensors` (standardization statistics, specialist and
//! multiclass weights). See `ensembles/README.md` for the format.

pub mod build;
mod io;
pub mod knownness;
pub mod manifest;
pub mod params;
pub mod plan;
pub mod predict;
pub mod rounds;
pub mod select;
mod split;
pub mod streamed;
mod train_error;

use std::path::{Path, PathBuf};

pub use io::{load, save};
pub use manifest::{HeadRecord, Manifest, TimelineEntry};
pub use params::TrainParams;

pub use crate::heads::HeadParams;
use crate::heads::Standardizer;

#[derive(Debug, thiserror::Error)]
pub enum EnsembleError {
    #[error("cannot read ensemble {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A check on the contents failed (no underlying error).
    #[error("ensemble {path} is malformed: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("ensemble {path} is malformed: not a readable safetensors file")]
    Tensors {
        path: PathBuf,
        #[source]
        source: Box<safetensors::SafeTensorError>,
    },
    #[error("ensemble {path} is malformed: not a manifest this ovr can parse")]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write ensemble {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("ensemble {path} was trained on {expected} features, not {found}")]
    Incompatible {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("ensemble {path}: a head cannot score these rows")]
    Head {
        path: PathBuf,
        #[source]
        source: Box<crate::heads::HeadError>,
    },
    #[error("cannot write the {what} as JSON")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "ensemble name `{name}` must be letters, digits, '-', '_' or '.' (and not start with '.')"
    )]
    BadName { name: String },
}

/// Weights of a trained ensemble (the manifest carries the rest).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub standardizer: Standardizer,
    /// One per class, in class order.
    pub specialists: Vec<HeadParams>,
    pub multiclass: HeadParams,
}

/// A loaded ensemble.
#[derive(Debug, Clone)]
pub struct Ensemble {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub weights: Weights,
}

impl Ensemble {
    /// Checks that features from `backbone` (with `weights_sha256`, `dim`) fit this ensemble.
    pub fn check_compatible(
        &self,
        backbone: &str,
        weights_sha256: &str,
        dim: usize,
    ) -> Result<(), EnsembleError> {
        let m = &self.manifest;
        if m.backbone != backbone || m.weights_sha256 != weights_sha256 || m.feature_dim != dim {
            return Err(EnsembleError::Incompatible {
                path: self.dir.clone(),
                expected: format!(
                    "{} ({}..., {}-d)",
                    m.backbone,
                    short(&m.weights_sha256),
                    m.feature_dim
                ),
                found: format!("{backbone} ({}..., {dim}-d)", short(weights_sha256)),
            });
        }
        Ok(())
    }
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

/// Checks an ensemble name (it becomes a directory name).
pub fn check_name(name: &str) -> Result<(), EnsembleError> {
    if crate::util::name::is_safe_name(name) {
        Ok(())
    } else {
        Err(EnsembleError::BadName {
            name: name.to_string(),
        })
    }
}

/// `ensembles/<name>` under `root`.
pub fn ensemble_dir(root: &Path, name: &str) -> Result<PathBuf, EnsembleError> {
    check_name(name)?;
    Ok(root.join(name))
}
