//! Minimal allow-listed pickle virtual machine for PyTorch's legacy `torch.save` format.
//!
//! Data flow (assets stage): wheel -> legacy `.pth` -> **pickle VM** -> tensors ->
//! safetensors. Used only by [`super::torch_legacy`]. It understands the protocol-2 opcodes
//! torch emits (plus a few harmless later ones), resolves `GLOBAL` against a fixed allow-list
//! (like `torch.load(weights_only=True)`), turns `BINPERSID` storage ids into [`StorageRef`]s
//! and `_rebuild_tensor_v2` calls into [`TensorRef`]s. Nothing is ever executed. Lists and
//! dicts live in an arena and are referred to by index, so memo sharing costs O(1) and
//! self-referencing containers cannot cause recursion. Every length is checked against the
//! remaining input before anything is allocated, so memory stays linear in the input size.
//!
//! This file is the module root; it holds no logic. The parts:
//! - `values`: the allow-list of globals and the value types the VM produces
//!   ([`Value`], [`Dict`], [`Unpickled`], ...);
//! - `vm`: [`unpickle`], the VM state and its input/stack/memo primitives, with children
//!   `vm/opcodes` (the opcode interpreter loop) and `vm/rebuild` (calls on allow-listed
//!   globals and persistent storage ids).

mod values;
mod vm;

pub use values::{Dict, Global, StorageRef, TensorRef, Unpickled, Value};
pub use vm::unpickle;

use super::torch_format::TorchLegacyError;

type Result<T> = std::result::Result<T, TorchLegacyError>;
