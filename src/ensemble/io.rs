//! Ensemble stage: reading and writing `ensembles/<name>/`. The directory is
//! built next to its destination and renamed into place, so a reader never
//! sees half an ensemble; re-training under the same name replaces the old
//! one only once the new one is complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{Ensemble, EnsembleError, HeadParams, HeadRecord, Manifest, Weights};
use crate::assets::cache::{replace_dir_atomic, AssetError};
use crate::config::train::HeadKind;
use crate::heads::{LinearFit, MlpFit, MlpLayer, Standardizer};

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

/// A named f32 tensor: name, shape, values.
type Named = (String, Vec<usize>, Vec<f32>);

/// Named `[shape]` f32 tensors of the weights, in file order.
fn tensors(manifest: &Manifest, w: &Weights) -> Result<Vec<Named>, String> {
    let (k, d) = (manifest.classes.len(), manifest.feature_dim);
    let mut out = vec![
        (
            "standardizer.mean".to_string(),
            vec![d],
            w.standardizer.mean.clone(),
        ),
        (
            "standardizer.std".to_string(),
            vec![d],
            w.standardizer.std.clone(),
        ),
    ];
    if w.specialists.len() != k || w.standardizer.mean.len() != d || w.standardizer.std.len() != d {
        return Err(format!("weights do not match {k} classes x {d} features"));
    }
    let linear: Vec<&LinearFit> = w
        .specialists
        .iter()
        .filter_map(|h| match h {
            HeadParams::Linear(f) => Some(f),
            HeadParams::Mlp(_) => None,
        })
        .collect();
    if linear.len() == k {
        let mut wk = Vec::with_capacity(k * d);
        let mut bk = Vec::with_capacity(k);
        for f in &linear {
            if f.w.len() != d || f.b.len() != 1 {
                return Err("a linear specialist is not [D] + [1]".into());
            }
            wk.extend_from_slice(&f.w);
            bk.push(f.b[0]);
        }
        out.push(("specialists.weight".into(), vec![k, d], wk));
        out.push(("specialists.bias".into(), vec![k], bk));
    } else {
        for (c, h) in w.specialists.iter().enumerate() {
            let HeadParams::Mlp(f) = h else {
                return Err("specialists mix linear and MLP heads".into());
            };
            push_layers(&mut out, &format!("specialists.{c}"), f);
        }
    }
    match &w.multiclass {
        HeadParams::Linear(f) => {
            if f.w.len() != d * k || f.b.len() != k {
                return Err("the linear multiclass head is not [D, K] + [K]".into());
            }
            out.push(("multiclass.weight".into(), vec![d, k], f.w.clone()));
            out.push(("multiclass.bias".into(), vec![k], f.b.clone()));
        }
        HeadParams::Mlp(f) => push_layers(&mut out, "multiclass", f),
    }
    Ok(out)
}

fn push_layers(out: &mut Vec<Named>, prefix: &str, f: &MlpFit) {
    for (i, l) in f.layers.iter().enumerate() {
        out.push((
            format!("{prefix}.layers.{i}.weight"),
            vec![l.inputs, l.outputs],
            l.w.clone(),
        ));
        out.push((
            format!("{prefix}.layers.{i}.bias"),
            vec![l.outputs],
            l.b.clone(),
        ));
    }
}

/// Writes the ensemble to `dir` atomically (replacing an older one) through
/// the one atomic-directory helper ([`replace_dir_atomic`]: fsynced temp
/// sibling, then exchanged with the old directory in one step on Linux).
pub fn save(dir: &Path, manifest: &Manifest, w: &Weights) -> Result<(), EnsembleError> {
    let data = tensors(manifest, w).map_err(|m| write_err(dir, m))?;
    replace_dir_atomic(dir, |tmp| write_into(tmp, manifest, &data)).map_err(|e| match e {
        SaveError::Asset(a) => write_err(dir, a),
        SaveError::Ensemble(e) => e,
    })
}

/// What [`replace_dir_atomic`] may fail with while saving.
enum SaveError {
    Asset(AssetError),
    Ensemble(EnsembleError),
}

impl From<AssetError> for SaveError {
    fn from(e: AssetError) -> Self {
        SaveError::Asset(e)
    }
}

impl From<EnsembleError> for SaveError {
    fn from(e: EnsembleError) -> Self {
        SaveError::Ensemble(e)
    }
}

