//! Value types and the allow-list of the pickle VM.
//!
//! Data flow (assets stage): wheel -> legacy `.pth` -> pickle VM -> tensors -> safetensors.
//! This file holds what the VM may produce: the allow-list of resolvable globals
//! ([`Global`], the security boundary: anything else is refused), the torch references
//! ([`StorageRef`], [`TensorRef`]) that [`crate::assets::torch_legacy`] later materializes, the
//! pickle [`Value`], the insertion-ordered [`Dict`] and the [`Unpickled`] result with its
//! list/dict arena. No decoding happens here; that is `super::vm`.

use std::collections::HashMap;
use std::rc::Rc;

use super::Result;
use crate::assets::torch_format::{TorchDType, TorchLegacyError};

/// A global the VM is allowed to resolve; anything else is [`TorchLegacyError::ForbiddenGlobal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(TorchDType),
}

impl Global {
    /// Resolves `module.name` against the allow-list.
    pub fn resolve(module: &str, name: &str) -> Result<Self> {
        match (module, name) {
            ("collections", "OrderedDict") => Ok(Self::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Ok(Self::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Ok(Self::RebuildParameter),
            ("torch", n) => match TorchDType::from_storage_name(n) {
                Some(dtype) => Ok(Self::Storage(dtype)),
                None => Err(forbidden(module, name)),
            },
            _ => Err(forbidden(module, name)),
        }
    }
}

fn forbidden(module: &str, name: &str) -> TorchLegacyError {
    let mut global = format!("{module}.{name}");
    if global.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|&i| global.is_char_boundary(i))
            .unwrap_or(0);
        global.truncate(cut);
        global.push('…');
    }
    TorchLegacyError::ForbiddenGlobal { global }
}

/// A storage named by a persistent id: `('storage', type, key, location, numel, view)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    /// Key of the root storage (as listed after the main pickle).
    pub key: Rc<str>,
    pub dtype: TorchDType,
    /// Element count of the root storage.
    pub numel: u64,
    /// Old-format storage view: `(offset, numel)` in elements of the root storage.
    pub view: Option<(u64, u64)>,
}

/// A `_rebuild_tensor_v2(storage, offset, size, stride, ...)` call, not yet materialized.
#[derive(Debug, Clone)]
pub struct TensorRef {
    pub storage: Rc<StorageRef>,
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

/// A pickle value. `List`/`Dict` are indices into the [`Unpickled`] arena.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// Little-endian two's-complement bytes of an integer wider than 64 bits.
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<[Value]>),
    List(usize),
    Dict(usize),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    /// Python type name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    /// Non-negative int as u64.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }
}

/// Hashable dict key (Python equality for the key types torch uses).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    None,
    Int(i64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
}

/// An insertion-ordered dict (plain `dict` or `OrderedDict`).
#[derive(Debug, Default)]
pub struct Dict {
    entries: Vec<(Value, Value)>,
    index: HashMap<Key, usize>,
}

impl Dict {
    pub fn entries(&self) -> &[(Value, Value)] {
        &self.entries
    }

    pub fn get_str(&self, key: &str) -> Option<&Value> {
        let i = *self.index.get(&Key::Str(Rc::from(key)))?;
        self.entries.get(i).map(|(_, v)| v)
    }

    pub(super) fn insert(&mut self, k: Value, v: Value) -> std::result::Result<(), String> {
        let key = match &k {
            Value::None => Key::None,
            Value::Bool(b) => Key::Int(i64::from(*b)),
            Value::Int(i) => Key::Int(*i),
            Value::Str(s) => Key::Str(s.clone()),
            Value::Bytes(b) => Key::Bytes(b.clone()),
            other => return Err(format!("unsupported dict key type {}", other.kind())),
        };
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = v,
            None => {
                self.index.insert(key, self.entries.len());
                self.entries.push((k, v));
            }
        }
        Ok(())
    }
}

/// Result of running one pickle: its value, the arena it refers into, and the storages seen.
#[derive(Debug)]
pub struct Unpickled {
    pub value: Value,
    /// Byte offset just past the `STOP` opcode.
    pub end: usize,
    /// Root storages named by persistent ids, in first-seen order (key, dtype, numel).
    pub storages: Vec<(Rc<str>, TorchDType, u64)>,
    pub(super) lists: Vec<Vec<Value>>,
    pub(super) dicts: Vec<Dict>,
}

impl Unpickled {
    pub fn dict(&self, v: &Value) -> Option<&Dict> {
        match v {
            Value::Dict(i) => self.dicts.get(*i),
            _ => None,
        }
    }

    pub fn list(&self, v: &Value) -> Option<&[Value]> {
        match v {
            Value::List(i) => self.lists.get(*i).map(Vec::as_slice),
            _ => None,
        }
    }
}
