//! Assets stage, the legacy `torch.save` format's vocabulary shared by the
//! pickle VM ([`super::pickle_vm`], which reads the pickles) and the file
//! reader ([`super::torch_legacy`], which gathers the storages): the storage
//! dtypes on the allow-list and the one error type of both.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TorchLegacyError {
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}")]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<TorchLegacyError>,
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
    #[error("writing safetensors {path}")]
    Safetensors {
        path: PathBuf,
        source: safetensors::SafeTensorError,
    },
}

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
