//! Minimal allow-listed pickle virtual machine for PyTorch's legacy `torch.save` format.
//!
//! Used only by [`super::torch_legacy`] (assets stage: legacy `.pth` -> safetensors). It
//! understands the protocol-2 opcodes torch emits (plus a few harmless later ones), resolves
//! `GLOBAL` against a fixed allow-list (like `torch.load(weights_only=True)`), turns
//! `BINPERSID` storage ids into [`StorageRef`]s and `_rebuild_tensor_v2` calls into
//! [`TensorRef`]s. Nothing is ever executed. Lists and dicts live in an arena and are referred
//! to by index, so memo sharing costs O(1) and self-referencing containers cannot cause
//! recursion. Every length is checked against the remaining input before anything is
//! allocated, so memory stays linear in the input size.

use std::collections::HashMap;
use std::rc::Rc;

use super::torch_legacy::{TorchDType, TorchLegacyError};

type Result<T> = std::result::Result<T, TorchLegacyError>;

/// Longest `GLOBAL` line (module or name) accepted.
const MAX_GLOBAL_LINE: usize = 512;

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

    fn insert(&mut self, k: Value, v: Value) -> std::result::Result<(), String> {
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
    lists: Vec<Vec<Value>>,
    dicts: Vec<Dict>,
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

/// Runs the pickle that starts at `data[start..]` up to and including its `STOP`.
pub fn unpickle(data: &[u8], start: usize) -> Result<Unpickled> {
    let mut vm = Vm {
        data,
        pos: start,
        op_pos: start,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        lists: Vec::new(),
        dicts: Vec::new(),
        storages: Vec::new(),
        storage_index: HashMap::new(),
        views: HashMap::new(),
    };
    let value = vm.run()?;
    Ok(Unpickled {
        value,
        end: vm.pos,
        storages: vm.storages,
        lists: vm.lists,
        dicts: vm.dicts,
    })
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    op_pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    lists: Vec<Vec<Value>>,
    dicts: Vec<Dict>,
    storages: Vec<(Rc<str>, TorchDType, u64)>,
    storage_index: HashMap<Rc<str>, usize>,
    views: HashMap<String, Rc<StorageRef>>,
}

impl<'a> Vm<'a> {
    fn err(&self, reason: impl Into<String>) -> TorchLegacyError {
        TorchLegacyError::Malformed {
            offset: self.op_pos,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let rest = self.data.len().saturating_sub(self.pos);
        if n > rest {
            return Err(TorchLegacyError::Truncated {
                what,
                offset: self.pos,
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    /// Length prefix of `N` bytes (little-endian, unsigned), as usize.
    fn len_prefix<const N: usize>(&mut self, what: &'static str) -> Result<usize> {
        let mut b = [0u8; 8];
        b[..N].copy_from_slice(&self.arr::<N>(what)?);
        usize::try_from(u64::from_le_bytes(b)).map_err(|_| TorchLegacyError::Truncated {
            what,
            offset: self.pos,
        })
    }

    fn line(&mut self) -> Result<&'a str> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let window = &rest[..rest.len().min(MAX_GLOBAL_LINE + 1)];
        let Some(n) = window.iter().position(|&b| b == b'\n') else {
            if window.len() <= MAX_GLOBAL_LINE {
                return Err(TorchLegacyError::Truncated {
                    what: "GLOBAL line",
                    offset: self.pos,
                });
            }
            return Err(self.err("GLOBAL line too long"));
        };
        let s = std::str::from_utf8(&window[..n]).map_err(|_| self.err("GLOBAL line not UTF-8"))?;
        self.pos += n + 1;
        Ok(s)
    }

    fn utf8(&self, b: &[u8]) -> Result<Value> {
        let s = std::str::from_utf8(b).map_err(|_| self.err("string is not valid UTF-8"))?;
        Ok(Value::Str(Rc::from(s)))
    }

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Value> {
        if self.stack.len() <= self.fence() {
            return Err(self.err("stack underflow"));
        }
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn top(&mut self) -> Result<&mut Value> {
        if self.stack.len() <= self.fence() {
            return Err(self.err("stack underflow"));
        }
        let off = self.op_pos;
        self.stack.last_mut().ok_or(TorchLegacyError::Malformed {
            offset: off,
            reason: "stack underflow".into(),
        })
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        Ok(self.stack.split_off(m.min(self.stack.len())))
    }

    fn new_dict(&mut self) -> Value {
        self.dicts.push(Dict::default());
        Value::Dict(self.dicts.len() - 1)
    }

    fn memo_get(&self, idx: u32) -> Result<Value> {
        self.memo
            .get(&idx)
            .cloned()
            .ok_or_else(|| self.err(format!("memo key {idx} not set")))
    }

    fn memo_put(&mut self, idx: u32) -> Result<()> {
        let v = self.top()?.clone();
        self.memo.insert(idx, v);
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(self.err("SETITEMS with an odd number of items"));
        }
        let target = self.top()?.clone();
        let Value::Dict(d) = target else {
            return Err(self.err(format!("SETITEM on a {}", target.kind())));
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let off = self.op_pos;
            let malformed = |reason: String| TorchLegacyError::Malformed {
                offset: off,
                reason,
            };
            let dict = self
                .dicts
                .get_mut(d)
                .ok_or_else(|| malformed("bad dict id".into()))?;
            dict.insert(k, v).map_err(malformed)?;
        }
        Ok(())
    }

    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        let target = self.top()?.clone();
        let Value::List(l) = target else {
            return Err(self.err(format!("APPEND on a {}", target.kind())));
        };
        let off = self.op_pos;
        let list = self.lists.get_mut(l).ok_or(TorchLegacyError::Malformed {
            offset: off,
            reason: "bad list id".into(),
        })?;
        list.extend(items);
        Ok(())
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            self.op_pos = self.pos;
            let [op] = self.arr::<1>("pickle opcode")?;
            match op {
                0x80 => {
                    let [p] = self.arr::<1>("PROTO")?;
                    if p > 5 {
                        return Err(self.err(format!("unsupported pickle protocol {p}")));
                    }
                }
                0x95 => {
                    self.arr::<8>("FRAME")?;
                }
                b'.' => {
                    let v = self.pop()?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return Err(self.err("STOP with a non-empty stack"));
                    }
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.arr::<4>("BININT")?);
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let [v] = self.arr::<1>("BININT1")?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.arr::<2>("BININT2")?);
                    self.stack.push(Value::Int(i64::from(v)));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.len_prefix::<1>("LONG1 length")?
                    } else {
                        let n = i32::from_le_bytes(self.arr::<4>("LONG4 length")?);
                        usize::try_from(n).map_err(|_| self.err("negative LONG4 length"))?
                    };
                    let b = self.take(n, "LONG bytes")?;
                    let v = match b.len() {
                        0 => Value::Int(0),
                        1..=8 => {
                            let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
                            let mut a = [fill; 8];
                            a[..b.len()].copy_from_slice(b);
                            Value::Int(i64::from_le_bytes(a))
                        }
                        _ => Value::BigInt(Rc::from(b)),
                    };
                    self.stack.push(v);
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.arr::<8>("BINFLOAT")?);
                    self.stack.push(Value::Float(v));
                }
                b'X' | 0x8c | 0x8d | b'T' | b'U' => {
                    let n = match op {
                        0x8c | b'U' => self.len_prefix::<1>("string length")?,
                        0x8d => self.len_prefix::<8>("string length")?,
                        _ => self.len_prefix::<4>("string length")?,
                    };
                    let b = self.take(n, "string bytes")?;
                    let v = self.utf8(b)?;
                    self.stack.push(v);
                }
                b'B' | b'C' => {
                    let n = if op == b'C' {
                        self.len_prefix::<1>("bytes length")?
                    } else {
                        self.len_prefix::<4>("bytes length")?
                    };
                    let b = self.take(n, "bytes")?;
                    self.stack.push(Value::Bytes(Rc::from(b)));
                }
                b')' => self.stack.push(Value::Tuple(Rc::from(Vec::new()))),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::from(items)));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.stack.push(Value::Tuple(Rc::from(items)));
                }
                b']' | b'l' => {
                    let items = if op == b'l' {
                        self.pop_mark()?
                    } else {
                        Vec::new()
                    };
                    self.lists.push(items);
                    self.stack.push(Value::List(self.lists.len() - 1));
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'}' | b'd' => {
                    let items = if op == b'd' {
                        self.pop_mark()?
                    } else {
                        Vec::new()
                    };
                    let d = self.new_dict();
                    self.stack.push(d);
                    self.set_items(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = Global::resolve(module, name)?;
                    self.stack.push(Value::Global(g));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(m), Value::Str(n)) = (&module, &name) else {
                        return Err(self.err("STACK_GLOBAL needs two strings"));
                    };
                    let g = Global::resolve(m, n)?;
                    self.stack.push(Value::Global(g));
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.call(&callable, &args, op == 0x81)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let _state = self.pop()?;
                    let target = self.top()?;
                    if !matches!(target, Value::Dict(_) | Value::Tensor(_)) {
                        let kind = target.kind();
                        return Err(self.err(format!("BUILD on a {kind}")));
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let s = self.persistent_load(&pid)?;
                    self.stack.push(Value::Storage(s));
                }
                b'q' => {
                    let [i] = self.arr::<1>("BINPUT")?;
                    self.memo_put(u32::from(i))?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.arr::<4>("LONG_BINPUT")?);
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).map_err(|_| self.err("memo full"))?;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let [i] = self.arr::<1>("BINGET")?;
                    let v = self.memo_get(u32::from(i))?;
                    self.stack.push(v);
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.arr::<4>("LONG_BINGET")?);
                    let v = self.memo_get(i)?;
                    self.stack.push(v);
                }
                _ => {
                    return Err(TorchLegacyError::UnknownOpcode {
                        opcode: op,
                        offset: self.op_pos,
                    })
                }
            }
        }
    }

    /// REDUCE / NEWOBJ on an allow-listed global.
    fn call(&mut self, callable: &Value, args: &Value, newobj: bool) -> Result<Value> {
        let Value::Tuple(args) = args else {
            return Err(self.err(format!("call arguments are a {}, not a tuple", args.kind())));
        };
        match callable {
            Value::Global(Global::OrderedDict) if args.is_empty() => Ok(self.new_dict()),
            Value::Global(Global::RebuildTensorV2) if !newobj => self.rebuild_tensor(args),
            Value::Global(Global::RebuildParameter) if !newobj => match args.first() {
                Some(Value::Tensor(t)) if (2..=4).contains(&args.len()) => {
                    Ok(Value::Tensor(t.clone()))
                }
                _ => Err(self.err("_rebuild_parameter expects (tensor, requires_grad, hooks)")),
            },
            other => Err(self.err(format!("cannot call a {} here", other.kind()))),
        }
    }

    fn rebuild_tensor(&self, args: &[Value]) -> Result<Value> {
        if !(6..=7).contains(&args.len()) {
            return Err(self.err(format!("_rebuild_tensor_v2 with {} args", args.len())));
        }
        let Value::Storage(storage) = &args[0] else {
            return Err(self.err("_rebuild_tensor_v2: first arg is not a storage"));
        };
        let offset = args[1]
            .as_u64()
            .ok_or_else(|| self.err("bad storage offset"))?;
        let ints = |v: &Value, what: &str| -> Result<Vec<u64>> {
            let Value::Tuple(t) = v else {
                return Err(self.err(format!("tensor {what} is not a tuple")));
            };
            t.iter()
                .map(|x| {
                    x.as_u64()
                        .ok_or_else(|| self.err(format!("bad tensor {what} entry")))
                })
                .collect()
        };
        let size = ints(&args[2], "size")?;
        let stride = ints(&args[3], "stride")?;
        if size.len() != stride.len() {
            return Err(self.err("tensor size and stride lengths differ"));
        }
        Ok(Value::Tensor(Rc::new(TensorRef {
            storage: storage.clone(),
            offset,
            size,
            stride,
        })))
    }

    /// `('storage', torch.XStorage, key, location, numel, view_metadata)`.
    fn persistent_load(&mut self, pid: &Value) -> Result<Rc<StorageRef>> {
        let bad = |reason: &str| TorchLegacyError::BadPersistentId {
            offset: self.op_pos,
            reason: reason.to_string(),
        };
        let Value::Tuple(t) = pid else {
            return Err(bad("not a tuple"));
        };
        let [tag, ty, key, location, numel, view] = &t[..] else {
            return Err(bad("expected 6 fields"));
        };
        if !matches!(tag, Value::Str(s) if &**s == "storage") {
            return Err(bad("first field is not 'storage'"));
        }
        let Value::Global(Global::Storage(dtype)) = ty else {
            return Err(bad("second field is not a torch storage type"));
        };
        let Value::Str(key) = key else {
            return Err(bad("storage key is not a str"));
        };
        if !matches!(location, Value::Str(_)) {
            return Err(bad("location is not a str"));
        }
        let numel = numel
            .as_u64()
            .ok_or_else(|| bad("numel is not a non-negative int"))?;
        match self.storage_index.get(key) {
            Some(&i) if self.storages.get(i).map(|s| (s.1, s.2)) != Some((*dtype, numel)) => {
                return Err(bad(&format!(
                    "storage {key} redeclared with another dtype/numel"
                )));
            }
            Some(_) => {}
            None => {
                self.storage_index.insert(key.clone(), self.storages.len());
                self.storages.push((key.clone(), *dtype, numel));
            }
        }
        let root = StorageRef {
            key: key.clone(),
            dtype: *dtype,
            numel,
            view: None,
        };
        match view {
            Value::None => Ok(Rc::new(root)),
            Value::Tuple(v) => {
                let [vkey, off, len] = &v[..] else {
                    return Err(bad("view metadata arity"));
                };
                let vkey = match vkey {
                    Value::Str(s) => s.to_string(),
                    Value::Int(i) => i.to_string(),
                    _ => return Err(bad("view key type")),
                };
                if let Some(existing) = self.views.get(&vkey) {
                    return Ok(existing.clone());
                }
                let (off, len) = match (off.as_u64(), len.as_u64()) {
                    (Some(o), Some(l)) if o.checked_add(l).is_some_and(|e| e <= numel) => (o, l),
                    _ => return Err(bad("storage view outside its root storage")),
                };
                let s = Rc::new(StorageRef {
                    view: Some((off, len)),
                    ..root
                });
                self.views.insert(vkey, s.clone());
                Ok(s)
            }
            _ => Err(bad("view metadata is neither None nor a tuple")),
        }
    }
}
