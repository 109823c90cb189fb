//! The opcode interpreter of the pickle VM.
//!
//! Data flow (assets stage): wheel -> legacy `.pth` -> pickle VM -> tensors -> safetensors.
//! This file holds `Vm::run`, the fetch-and-dispatch loop over the pickle opcodes torch emits
//! (protocol 2 plus a few harmless later ones), up to and including `STOP`. Every other
//! opcode is refused as [`TorchLegacyError::UnknownOpcode`]. Reading primitives live in the
//! parent `vm`; `REDUCE`/`NEWOBJ`/`BINPERSID` are delegated to the sibling `rebuild`.

use std::rc::Rc;

use super::{Result, Vm};
use crate::assets::pickle_vm::values::{Global, Value};
use crate::assets::torch_format::TorchLegacyError;

impl Vm<'_> {
    pub(super) fn run(&mut self) -> Result<Value> {
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
}
