//! Calls on allow-listed globals and persistent storage ids in the pickle VM.
//!
//! Data flow (assets stage): wheel -> legacy `.pth` -> pickle VM -> tensors -> safetensors.
//! This file holds what turns pickle values into torch references: `REDUCE`/`NEWOBJ` on an
//! allow-listed [`Global`] (`OrderedDict()`, `_rebuild_tensor_v2` -> [`TensorRef`],
//! `_rebuild_parameter`) and `BINPERSID` storage ids -> [`StorageRef`] (root storages and
//! old-format views). Nothing is executed; every field is type- and range-checked.

use std::rc::Rc;

use super::{Result, Vm};
use crate::assets::pickle_vm::values::{Global, StorageRef, TensorRef, Value};
use crate::assets::torch_format::TorchLegacyError;

impl Vm<'_> {
    /// REDUCE / NEWOBJ on an allow-listed global.
    pub(super) fn call(&mut self, callable: &Value, args: &Value, newobj: bool) -> Result<Value> {
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
    pub(super) fn persistent_load(&mut self, pid: &Value) -> Result<Rc<StorageRef>> {
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
