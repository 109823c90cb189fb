#!/usr/bin/env python3
"""Oracle for the calibration-bin figures of src/metrics/reliability_extra.rs:
classwise ECE, adaptive (equal-mass) ECE and the Clopper-Pearson interval of
every reliability bin's accuracy.

* Classwise ECE (Kull et al. 2019): for each class j, the probabilities p_ij of
  all rows in 15 equal-width bins (the project's float32 edge rule, see
  make_metric_fixtures.py: a value goes to the first bin whose upper edge is
  >= it; exactly 1.0 is in the last bin); ECE_j = sum_b n_b/N |mean 1[y=j] -
  mean p_j|; classwise ECE = 100 * mean over classes.
* Adaptive ECE: the rows sorted by top confidence (stable sort, ties by row
  index), cut into 15 bins of equal count with numpy.array_split (the first
  N mod 15 bins one row larger); ECE = 100 * sum_b n_b/N |acc_b - conf_b|.
* Clopper-Pearson: scipy.stats.binomtest(correct, n).proportion_ci(0.95,
  method="exact") for each non-empty 15-bin reliability bin.

Writes tests/fixtures/metrics/calibration_bins.json. Run from the crate root:
    python3 tests/reference/make_calibration_bins_fixtures.py   (numpy, scipy)
"""

import json
import os

import numpy as np
from scipy.stats import binomtest

BINS = 15
RNG = np.random.default_rng(17)


def f32_list(x):
    x32 = np.asarray(x, dtype=np.float32).ravel()
    out = [float(str(v)) for v in x32]
    assert np.array_equal(np.asarray(out, dtype=np.float32), x32)
    return out


def bin_of(values32):
    edges32 = (np.arange(BINS + 1, dtype=np.float64) / BINS).astype(np.float32)
    return np.minimum(np.searchsorted(edges32[1:], values32, side="left"), BINS - 1)


def classwise(y, p32):
    n, k = p32.shape
    total = 0.0
    for j in range(k):
        idx = bin_of(p32[:, j])
        pj = p32[:, j].astype(np.float64)
        yj = (y == j).astype(np.float64)
        e = 0.0
        for b in range(BINS):
            m = idx == b
            if m.any():
                e += m.sum() / n * abs(yj[m].mean() - pj[m].mean())
        total += e
    return 100.0 * total / k


def adaptive(y, p32):
    conf = p32.max(axis=1).astype(np.float64)
    correct = (p32.argmax(axis=1) == y).astype(np.float64)
    order = np.argsort(conf, kind="stable")
    e = 0.0
    for part in np.array_split(order, BINS):
        if len(part):
            e += len(part) / len(y) * abs(correct[part].mean() - conf[part].mean())
    return 100.0 * e


def clopper_pearson(y, p32):
    idx = bin_of(p32.max(axis=1))
    correct = p32.argmax(axis=1) == y
    out = []
    for b in range(BINS):
        m = idx == b
        if m.any():
            ci = binomtest(int(correct[m].sum()), int(m.sum())).proportion_ci(0.95, method="exact")
            out.append({"bin": b, "count": int(m.sum()), "correct": int(correct[m].sum()),
                        "low": float(ci.low), "high": float(ci.high)})
    return out


def main():
    n, k = 300, 5
    z = RNG.normal(0, 2.0, size=(n, k))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    p[0] = np.array([1.0, 0, 0, 0, 0], dtype=np.float32)  # confidence exactly 1.0
    q = p.astype(np.float64) ** 0.8
    q /= q.sum(axis=1, keepdims=True)
    y = np.array([RNG.choice(k, p=row) for row in q])
    y[0] = 0
    out = {"note": "see tests/reference/make_calibration_bins_fixtures.py", "bins": BINS,
           "k": k, "labels": [int(v) for v in y], "probs": f32_list(p),
           "classwise_ece": classwise(y, p), "adaptive_ece": adaptive(y, p),
           "clopper_pearson": clopper_pearson(y, p)}
    path = os.path.join("tests", "fixtures", "metrics", "calibration_bins.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {path}: classwise {out['classwise_ece']:.4f}, adaptive {out['adaptive_ece']:.4f}, "
          f"{len(out['clopper_pearson'])} bins")


if __name__ == "__main__":
    main()
