//! Assets stage, the legacy reader's output side: converted tensors ->
//! one safetensors file, written atomically (floats stored as f32).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{RawTensor, Result, TorchDType, TorchLegacyError};

/// Writes the tensors as a safetensors file atomically (`<path>.tmp`, then rename).
/// Float tensors (F64/F16/BF16) are stored as F32 (F64 values beyond f32 range become
/// +-inf); integer and bool tensors keep their dtype.
pub fn write_safetensors(
    tensors: &[(String, RawTensor)],
    path: &Path,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    let mut seen = HashSet::new();
    type Converted<'a> = (&'a str, Dtype, &'a [usize], Cow<'a, [u8]>);
    let mut converted: Vec<Converted> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let bad = |reason: String| TorchLegacyError::BadRawTensor {
            name: name.clone(),
            reason,
        };
        if !seen.insert(name.as_str()) {
            return Err(bad("duplicate tensor name".into()));
        }
        let expect = t
            .shape
            .iter()
            .try_fold(t.dtype.element_size(), |a, &s| a.checked_mul(s));
        if expect != Some(t.data.len()) {
            return Err(bad(format!(
                "{} data bytes do not match {:?} {:?}",
                t.data.len(),
                t.dtype,
                t.shape
            )));
        }
        let (dtype, data) = match t.dtype {
            TorchDType::F32 => (Dtype::F32, Cow::Borrowed(t.data.as_slice())),
            TorchDType::F64 | TorchDType::F16 | TorchDType::BF16 => {
                let v = t
                    .to_f32_vec()
                    .ok_or_else(|| bad(format!("{:?} data cannot be read as floats", t.dtype)))?;
                (Dtype::F32, Cow::Owned(crate::util::le::f32_to_le(&v)))
            }
            TorchDType::I64 => (Dtype::I64, Cow::Borrowed(t.data.as_slice())),
            TorchDType::I32 => (Dtype::I32, Cow::Borrowed(t.data.as_slice())),
            TorchDType::I16 => (Dtype::I16, Cow::Borrowed(t.data.as_slice())),
            TorchDType::I8 => (Dtype::I8, Cow::Borrowed(t.data.as_slice())),
            TorchDType::U8 => (Dtype::U8, Cow::Borrowed(t.data.as_slice())),
            TorchDType::Bool => (Dtype::BOOL, Cow::Borrowed(t.data.as_slice())),
        };
        converted.push((name, dtype, &t.shape, data));
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let st_err = |source| TorchLegacyError::Safetensors {
        path: path.to_path_buf(),
        source,
    };
    let mut views = Vec::with_capacity(converted.len());
    for (name, dtype, shape, data) in &converted {
        views.push((
            *name,
            TensorView::new(*dtype, shape.to_vec(), data).map_err(st_err)?,
        ));
    }
    let buf = safetensors::tensor::serialize(views, metadata).map_err(st_err)?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &buf)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        TorchLegacyError::Io {
            path: tmp.clone(),
            source,
        }
    })
}
