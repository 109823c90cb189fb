#!/usr/bin/env python3
"""scikit-learn anchor for `ovr bench train`: the same heads on the same cached features.

Reads ovr's feature files (safetensors, parsed here with the standard library
and numpy), standardizes with training statistics, and for every C of the grid
fits (a) one binary LogisticRegression per class (one-vs-rest,
class_weight='balanced') and (b) the multinomial LogisticRegression
(class_weight='balanced'), lbfgs, as ovr does. Picks C per head by the
validation log-loss (the same rule as ovr), prints wall times and validation
accuracy (one-vs-rest: argmax of the raw decision function; multinomial:
argmax of the probabilities).

    python3 benches/sklearn_baseline.py ~/.cache/ovr/features/emoji40/efficientnet-lite0-0fc36dcac2d8 \\
        --grid 0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3 --tol 1e-6

Thread count: set OMP_NUM_THREADS / OPENBLAS_NUM_THREADS to match ovr's.
"""
import argparse
import json
import struct
import sys
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression


def read_features(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dtype = {"F32": np.float32, "U32": np.uint32}[info["dtype"]]
        out[name] = np.frombuffer(raw[base + a : base + b], dtype=dtype).reshape(info["shape"])
    return out["features"].astype(np.float64), out["labels"].astype(np.int64)


def weighted_logloss(p, y, w):
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(np.sum(w * -np.log(p[np.arange(len(y)), y])) / np.sum(w))


def balanced(y, k):
    counts = np.bincount(y, minlength=k)
    return len(y) / (k * counts[y])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("features_dir")
    ap.add_argument("--grid", default="0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3")
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--max-iter", type=int, default=500)
    a = ap.parse_args()
    grid = [float(c) for c in a.grid.split(",")]
    xtr, ytr = read_features(f"{a.features_dir}/train.safetensors")
    xva, yva = read_features(f"{a.features_dir}/val.safetensors")
    mean, std = xtr.mean(0), xtr.std(0)
    std[std < 1e-6] = 1.0
    xtr, xva = (xtr - mean) / std, (xva - mean) / std
    k = int(ytr.max()) + 1
    warnings.filterwarnings("ignore")

    t0 = time.perf_counter()
    scores = np.zeros((len(yva), k))
    for c in range(k):
        ytb, yvb = (ytr == c).astype(int), (yva == c).astype(int)
        wv = balanced(yvb, 2)
        best = None
        for C in grid:
            m = LogisticRegression(C=C, class_weight="balanced", tol=a.tol, max_iter=a.max_iter).fit(xtr, ytb)
            loss = weighted_logloss(m.predict_proba(xva), yvb, wv)
            if best is None or loss < best[0]:
                best = (loss, m)
        scores[:, c] = best[1].decision_function(xva)
    t_ovr = time.perf_counter() - t0
    acc_ovr = float(np.mean(scores.argmax(1) == yva))

    t0 = time.perf_counter()
    wv = balanced(yva, k)
    best = None
    for C in grid:
        m = LogisticRegression(C=C, class_weight="balanced", tol=a.tol, max_iter=a.max_iter).fit(xtr, ytr)
        loss = weighted_logloss(m.predict_proba(xva), yva, wv)
        if best is None or loss < best[0]:
            best = (loss, m)
    t_multi = time.perf_counter() - t0
    acc_multi = float(np.mean(best[1].predict(xva) == yva))

    import sklearn

    print(f"scikit-learn {sklearn.__version__}, {len(ytr)} train x {xtr.shape[1]}, {k} classes, grid of {len(grid)} C")
    print()
    print("| approach | fits | wall s | val acc |")
    print("|---|---:|---:|---:|")
    print(f"| one-vs-rest (binary LogisticRegression per class) | {k * len(grid)} | {t_ovr:.2f} | {100 * acc_ovr:.2f}% |")
    print(f"| multinomial LogisticRegression | {len(grid)} | {t_multi:.2f} | {100 * acc_multi:.2f}% |")
    print(f"| total | {k * len(grid) + len(grid)} | {t_ovr + t_multi:.2f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
