//! The pickle VM's state and primitives, and its entry point [`unpickle`].
//!
//! Data flow (assets stage): wheel -> legacy `.pth` -> pickle VM -> tensors -> safetensors.
//! This file holds the `Vm` state (input cursor, stack, marks, memo, list/dict arena, storages
//! seen) and the primitives every opcode is built from: bounds-checked reads of the input,
//! stack and mark handling, memo access, and appends into the arena. The opcode loop is in
//! the child `opcodes`; calls on allow-listed globals and persistent ids are in `rebuild`.

use std::collections::HashMap;
use std::rc::Rc;

use super::values::{Dict, StorageRef, Unpickled, Value};
use super::Result;
use crate::assets::torch_format::{TorchDType, TorchLegacyError};

mod opcodes;
mod rebuild;

/// Longest `GLOBAL` line (module or name) accepted.
const MAX_GLOBAL_LINE: usize = 512;

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
}
