#!/usr/bin/env python3
"""The Python side of benches/photos_vs_pillow.sh: 12 MP test photos, and a
careful Pillow + onnxruntime pipeline to compare `ovr extract` with.

Subcommands
-----------
  make DIR [--count 40] [--size 4000x3000] [--quality 90]
      Writes DIR/china/NNN.jpg and DIR/flower/NNN.jpg: scikit-learn's two
      sample photos (sklearn/datasets/images/, BSD-3) upscaled (bicubic) to
      --size with per-image Gaussian grain (sigma 6, seeded) so no two files
      are equal and the JPEG entropy is that of a real photo (about 3.3 MB
      each at quality 90). Deterministic: the same arguments give the same
      files.
  varied DIR
      36 JPEGs (quality 90) for benches/decode_accuracy.sh: 3 random crops
      (70 % of each side) of each sample photo, upscaled to 1792x1344,
      3584x2688 and 7168x5376 (short side 3x 448: DCT scales 1/2, 1/4
      and 1/4, the largest ovr uses), with and without grain.
  pipeline DIR [--threads 2] [--batch 32] [--prefetch 0]
      For every image: Image.open, draft("RGB", (448, 448)) (libjpeg DCT
      scaling, the same rule as ovr: the largest reduction leaving both sides
      >= 448), EXIF transpose, the centred square of the short side resized
      to 224x224 (bicubic, Pillow's antialiased filter), (x - 127) / 128,
      NCHW float32, batches of --batch through EfficientNet-Lite0 in
      onnxruntime (intra-op --threads, the graph of benches/onnxruntime_baseline.py,
      "features" output, 1280-d). --prefetch N decodes in N worker threads
      (Pillow releases the GIL while decoding) overlapping the network;
      0 decodes in the main thread between batches.
  decode DIR [--threads 1]
      The decode + resize part alone (no network), in --threads threads.

pipeline and decode print one JSON line: images, seconds (the loop only:
building the ONNX graph from the .pth and creating the session are not
timed), images_per_s, peak_rss_mb (ru_maxrss of this process, which
includes the graph building).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 224


def make(args) -> int:
    import sklearn

    src = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images")
    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    for i in range(args.count):
        stem = ("china", "flower")[i % 2]
        out = os.path.join(args.dir, stem, f"{i:03d}.jpg")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        img = Image.open(os.path.join(src, f"{stem}.jpg")).convert("RGB").resize((w, h), Image.BICUBIC)
        a = np.asarray(img).astype(np.int16)
        a += rng.normal(0, 6, size=(h, w, 1)).astype(np.int16)
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(out, quality=args.quality)
    print(f"wrote {args.count} JPEGs of {w}x{h} under {args.dir}")
    return 0


def varied(args) -> int:
    import sklearn

    src = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images")
    rng = np.random.default_rng(1)
    n = 0
    for stem in ("china", "flower"):
        photo = Image.open(os.path.join(src, f"{stem}.jpg")).convert("RGB")
        pw, ph = photo.size
        for c in range(3):
            cw, ch = int(pw * 0.7), int(ph * 0.7)
            x, y = int(rng.integers(0, pw - cw)), int(rng.integers(0, ph - ch))
            crop = photo.crop((x, y, x + cw, y + ch))
            for w, h in ((1792, 1344), (3584, 2688), (7168, 5376)):
                big = crop.resize((w, h), Image.BICUBIC)
                for grain in (0, 6):
                    a = np.asarray(big).astype(np.int16)
                    if grain:
                        a += rng.normal(0, grain, size=(h, w, 1)).astype(np.int16)
                    out = os.path.join(args.dir, stem, f"c{c}_{w}x{h}_g{grain}.jpg")
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(out, quality=90)
                    n += 1
    print(f"wrote {n} JPEGs under {args.dir}")
    return 0


def files(root: str) -> list[str]:
    out = []
    for d, _, names in os.walk(root):
        out += [os.path.join(d, n) for n in names if n.lower().endswith((".jpg", ".jpeg"))]
    return sorted(out)


def prepare(path: str) -> np.ndarray:
    im = Image.open(path)
    im.draft("RGB", (2 * SIZE, 2 * SIZE))
    im = ImageOps.exif_transpose(im).convert("RGB")
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) / 2, (h - s) / 2
    im = im.resize((SIZE, SIZE), Image.BICUBIC, box=(left, top, left + s, top + s))
    return np.asarray(im, dtype=np.float32)


def to_batch(pixels: list[np.ndarray]) -> np.ndarray:
    x = np.stack(pixels).transpose(0, 3, 1, 2)
    return np.ascontiguousarray((x - 127.0) / 128.0, dtype=np.float32)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def session(threads: int):
    import onnxruntime as ort

    spec = importlib.util.spec_from_file_location("onnxruntime_baseline", os.path.join(HERE, "onnxruntime_baseline.py"))
    base = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = base
    spec.loader.exec_module(base)
    ref = base.load_reference_module()
    tensors, _ = ref.load_legacy_state_dict(ref.read_bytes(base.default_weights_path(), ".pth"))
    model = base.GraphBuilder(ref, tensors).build(ref.build_blocks("lite0"), SIZE)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def pipeline(args) -> int:
    paths = files(args.dir)
    sess = session(args.threads)
    sess.run(["features"], {"input": np.zeros((1, 3, SIZE, SIZE), np.float32)})  # warm-up
    feats = []
    t = time.perf_counter()
    if args.prefetch > 0:
        with ThreadPoolExecutor(args.prefetch) as pool:
            decoded = pool.map(prepare, paths)
            batch = []
            for px in decoded:
                batch.append(px)
                if len(batch) == args.batch:
                    feats.append(sess.run(["features"], {"input": to_batch(batch)})[0])
                    batch = []
            if batch:
                feats.append(sess.run(["features"], {"input": to_batch(batch)})[0])
    else:
        for i in range(0, len(paths), args.batch):
            batch = [prepare(p) for p in paths[i:i + args.batch]]
            feats.append(sess.run(["features"], {"input": to_batch(batch)})[0])
    dt = time.perf_counter() - t
    rows = sum(f.shape[0] for f in feats)
    assert rows == len(paths) and feats[0].shape[1] == 1280
    print(json.dumps({"what": "pillow-draft+onnxruntime", "threads": args.threads, "prefetch": args.prefetch,
                      "images": rows, "seconds": round(dt, 3), "images_per_s": round(rows / dt, 2),
                      "peak_rss_mb": round(peak_rss_mb(), 1)}))
    return 0


def decode(args) -> int:
    paths = files(args.dir)
    t = time.perf_counter()
    if args.threads > 1:
        with ThreadPoolExecutor(args.threads) as pool:
            n = sum(1 for _ in pool.map(prepare, paths))
    else:
        n = sum(1 for _ in map(prepare, paths))
    dt = time.perf_counter() - t
    print(json.dumps({"what": "pillow-draft decode+resize", "threads": args.threads, "images": n,
                      "seconds": round(dt, 3), "images_per_s": round(n / dt, 2),
                      "peak_rss_mb": round(peak_rss_mb(), 1)}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("--count", type=int, default=40)
    m.add_argument("--size", default="4000x3000")
    m.add_argument("--quality", type=int, default=90)
    v = sub.add_parser("varied")
    v.add_argument("dir")
    p = sub.add_parser("pipeline")
    p.add_argument("dir")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--prefetch", type=int, default=0)
    d = sub.add_parser("decode")
    d.add_argument("dir")
    d.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    return {"make": make, "varied": varied, "pipeline": pipeline, "decode": decode}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
