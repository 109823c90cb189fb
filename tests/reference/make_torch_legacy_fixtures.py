#!/usr/bin/env python3
"""Writes the fixtures for `src/assets/torch_legacy.rs` (PyTorch LEGACY, non-zip `torch.save`).

torch is NOT needed: we emulate `torch.serialization._legacy_save` exactly, using Python's
own `pickle` (protocol 2) with a custom `persistent_id`, and fake `torch` / `torch._utils`
modules registered in `sys.modules` so that pickle emits the same GLOBAL opcodes as torch
(`torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`, ...). Nothing here unpickles
anything.

Layout written (as torch's legacy writer does):
  pickle(MAGIC_NUMBER) pickle(1001) pickle(sys_info) pickle(obj, persistent_id)
  pickle(sorted storage keys) then per key: <u64 LE numel><numel * elem_size raw LE bytes>

Outputs in tests/fixtures/torch_legacy/:
  small.pth, small.expected.json   tensors of several dtypes, shared storage, strided views
  evil_os_system.pth               main pickle = GLOBAL os.system + REDUCE (hand-crafted bytes)
  truncated.pth                    small.pth cut in the middle of the storage records

Usage: python3 tests/reference/make_torch_legacy_fixtures.py   (from the crate root)
"""

import collections
import io
import json
import os
import pickle
import struct
import sys
import types

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "torch_legacy")

# --- fake torch modules so pickle writes `ctorch._utils\n_rebuild_tensor_v2\n` etc. -------------
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
torch.__path__ = []  # make it a package
torch._utils = torch_utils
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks):
    raise RuntimeError("never called: fixtures are only written")


_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2

STORAGE_TYPES = {}  # numpy dtype str -> fake storage class
for cls_name, np_dtype in [
    ("FloatStorage", "<f4"),
    ("DoubleStorage", "<f8"),
    ("HalfStorage", "<f2"),
    ("LongStorage", "<i8"),
    ("IntStorage", "<i4"),
    ("ByteStorage", "u1"),
]:
    cls = type(cls_name, (), {"__module__": "torch"})
    setattr(torch, cls_name, cls)
    STORAGE_TYPES[np.dtype(np_dtype).str] = cls

RUST_DTYPE = {"<f4": "F32", "<f8": "F64", "<f2": "F16", "<i8": "I64", "<i4": "I32", "|u1": "U8"}


class Storage:
    """A flat typed buffer; serialized only through persistent_id (like torch storages)."""

    def __init__(self, key, array):
        self.key = key
        self.array = np.ascontiguousarray(array).ravel()
        self.cls = STORAGE_TYPES[self.array.dtype.str]


