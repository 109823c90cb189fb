#!/usr/bin/env python3
"""Compares the features of two `ovr extract` runs image by image.

    python3 benches/compare_features.py DIR_A DIR_B [--label TEXT]

DIR_A and DIR_B hold ovr feature files ({train,val,test}.safetensors, as
written under <cache>/features/<dataset>-<hash>/<backbone>-<hash>/); rows are
matched by their keys (image paths). Prints one Markdown row: images, max and
mean |a - b|, max relative difference ||a - b|| / ||b|| over images, mean
relative difference, and the minimum and mean cosine similarity. B is the
reference. Only numpy is needed (the safetensors format is read by hand).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys

import numpy as np


def load(path: str) -> dict[str, np.ndarray]:
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
        data = fh.read()
    meta = header.pop("__metadata__")
    t = header["features"]
    a, b = t["data_offsets"]
    feats = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"])
    keys = json.loads(meta["keys"])
    return dict(zip(keys, feats))


def load_dir(d: str) -> dict[str, np.ndarray]:
    out = {}
    for split in ("train", "val", "test"):
        p = os.path.join(d, f"{split}.safetensors")
        if os.path.exists(p):
            out.update(load(p))
    if not out:
        sys.exit(f"no feature files in {d}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--label", default="a vs b")
    ap.add_argument("--group", metavar="REGEX",
                    help="also one row per value of the regex's first group in the keys")
    args = ap.parse_args()
    a, b = load_dir(args.a), load_dir(args.b)
    keys = sorted(set(a) & set(b))
    if not keys:
        sys.exit("no common keys")
    row(args.label, keys, a, b)
    if args.group:
        import re
        groups: dict[str, list[str]] = {}
        for k in keys:
            m = re.search(args.group, k)
            if m:
                groups.setdefault(m.group(1), []).append(k)
        for g, ks in sorted(groups.items()):
            row(f"{args.label}: {g}", ks, a, b)
    return 0


def row(label: str, keys: list[str], a: dict, b: dict) -> None:
    A = np.stack([a[k] for k in keys]).astype(np.float64)
    B = np.stack([b[k] for k in keys]).astype(np.float64)
    d = np.abs(A - B)
    rel = np.linalg.norm(A - B, axis=1) / np.maximum(np.linalg.norm(B, axis=1), 1e-12)
    cos = (A * B).sum(1) / np.maximum(np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1), 1e-12)
    print(f"| {label} | {len(keys)} | {d.max():.4g} | {d.mean():.4g} | {rel.max():.4g} | "
          f"{rel.mean():.4g} | {cos.min():.6f} | {cos.mean():.6f} |")


if __name__ == "__main__":
    sys.exit(main())