fn write_into(tmp: &Path, manifest: &Manifest, data: &[Named]) -> Result<(), SaveError> {
    let json = serde_json::to_string_pretty(manifest).map_err(|e| write_err(tmp, e))?;
    std::fs::write(tmp.join(MANIFEST), json).map_err(|e| write_err(tmp, e))?;
    let raw: Vec<(&str, &[usize], Vec<u8>)> = data
        .iter()
        .map(|(n, s, v)| (n.as_str(), s.as_slice(), bytes(v)))
        .collect();
    let mut views = Vec::with_capacity(raw.len());
    for (n, shape, b) in &raw {
        views.push((
            *n,
            TensorView::new(Dtype::F32, shape.to_vec(), b).map_err(|e| write_err(tmp, e))?,
        ));
    }
    let meta = HashMap::from([("format".to_string(), "ovr-ensemble-1".to_string())]);
    let st = safetensors::tensor::serialize(views, Some(meta)).map_err(|e| write_err(tmp, e))?;
    std::fs::write(tmp.join(HEADS), st).map_err(|e| write_err(tmp, e).into())
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
    let get =
        |name: &str, shape: Option<&[usize]>| -> Result<(Vec<f32>, Vec<usize>), EnsembleError> {
            let t = st.tensor(name).map_err(|e| malformed(&hpath, e))?;
            if t.dtype() != Dtype::F32 || shape.is_some_and(|s| t.shape() != s) {
                return Err(malformed(
                    &hpath,
                    format!(
                        "`{name}` is {:?} {:?}, expected F32 {shape:?}",
                        t.dtype(),
                        t.shape()
                    ),
                ));
            }
            let v = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok((v, t.shape().to_vec()))
        };
    // An MLP's layers must chain from D features to `last` outputs, so that
    // applying a loaded ensemble can never meet a shape it cannot handle.
    let layers = |prefix: &str, rec: &HeadRecord, last: usize| -> Result<MlpFit, EnsembleError> {
        let mut out = Vec::new();
        while st
            .tensor(&format!("{prefix}.layers.{}.weight", out.len()))
            .is_ok()
        {
            let i = out.len();
            let (w, shape) = get(&format!("{prefix}.layers.{i}.weight"), None)?;
            let [inputs, outputs] = shape[..] else {
                return Err(malformed(
                    &hpath,
                    format!("`{prefix}.layers.{i}.weight` must be 2-d"),
                ));
            };
            let (b, _) = get(&format!("{prefix}.layers.{i}.bias"), Some(&[outputs]))?;
            out.push(MlpLayer {
                w,
                b,
                inputs,
                outputs,
            });
        }
        if out.is_empty() {
            return Err(malformed(&hpath, format!("no `{prefix}.layers.*` tensors")));
        }
        let widths: Vec<usize> = std::iter::once(out[0].inputs)
            .chain(out.iter().map(|l| l.outputs))
            .collect();
        let chained = out.windows(2).all(|p| p[0].outputs == p[1].inputs);
        if out[0].inputs != d || !chained || widths.last() != Some(&last) {
            return Err(malformed(
                &hpath,
                format!("`{prefix}` layers have widths {widths:?}; expected {d} inputs, chained layers and {last} outputs"),
            ));
        }
        Ok(MlpFit {
            layers: out,
            epochs: rec.iterations,
            best_epoch: rec.best_epoch.unwrap_or(0),
            val_loss: rec.val_loss,
            converged: rec.converged,
        })
    };
    let linear = |w: Vec<f32>, b: Vec<f32>, rec: &HeadRecord| {
        HeadParams::Linear(LinearFit {
            w,
            b,
            iterations: rec.iterations,
            converged: rec.converged,
            objective: rec.objective.unwrap_or(f64::NAN),
        })
    };
    if manifest.specialists.len() != k || manifest.calibration.specialists.k() != k {
        return Err(malformed(
            &mpath,
            format!("{k} classes but {} specialists", manifest.specialists.len()),
        ));
    }
    let specialists = if manifest
        .specialists
        .iter()
        .all(|r| r.kind == HeadKind::Linear)
    {
        let (w, _) = get("specialists.weight", Some(&[k, d]))?;
        let (b, _) = get("specialists.bias", Some(&[k]))?;
        manifest
            .specialists
            .iter()
            .enumerate()
            .map(|(c, rec)| linear(w[c * d..(c + 1) * d].to_vec(), vec![b[c]], rec))
            .collect()
    } else {
        (0..k)
            .map(|c| {
                layers(&format!("specialists.{c}"), &manifest.specialists[c], 1)
                    .map(HeadParams::Mlp)
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let multiclass = match manifest.multiclass.kind {
        HeadKind::Linear => {
            let (w, _) = get("multiclass.weight", Some(&[d, k]))?;
            let (b, _) = get("multiclass.bias", Some(&[k]))?;
            linear(w, b, &manifest.multiclass)
        }
        HeadKind::Mlp => HeadParams::Mlp(layers("multiclass", &manifest.multiclass, k)?),
    };
    let weights = Weights {
        standardizer: Standardizer {
            mean: get("standardizer.mean", Some(&[d]))?.0,
            std: get("standardizer.std", Some(&[d]))?.0,
        },
        specialists,
        multiclass,
    };
    Ok(Ensemble {
        dir: dir.to_path_buf(),
        manifest,
        weights,
    })
}
