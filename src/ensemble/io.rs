//! Ensemble stage: reading and writing `ensembles/<name>/`. The directory is
//! built next to its destination and renamed into place, so a reader never
//! sees half an ensemble; re-training under the same name replaces the old
//! one only once the new one is complete.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{Ensemble, EnsembleError, HeadParams, HeadRecord, Manifest, Weights};
use crate::assets::atomic_dir::replace_dir_atomic;
use crate::assets::cache::AssetError;
use crate::heads::HeadKind;
use crate::heads::{LinearFit, MlpFit, MlpLayer, Standardizer};
use crate::util::le::{f32_from_le, f32_to_le};

const MANIFEST: &str = "manifest.json";
const HEADS: &str = "heads.safetensors";

fn write_err(
    path: &Path,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> EnsembleError {
    EnsembleError::Write {
        path: path.to_path_buf(),
        source: source.into(),
    }
}

fn unreadable(path: &Path) -> impl FnOnce(safetensors::SafeTensorError) -> EnsembleError + '_ {
    move |source| EnsembleError::Tensors {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

fn malformed(path: &Path, message: impl ToString) -> EnsembleError {
    EnsembleError::Malformed {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
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
        .map(|(n, s, v)| (n.as_str(), s.as_slice(), f32_to_le(v)))
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
    let mpath = dir.join(MANIFEST);
    let manifest = read_manifest(&mpath)?;
    let hpath = dir.join(HEADS);
    let raw = std::fs::read(&hpath).map_err(|source| EnsembleError::Io {
        path: hpath.clone(),
        source,
    })?;
    let st = SafeTensors::deserialize(&raw).map_err(unreadable(&hpath))?;
    let (k, d) = (manifest.classes.len(), manifest.feature_dim);
    if manifest.specialists.len() != k || manifest.calibration.specialists.k() != k {
        return Err(malformed(
            &mpath,
            format!("{k} classes but {} specialists", manifest.specialists.len()),
        ));
    }
    let heads = Heads {
        st,
        path: &hpath,
        d,
    };
    let specialists = heads.specialists(&manifest.specialists)?;
    let multiclass = heads.multiclass(&manifest.multiclass, k)?;
    let weights = Weights {
        standardizer: Standardizer {
            mean: heads.get("standardizer.mean", Some(&[d]))?.0,
            std: heads.get("standardizer.std", Some(&[d]))?.0,
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

/// `manifest.json`, of the format this `ovr` reads.
fn read_manifest(mpath: &Path) -> Result<Manifest, EnsembleError> {
    let text = std::fs::read_to_string(mpath).map_err(|source| EnsembleError::Io {
        path: mpath.to_path_buf(),
        source,
    })?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|source| EnsembleError::Manifest {
            path: mpath.to_path_buf(),
            source,
        })?;
    if manifest.format != super::manifest::FORMAT {
        return Err(malformed(
            mpath,
            format!(
                "format {} (this ovr reads {})",
                manifest.format,
                super::manifest::FORMAT
            ),
        ));
    }
    Ok(manifest)
}

/// `heads.safetensors` of an ensemble over `d` features, read tensor by tensor.
struct Heads<'a> {
    st: SafeTensors<'a>,
    path: &'a Path,
    d: usize,
}

fn linear(w: Vec<f32>, b: Vec<f32>, rec: &HeadRecord) -> HeadParams {
    HeadParams::Linear(LinearFit {
        w,
        b,
        iterations: rec.iterations,
        converged: rec.converged,
        objective: rec.objective.unwrap_or(f64::NAN),
    })
}

impl Heads<'_> {
    /// An f32 tensor's values and shape, checked against `shape` if given.
    fn get(
        &self,
        name: &str,
        shape: Option<&[usize]>,
    ) -> Result<(Vec<f32>, Vec<usize>), EnsembleError> {
        let t = self.st.tensor(name).map_err(unreadable(self.path))?;
        if t.dtype() != Dtype::F32 || shape.is_some_and(|s| t.shape() != s) {
            return Err(malformed(
                self.path,
                format!(
                    "`{name}` is {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        let v = f32_from_le(t.data())
            .ok_or_else(|| malformed(self.path, format!("`{name}` is not whole f32 values")))?;
        Ok((v, t.shape().to_vec()))
    }

    /// The specialists: one `[k, d]` matrix when all are linear, else one
    /// MLP per class.
    fn specialists(&self, recs: &[HeadRecord]) -> Result<Vec<HeadParams>, EnsembleError> {
        let (k, d) = (recs.len(), self.d);
        if recs.iter().all(|r| r.kind == HeadKind::Linear) {
            let (w, _) = self.get("specialists.weight", Some(&[k, d]))?;
            let (b, _) = self.get("specialists.bias", Some(&[k]))?;
            return Ok(recs
                .iter()
                .enumerate()
                .map(|(c, rec)| linear(w[c * d..(c + 1) * d].to_vec(), vec![b[c]], rec))
                .collect());
        }
        recs.iter()
            .enumerate()
            .map(|(c, rec)| {
                Ok(HeadParams::Mlp(self.layers(
                    &format!("specialists.{c}"),
                    rec,
                    1,
                )?))
            })
            .collect()
    }

    fn multiclass(&self, rec: &HeadRecord, k: usize) -> Result<HeadParams, EnsembleError> {
        Ok(match rec.kind {
            HeadKind::Linear => {
                let (w, _) = self.get("multiclass.weight", Some(&[self.d, k]))?;
                let (b, _) = self.get("multiclass.bias", Some(&[k]))?;
                linear(w, b, rec)
            }
            HeadKind::Mlp => HeadParams::Mlp(self.layers("multiclass", rec, k)?),
        })
    }

    /// An MLP's layers, which must chain from D features to `last` outputs,
    /// so that applying a loaded ensemble can never meet a shape it cannot
    /// handle.
    fn layers(&self, prefix: &str, rec: &HeadRecord, last: usize) -> Result<MlpFit, EnsembleError> {
        let mut out = Vec::new();
        while self
            .st
            .tensor(&format!("{prefix}.layers.{}.weight", out.len()))
            .is_ok()
        {
            let i = out.len();
            let (w, shape) = self.get(&format!("{prefix}.layers.{i}.weight"), None)?;
            let [inputs, outputs] = shape[..] else {
                let msg = format!("`{prefix}.layers.{i}.weight` must be 2-d");
                return Err(malformed(self.path, msg));
            };
            let (b, _) = self.get(&format!("{prefix}.layers.{i}.bias"), Some(&[outputs]))?;
            out.push(MlpLayer {
                w,
                b,
                inputs,
                outputs,
            });
        }
        if out.is_empty() {
            return Err(malformed(
                self.path,
                format!("no `{prefix}.layers.*` tensors"),
            ));
        }
        let widths: Vec<usize> = std::iter::once(out[0].inputs)
            .chain(out.iter().map(|l| l.outputs))
            .collect();
        let chained = out.windows(2).all(|p| p[0].outputs == p[1].inputs);
        if out[0].inputs != self.d || !chained || widths.last() != Some(&last) {
            return Err(malformed(
                self.path,
                format!(
                    "`{prefix}` layers have widths {widths:?}; expected {} inputs, chained layers and {last} outputs",
                    self.d
                ),
            ));
        }
        Ok(MlpFit {
            layers: out,
            epochs: rec.iterations,
            best_epoch: rec.best_epoch.unwrap_or(0),
            val_loss: rec.val_loss,
            converged: rec.converged,
        })
    }
}
