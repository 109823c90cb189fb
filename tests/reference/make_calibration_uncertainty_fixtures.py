#!/usr/bin/env python3
"""Oracle for src/metrics/calibration_uncertainty.rs (ECE intervals, the ECE of a
perfectly calibrated model, paired ECE/NLL/Brier difference intervals).

Independent of the Rust code: numpy only, its own RNG (PCG64), so the Rust side
is compared on distributions, not on identical draws.

* Exact expected ECE under perfect calibration: the bins depend only on the
  confidences, so each bin's number of correct rows is Poisson-binomial with
  the rows' confidences; E|S/n_b - mean(c)| comes from the exact distribution of
  S (dynamic programming). ECE = 100 * sum_b n_b/N * E|...|. No sampling.
* The same quantity by consistency resampling (R draws), its 95th percentile and
  the p-value (1 + #{ECE_r >= ECE_obs}) / (1 + R).
* Bootstrap (R draws of N rows with replacement) of the ECE of one approach:
  2.5 / 97.5 percentiles and the standard deviation; paired bootstrap of
  ECE / NLL / Brier differences A - B.

The binning is the project's (make_metric_fixtures.py's ece_ref): float32 edges
b/B, a confidence goes to the first bin whose upper edge is >= it.

Writes tests/fixtures/metrics/calibration_uncertainty.json. Run from the crate
root: python3 tests/reference/make_calibration_uncertainty_fixtures.py
"""

import json
import os

import numpy as np

BINS = 15
R = 20000
RNG = np.random.default_rng(20261202)


def f32_list(x):
    x32 = np.asarray(x, dtype=np.float32).ravel()
    out = [float(str(v)) for v in x32]
    assert np.array_equal(np.asarray(out, dtype=np.float32), x32)
    return out


def rows_of(y, p32):
    conf32 = p32.max(axis=1)
    pred = p32.argmax(axis=1)
    edges32 = (np.arange(BINS + 1, dtype=np.float64) / BINS).astype(np.float32)
    idx = np.minimum(np.searchsorted(edges32[1:], conf32, side="left"), BINS - 1)
    conf = conf32.astype(np.float64)
    correct = (pred == y).astype(np.float64)
    p64 = p32.astype(np.float64)
    nll = -np.log(np.maximum(p64[np.arange(len(y)), y], 1e-15))
    onehot = np.zeros_like(p64)
    onehot[np.arange(len(y)), y] = 1.0
    brier = ((p64 - onehot) ** 2).sum(axis=1)
    return idx, conf, correct, nll, brier


def ece(idx, conf, correct, rows=None):
    if rows is None:
        rows = np.arange(len(conf))
    gaps = np.bincount(idx[rows], weights=correct[rows] - conf[rows], minlength=BINS)
    return 100.0 * np.abs(gaps).sum() / len(rows)


def exact_perfect_mean(idx, conf):
    n = len(conf)
    total = 0.0
    for b in range(BINS):
        c = conf[idx == b]
        if len(c) == 0:
            continue
        dist = np.array([1.0])
        for ci in c:  # Poisson-binomial by convolution
            dist = np.convolve(dist, [1.0 - ci, ci])
        s = np.arange(len(c) + 1)
        total += len(c) / n * float((dist * np.abs(s / len(c) - c.mean())).sum())
    return 100.0 * total


def probs_case(n, k, sharp):
    logits = RNG.normal(0.0, sharp, size=(n, k))
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return p


def main():
    n, k = 400, 6
    pa = probs_case(n, k, 2.0)
    # Labels drawn from a tempered version of pa, so pa is mis-calibrated.
    q = pa.astype(np.float64) ** 0.93
    q /= q.sum(axis=1, keepdims=True)
    y = np.array([RNG.choice(k, p=row) for row in q])
    pb = probs_case(n, k, 1.0)
    pb = (0.5 * pb + 0.5 * pa).astype(np.float32)
    pb /= pb.sum(axis=1, keepdims=True)
    pb = pb.astype(np.float32)

    ia, ca, ka, na, ba = rows_of(y, pa)
    ib, cb, kb, nb, bb = rows_of(y, pb)
    obs = ece(ia, ca, ka)

    perfect = np.empty(R)
    for r in range(R):
        perfect[r] = ece(ia, ca, (RNG.random(n) < ca).astype(np.float64))
    boot = np.empty(R)
    diffs = np.empty((R, 3))
    for r in range(R):
        rows = RNG.integers(0, n, n)
        boot[r] = ece(ia, ca, ka, rows)
        diffs[r] = [ece(ia, ca, ka, rows) - ece(ib, cb, kb, rows),
                    na[rows].mean() - nb[rows].mean(), ba[rows].mean() - bb[rows].mean()]

    out = {
        "note": "see tests/reference/make_calibration_uncertainty_fixtures.py",
        "bins": BINS, "resamples": R, "n": n, "k": k,
        "labels": [int(v) for v in y],
        "probs_a": f32_list(pa), "probs_b": f32_list(pb),
        "ece_a": obs,
        "perfect_exact_mean": exact_perfect_mean(ia, ca),
        "perfect_mc_mean": float(perfect.mean()),
        "perfect_mc_std": float(perfect.std()),
        "perfect_p95": float(np.percentile(perfect, 95)),
        "p_value": float((1 + (perfect >= obs).sum()) / (1 + R)),
        "boot_low": float(np.percentile(boot, 2.5)),
        "boot_high": float(np.percentile(boot, 97.5)),
        "boot_std": float(boot.std()),
        "diff_observed": [obs - ece(ib, cb, kb), float(na.mean() - nb.mean()),
                          float(ba.mean() - bb.mean())],
        "diff_low": [float(v) for v in np.percentile(diffs, 2.5, axis=0)],
        "diff_high": [float(v) for v in np.percentile(diffs, 97.5, axis=0)],
        "diff_std": [float(v) for v in diffs.std(axis=0)],
    }
    path = os.path.join("tests", "fixtures", "metrics", "calibration_uncertainty.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path}: ECE {obs:.3f}, perfect exact mean {out['perfect_exact_mean']:.3f} "
          f"(MC {out['perfect_mc_mean']:.3f}), p {out['p_value']:.4f}, "
          f"boot [{out['boot_low']:.3f}, {out['boot_high']:.3f}]")


if __name__ == "__main__":
    main()