class Tensor:
    """A strided view into a Storage; reduces exactly like torch.Tensor (legacy, v2)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def __reduce_ex__(self, protocol):
        args = (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())
        return (_rebuild_tensor_v2, args)

    def values(self):
        a = self.storage.array
        item = a.itemsize
        view = np.lib.stride_tricks.as_strided(
            a[self.offset :], shape=self.size, strides=[s * item for s in self.stride]
        )
        return np.array(view).ravel()


class LegacyPickler(pickle.Pickler):
    def __init__(self, f, serialized):
        super().__init__(f, protocol=2)
        self.serialized = serialized

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            self.serialized[obj.key] = obj
            return ("storage", obj.cls, obj.key, "cpu", obj.array.size, None)
        return None


def legacy_save(obj):
    f = io.BytesIO()
    pickle.dump(MAGIC_NUMBER, f, protocol=2)
    pickle.dump(PROTOCOL_VERSION, f, protocol=2)
    sys_info = dict(
        protocol_version=PROTOCOL_VERSION,
        little_endian=True,
        type_sizes=dict(short=2, int=4, long=8),
    )
    pickle.dump(sys_info, f, protocol=2)
    serialized = {}
    LegacyPickler(f, serialized).dump(obj)
    keys = sorted(serialized.keys())
    pickle.dump(keys, f, protocol=2)
    storages_start = f.tell()
    for key in keys:
        arr = serialized[key].array
        f.write(struct.pack("<q", arr.size))
        f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    return f.getvalue(), storages_start


def header_pickles():
    f = io.BytesIO()
    pickle.dump(MAGIC_NUMBER, f, protocol=2)
    pickle.dump(PROTOCOL_VERSION, f, protocol=2)
    pickle.dump(dict(protocol_version=PROTOCOL_VERSION, little_endian=True,
                     type_sizes=dict(short=2, int=4, long=8)), f, protocol=2)
    return f.getvalue()


def build_small():
    a = Storage("140001", np.arange(6, dtype=np.float32) * 0.5 - 1.25)
    shared = Storage("140002", (np.arange(12, dtype=np.float32) + 1.0) / 8.0)
    nbt = Storage("140003", np.array([123456789012], dtype=np.int64))
    dbl = Storage("140004", np.array([1.0 / 3.0, -2.5e-300, 1e300, 0.1], dtype=np.float64))
    half = Storage("140005", np.array([1.5, -0.099975586, 65504.0, 6.1035156e-05, 5.9604645e-08, 0.0],
                                      dtype=np.float16))
    conv = Storage("140006", np.linspace(-1.0, 1.0, 12, dtype=np.float32))
    ints = Storage("140007", np.array([-7, 0, 2147483647, -2147483648], dtype=np.int32))
    sd = collections.OrderedDict()
    sd["a.weight"] = Tensor(a, 0, (2, 3), (3, 1))
    sd["shared.base"] = Tensor(shared, 0, (3, 4), (4, 1))
    # transposed + offset view of the same storage: element (i, j) = storage[1 + i + 4 j]
    sd["shared.t"] = Tensor(shared, 1, (2, 3), (1, 4))
    sd["bn.num_batches_tracked"] = Tensor(nbt, 0, (), ())
    sd["c.double"] = Tensor(dbl, 0, (4,), (1,))
    # channels-last conv weight (N=2, C=3, H=1, W=2), like the real EfficientNet-Lite files
    sd["conv.weight"] = Tensor(conv, 0, (2, 3, 1, 2), (6, 1, 6, 3))
    # a trailing view with offset into a half storage
    sd["h.half"] = Tensor(half, 1, (5,), (1,))
    sd["i.int"] = Tensor(ints, 0, (2, 2), (1, 2))
    # torch state_dicts carry `_metadata` (emitted as BUILD after the SETITEMS)
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
    return sd


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    sd = build_small()
    data, storages_start = legacy_save(sd)
    with open(os.path.join(OUT_DIR, "small.pth"), "wb") as f:
        f.write(data)
    expected = {
        "tensors": [
            {
                "name": name,
                "dtype": RUST_DTYPE[t.storage.array.dtype.str],
                "shape": list(t.size),
                "values": [v.item() for v in t.values()],
                # exact check: IEEE float64 bit patterns (JSON float parsers may be off by an ulp)
                **(
                    {"f64_bits": [int(b) for b in t.values().astype(np.float64).view(np.uint64)]}
                    if t.values().dtype.kind == "f"
                    else {}
                ),
            }
            for name, t in sd.items()
        ]
    }
    with open(os.path.join(OUT_DIR, "small.expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")

    # truncated: cut in the middle of the storage records
    cut = storages_start + (len(data) - storages_start) // 2
    with open(os.path.join(OUT_DIR, "truncated.pth"), "wb") as f:
        f.write(data[:cut])

    # evil: main pickle = os.system("echo pwned") via GLOBAL + REDUCE. Hand-crafted, never run.
    evil_main = (
        b"\x80\x02"  # PROTO 2
        b"cos\nsystem\n"  # GLOBAL 'os system'
        b"q\x00"  # BINPUT 0
        b"X\x0a\x00\x00\x00echo pwned"  # BINUNICODE
        b"q\x01"  # BINPUT 1
        b"\x85"  # TUPLE1
        b"q\x02"  # BINPUT 2
        b"R"  # REDUCE
        b"q\x03"  # BINPUT 3
        b"."  # STOP
    )
    evil = header_pickles() + evil_main + pickle.dumps([], protocol=2)
    with open(os.path.join(OUT_DIR, "evil_os_system.pth"), "wb") as f:
        f.write(evil)

    for name in sorted(os.listdir(OUT_DIR)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT_DIR, name))} bytes")


if __name__ == "__main__":
    main()
