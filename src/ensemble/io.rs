//! Ensemble stage: reading and writing `ensembles/<name>/`. The directory is
//! built next to its destination and renamed into place, so a reader never
//! sees half an ensemble; re-training under the same name replaces the old
//! one only once the new one is complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{Ensemble, EnsembleError, Manifest, Weights};
use crate::heads::Standardizer;

const MANIFEST: &str = "manifest.json";
const HEADS: &str = "heads.safetensors";

fn write_err(path: &Path, message: impl ToString) -> EnsembleError {
    EnsembleError::Write {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn malformed(path: &Path, message: impl ToString) -> EnsembleError {
    EnsembleError::Malformed {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes the ensemble to `dir` atomically (replacing an older one).
pub fn save(dir: &Path, manifest: &Manifest, w: &Weights) -> Result<(), EnsembleError> {
    let (k, d) = (manifest.classes.len(), manifest.feature_dim);
    let shapes_ok = w.standardizer.mean.len() == d
        && w.standardizer.std.len() == d
        && w.specialists_w.len() == k * d
        && w.specialists_b.len() == k
        && w.multiclass_w.len() == d * k
        && w.multiclass_b.len() == k;
    if !shapes_ok {
        return Err(write_err(
            dir,
            format!("weights do not match {k} classes x {d} features"),
        ));
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| write_err(parent, e))?;
    let name = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| write_err(&tmp, e))?;
    let result = write_into(&tmp, manifest, w, k, d).and_then(|()| swap_into_place(&tmp, dir));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn write_into(
    tmp: &Path,
    manifest: &Manifest,
    w: &Weights,
    k: usize,
    d: usize,
) -> Result<(), EnsembleError> {
    let json = serde_json::to_string_pretty(manifest).map_err(|e| write_err(tmp, e))?;
    std::fs::write(tmp.join(MANIFEST), json).map_err(|e| write_err(tmp, e))?;
    let data = [
        ("standardizer.mean", vec![d], bytes(&w.standardizer.mean)),
        ("standardizer.std", vec![d], bytes(&w.standardizer.std)),
        ("specialists.weight", vec![k, d], bytes(&w.specialists_w)),
        ("specialists.bias", vec![k], bytes(&w.specialists_b)),
        ("multiclass.weight", vec![d, k], bytes(&w.multiclass_w)),
        ("multiclass.bias", vec![k], bytes(&w.multiclass_b)),
    ];
    let mut views = Vec::new();
    for (n, shape, b) in &data {
        views.push((
            *n,
            TensorView::new(Dtype::F32, shape.clone(), b).map_err(|e| write_err(tmp, e))?,
        ));
    }
    let meta = HashMap::from([("format".to_string(), "ovr-ensemble-1".to_string())]);
    let st = safetensors::tensor::serialize(views, Some(meta)).map_err(|e| write_err(tmp, e))?;
    std::fs::write(tmp.join(HEADS), st).map_err(|e| write_err(tmp, e))
}

fn swap_into_place(tmp: &Path, dir: &Path) -> Result<(), EnsembleError> {
    let old: Option<PathBuf> = if dir.exists() {
        let o = dir.with_extension(format!("old-{}", std::process::id()));
        std::fs::rename(dir, &o).map_err(|e| write_err(dir, e))?;
        Some(o)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(tmp, dir) {
        if let Some(o) = &old {
            let _ = std::fs::rename(o, dir);
        }
        return Err(write_err(dir, e));
    }
    if let Some(o) = old {
        let _ = std::fs::remove_dir_all(o);
    }
    Ok(())
}

/// Reads an ensemble written by [`save`].
pub fn load(dir: &Path) -> Result<Ensemble, EnsembleError> {
    let io = |path: PathBuf| move |source| EnsembleError::Io { path, source };
    let mpath = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&mpath).map_err(io(mpath.clone()))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| malformed(&mpath, e))?;
    if manifest.format != super::manifest::FORMAT {
        return Err(malformed(
            &mpath,
            format!(
                "format {} (this ovr reads {})",
                manifest.format,
                super::manifest::FORMAT
            ),
        ));
    }
    let hpath = dir.join(HEADS);
    let raw = std::fs::read(&hpath).map_err(io(hpath.clone()))?;
    let st = SafeTensors::deserialize(&raw).map_err(|e| malformed(&hpath, e))?;
    let (k, d) = (manifest.classes.len(), manifest.feature_dim);
    let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, EnsembleError> {
        let t = st.tensor(name).map_err(|e| malformed(&hpath, e))?;
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            return Err(malformed(
                &hpath,
                format!(
                    "`{name}` is {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let weights = Weights {
        standardizer: Standardizer {
            mean: get("standardizer.mean", &[d])?,
            std: get("standardizer.std", &[d])?,
        },
        specialists_w: get("specialists.weight", &[k, d])?,
        specialists_b: get("specialists.bias", &[k])?,
        multiclass_w: get("multiclass.weight", &[d, k])?,
        multiclass_b: get("multiclass.bias", &[k])?,
    };
    if manifest.specialists.len() != k || manifest.calibration.specialists.len() != k {
        return Err(malformed(
            &mpath,
            format!("{k} classes but {} specialists", manifest.specialists.len()),
        ));
    }
    Ok(Ensemble {
        dir: dir.to_path_buf(),
        manifest,
        weights,
    })
}
