//! Stage 2 (features), on disk: the safetensors files of the feature cache
//! and of the per-split exports, written byte-reproducibly. The `safetensors`
//! crate serializes `__metadata__` from a `HashMap` (random order per
//! process), so the header is written here with metadata keys sorted
//! ([`BTreeMap`]) and tensors in the given order; the result is an ordinary
//! safetensors file that the crate reads back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use safetensors::tensor::Dtype;

/// One tensor to write: name, dtype, shape and its little-endian bytes.
pub struct TensorBytes<'a> {
    pub name: &'a str,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: &'a [u8],
}

/// Why a safetensors header could not be written.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("dtype {0:?} is not written by ovr")]
    Dtype(Dtype),
    #[error("tensor `{name}`: shape {shape:?} does not match {bytes} bytes")]
    Shape {
        name: String,
        shape: Vec<usize>,
        bytes: usize,
    },
    #[error("cannot encode the header as JSON")]
    Json(#[from] serde_json::Error),
}

fn dtype_name(d: Dtype) -> Result<String, HeaderError> {
    let quoted = serde_json::to_string(&d)?;
    Ok(quoted.trim_matches('"').to_string())
}

fn dtype_size(d: Dtype) -> Result<usize, HeaderError> {
    match d {
        Dtype::F32 | Dtype::U32 | Dtype::I32 => Ok(4),
        Dtype::F64 | Dtype::U64 | Dtype::I64 => Ok(8),
        Dtype::F16 | Dtype::BF16 | Dtype::U16 | Dtype::I16 => Ok(2),
        Dtype::U8 | Dtype::I8 | Dtype::BOOL => Ok(1),
        other => Err(HeaderError::Dtype(other)),
    }
}

fn json_str(s: &str) -> Result<String, HeaderError> {
    Ok(serde_json::to_string(s)?)
}

/// Serializes `tensors` (in this order) with `meta` (sorted by key) into the
/// bytes of a safetensors file. Same inputs, same bytes.
pub fn serialize(
    tensors: &[TensorBytes<'_>],
    meta: &BTreeMap<String, String>,
) -> Result<Vec<u8>, HeaderError> {
    let specs: Vec<TensorSpec> = tensors
        .iter()
        .map(|t| TensorSpec {
            name: t.name,
            dtype: t.dtype,
            shape: t.shape.clone(),
            bytes: t.data.len(),
        })
        .collect();
    let head = header(&specs, meta)?;
    let data: usize = specs.iter().map(|t| t.bytes).sum();
    let mut out = Vec::with_capacity(head.len() + data);
    out.extend(head);
    for t in tensors {
        out.extend_from_slice(t.data);
    }
    Ok(out)
}

/// A tensor's name, dtype, shape and byte length, without its data.
pub struct TensorSpec<'a> {
    pub name: &'a str,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: usize,
}

/// The first bytes of a safetensors file (length prefix and padded JSON
/// header) for tensors whose data follow in this order; lets a writer
/// stream data too large to hold (see `features::mapped`).
pub fn header(
    tensors: &[TensorSpec<'_>],
    meta: &BTreeMap<String, String>,
) -> Result<Vec<u8>, HeaderError> {
    let mut header = String::from("{");
    if !meta.is_empty() {
        header.push_str("\"__metadata__\":{");
        for (i, (k, v)) in meta.iter().enumerate() {
            if i > 0 {
                header.push(',');
            }
            let _ = write!(header, "{}:{}", json_str(k)?, json_str(v)?);
        }
        header.push('}');
    }
    let mut offset = 0usize;
    for (i, t) in tensors.iter().enumerate() {
        let elements: usize = t.shape.iter().product();
        if elements * dtype_size(t.dtype)? != t.bytes {
            return Err(HeaderError::Shape {
                name: t.name.to_string(),
                shape: t.shape.clone(),
                bytes: t.bytes,
            });
        }
        if i > 0 || !meta.is_empty() {
            header.push(',');
        }
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        let _ = write!(
            header,
            "{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            json_str(t.name)?,
            dtype_name(t.dtype)?,
            shape.join(","),
            offset,
            offset + t.bytes
        );
        offset += t.bytes;
    }
    header.push('}');
    let mut header = header.into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len());
    out.extend((header.len() as u64).to_le_bytes());
    out.extend(header);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::SafeTensors;

    #[test]
    fn output_is_sorted_reproducible_and_readable_by_the_crate() {
        let f: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let l: Vec<u8> = [7u32].iter().flat_map(|x| x.to_le_bytes()).collect();
        let tensors = [
            TensorBytes {
                name: "features",
                dtype: Dtype::F32,
                shape: vec![1, 2],
                data: &f,
            },
            TensorBytes {
                name: "labels",
                dtype: Dtype::U32,
                shape: vec![1],
                data: &l,
            },
        ];
        let meta: BTreeMap<String, String> = [("z", "last"), ("a", "fi\"rst"), ("m", "[\"x\"]")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let bytes = serialize(&tensors, &meta).unwrap();
        assert_eq!(bytes, serialize(&tensors, &meta).unwrap());
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        let (a, m, z) = (
            header.find("\"a\"").unwrap(),
            header.find("\"m\"").unwrap(),
            header.find("\"z\"").unwrap(),
        );
        assert!(a < m && m < z, "{header}");
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("features").unwrap().data(), &f[..]);
        assert_eq!(st.tensor("labels").unwrap().shape(), &[1]);
        let (_, md) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(md.metadata().as_ref().unwrap()["a"], "fi\"rst");
        let bad = [TensorBytes {
            name: "x",
            dtype: Dtype::F32,
            shape: vec![3],
            data: &f,
        }];
        assert!(serialize(&bad, &meta).is_err());
    }
}
