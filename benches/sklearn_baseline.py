#!/usr/bin/env python3
"""scikit-learn anchor for `ovr bench train`: the same heads on the same cached features.

Reads ovr's feature files (safetensors, parsed here with the standard library
and numpy), standardizes with training statistics, and runs the sweep ovr's
default config runs, with scikit-learn's LogisticRegression (lbfgs, float64):

  specialists  one binary LogisticRegression per class, per class weighting in
               --weightings (default none,balanced, ovr's `class_weight = "auto"`)
               and per C of the grid; each head keeps the (weighting, C) with the
               least validation log-loss after a Platt fit of its validation
               scores (ovr's `selection = "calibrated-nll"`, Platt by
               `sklearn.calibration._sigmoid_calibration`);
  multinomial  the multinomial LogisticRegression per C (unweighted, ovr's
               `multiclass_class_weight = "none"`), C by the validation NLL.

Prints wall times, validation accuracy and test accuracy (one-vs-rest: argmax
of the Platt-normalised probabilities; multinomial: argmax of predict_proba).
ovr additionally extends grids where a best C sits on an end; scikit-learn is
given only the grid (less work for it, not more).

    python3 benches/sklearn_baseline.py ~/.cache/ovr/features/emoji40/efficientnet-lite0-<hash> \\
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


def platt_nll(scores, y):
    """Unweighted log-loss of a Platt fit of (scores, y) on the same rows."""
    from sklearn.calibration import _sigmoid_calibration

    a, b = _sigmoid_calibration(scores, y)
    p = 1.0 / (1.0 + np.exp(a * scores + b))
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), (a, b)


def nll(p, y):
    p = np.clip(p, 1e-15, 1.0)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("features_dir")
    ap.add_argument("--grid", default="0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3")
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--weightings", default="none,balanced")
    ap.add_argument("--warm-start", action="store_true", help="warm-start each C from the previous one")
    a = ap.parse_args()
    grid = sorted(float(c) for c in a.grid.split(","))
    weightings = [None if w == "none" else "balanced" for w in a.weightings.split(",")]
    xtr, ytr = read_features(f"{a.features_dir}/train.safetensors")
    xva, yva = read_features(f"{a.features_dir}/val.safetensors")
    xte, yte = read_features(f"{a.features_dir}/test.safetensors")
    mean, std = xtr.mean(0), xtr.std(0)
    std[std < 1e-6] = 1.0
    xtr, xva, xte = (xtr - mean) / std, (xva - mean) / std, (xte - mean) / std
    k = int(ytr.max()) + 1
    warnings.filterwarnings("ignore")

    def sweep(y, yv, cw):
        """Fits along the grid; returns [(C, model)]."""
        out = []
        m = LogisticRegression(class_weight=cw, tol=a.tol, max_iter=a.max_iter, warm_start=a.warm_start)
        for C in grid:
            if not a.warm_start:
                m = LogisticRegression(class_weight=cw, tol=a.tol, max_iter=a.max_iter)
            m.set_params(C=C)
            m.fit(xtr, y)
            out.append((C, (m.coef_.copy(), m.intercept_.copy())))
        return out

    t0 = time.perf_counter()
    pva = np.zeros((len(yva), k))
    pte = np.zeros((len(yte), k))
    for c in range(k):
        ytb, yvb = (ytr == c).astype(int), (yva == c).astype(int)
        best = None
        for cw in weightings:
            for C, (w, b) in sweep(ytb, yvb, cw):
                s = xva @ w[0] + b[0]
                loss, ab = platt_nll(s, yvb)
                if best is None or loss < best[0]:
                    best = (loss, w, b, ab)
        _, w, b, (pa, pb) = best
        pva[:, c] = 1.0 / (1.0 + np.exp(pa * (xva @ w[0] + b[0]) + pb))
        pte[:, c] = 1.0 / (1.0 + np.exp(pa * (xte @ w[0] + b[0]) + pb))
    t_ovr = time.perf_counter() - t0
    acc_ovr = float(np.mean(pva.argmax(1) == yva))
    acc_ovr_test = float(np.mean(pte.argmax(1) == yte))

    t0 = time.perf_counter()
    best = None
    m = LogisticRegression(tol=a.tol, max_iter=a.max_iter, warm_start=a.warm_start)
    for C in grid:
        if not a.warm_start:
            m = LogisticRegression(tol=a.tol, max_iter=a.max_iter)
        m.set_params(C=C)
        m.fit(xtr, ytr)
        loss = nll(m.predict_proba(xva), yva)
        if best is None or loss < best[0]:
            best = (loss, C, float(np.mean(m.predict(xva) == yva)), float(np.mean(m.predict(xte) == yte)))
    t_multi = time.perf_counter() - t0

    import sklearn

    fits = k * len(grid) * len(weightings)
    print(f"scikit-learn {sklearn.__version__}, {len(ytr)} train x {xtr.shape[1]}, {k} classes, grid of {len(grid)} C, "
          f"tol {a.tol:g}, weightings {a.weightings}, warm start {a.warm_start}")
    print()
    print("| approach | fits | wall s | val acc | test acc |")
    print("|---|---:|---:|---:|---:|")
    print(f"| one-vs-rest (binary LogisticRegression per class and weighting) | {fits} | {t_ovr:.2f} | {100 * acc_ovr:.2f}% | {100 * acc_ovr_test:.2f}% |")
    print(f"| multinomial LogisticRegression (C = {best[1]:g}) | {len(grid)} | {t_multi:.2f} | {100 * best[2]:.2f}% | {100 * best[3]:.2f}% |")
    print(f"| total | {fits + len(grid)} | {t_ovr + t_multi:.2f} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
