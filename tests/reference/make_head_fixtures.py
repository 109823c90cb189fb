#!/usr/bin/env python3
"""scikit-learn oracle for the linear heads (`src/heads/`).

Writes `tests/fixtures/heads/logreg.json`: a seeded synthetic 4-class problem
(Gaussian blobs with overlap, unbalanced 150/80/50/20 rows, D=16), standardized
with its own mean / population std and rounded to float32 (so the Rust side
sees exactly the matrix scikit-learn was fitted on), plus

* `binary`: one-vs-rest models, one `LogisticRegression` per class on `y == k`
  (C in {0.01, 1.0} with class_weight='balanced', and C=1.0 with
  class_weight=None);
* `softmax`: multinomial models (lbfgs; C=1.0 balanced and C=0.1 unweighted);

each with C, weighting, coef, intercept, sklearn's n_iter and the objective

    J = 0.5 ||w||^2 + C * sum_i s_i * l(y_i, z_i)

computed here in float64 numpy (binary: l(y,z) = max(z,0) - z y + log1p(exp(-|z|));
softmax: cross-entropy of softmax(x W + b), W excluding the intercept), where
s_i are the class weights (balanced: n / (n_classes * n_{y_i}); none: 1).

It also writes a `standardizer` case: a small raw matrix with a constant
column and numpy's mean / population std (std < 1e-6 -> 1).

Needs: Python 3, numpy, scikit-learn (>= 1.2; written against 1.9).
Run from the crate root:  python3 tests/reference/make_head_fixtures.py
The output is deterministic for a given scikit-learn / scipy version.
"""
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

SEED = 20240611
SIZES = [150, 80, 50, 20]
D = 16
OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "heads", "logreg.json")


def make_data():
    rng = np.random.default_rng(SEED)
    centers = rng.normal(0.0, 1.0, size=(len(SIZES), D))
    xs, ys = [], []
    for k, m in enumerate(SIZES):
        # anisotropic blobs, scaled per feature, with enough overlap that no
        # class is separable (finite optimum even for large C)
        scale = rng.uniform(0.8, 1.6, size=D)
        xs.append(centers[k] + rng.normal(0.0, 1.0, size=(m, D)) * scale)
        ys.append(np.full(m, k))
    x = np.concatenate(xs) * rng.uniform(0.5, 20.0, size=D) + rng.normal(0, 5, size=D)
    y = np.concatenate(ys)
    perm = rng.permutation(len(y))
    x, y = x[perm], y[perm]
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-6] = 1.0
    xs = ((x - mean) / std).astype(np.float32)
    return xs.astype(np.float64), y


def sample_weights(y, n_classes, weighting):
    if weighting == "none":
        return np.ones(len(y))
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return len(y) / (n_classes * counts[y])


def binary_objective(x, yb, w, b, c, s):
    z = x @ w + b
    loss = np.maximum(z, 0) - z * yb + np.log1p(np.exp(-np.abs(z)))
    return 0.5 * float(w @ w) + c * float(np.sum(s * loss))


def softmax_objective(x, y, w, b, c, s):
    z = x @ w + b  # [N, K]
    zmax = z.max(axis=1, keepdims=True)
    lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
    ce = lse - z[np.arange(len(y)), y]
    return 0.5 * float(np.sum(w * w)) + c * float(np.sum(s * ce))


def fit(x, y, c, weighting):
    model = LogisticRegression(
        C=c,
        class_weight="balanced" if weighting == "balanced" else None,
        tol=1e-12,
        max_iter=100000,
    )
    model.fit(x, y)
    return model


def standardizer_case():
    rng = np.random.default_rng(SEED + 1)
    n, d = 12, 5
    raw = (rng.normal(0, 1, size=(n, d)) * [1.0, 100.0, 1e-3, 1.0, 7.0]
           + [0.0, 1000.0, 5.0, 0.0, -3.0]).astype(np.float32)
    raw[:, 3] = 2.5  # constant feature -> std 1
    r64 = raw.astype(np.float64)
    mean = r64.mean(axis=0)
    std = r64.std(axis=0)
    std[std < 1e-6] = 1.0
    return {
        "n": n,
        "d": d,
        "x": [float(v) for v in raw.ravel()],
        "mean": mean.tolist(),
        "std": std.tolist(),
    }


def main():
    x, y = make_data()
    n, k = x.shape[0], len(SIZES)
    binary = []
    for weighting, cs in (("balanced", [0.01, 1.0]), ("none", [1.0])):
        for c in cs:
            for cls in range(k):
                yb = (y == cls).astype(np.int64)
                m = fit(x, yb, c, weighting)
                w, b = m.coef_[0], float(m.intercept_[0])
                s = sample_weights(yb, 2, weighting)
                binary.append({
                    "class": cls,
                    "c": c,
                    "weighting": weighting,
                    "coef": w.tolist(),
                    "intercept": b,
                    "n_iter": int(m.n_iter_[0]),
                    "objective": binary_objective(x, yb.astype(np.float64), w, b, c, s),
                })
    softmax = []
    for weighting, c in (("balanced", 1.0), ("none", 0.1)):
        m = fit(x, y, c, weighting)
        w = m.coef_.T  # [D, K]
        b = m.intercept_.copy()
        s = sample_weights(y, k, weighting)
        softmax.append({
            "c": c,
            "weighting": weighting,
            "coef_dk": [float(v) for v in w.ravel()],  # row-major [D, K]
            "intercept": b.tolist(),
            "intercept_sum": float(b.sum()),
            "n_iter": int(m.n_iter_[0]),
            "objective": softmax_objective(x, y, w, b, c, s),
        })
    out = {
        "generator": "tests/reference/make_head_fixtures.py",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "seed": SEED,
        "n": n,
        "d": D,
        "k": k,
        "class_sizes": SIZES,
        "x": [float(np.float32(v)) for v in x.ravel()],
        "labels": [int(v) for v in y],
        "binary": binary,
        "softmax": softmax,
        "standardizer": standardizer_case(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    for m in binary:
        print(f"binary class={m['class']} C={m['c']} {m['weighting']}: "
              f"J={m['objective']:.10f} n_iter={m['n_iter']}")
    for m in softmax:
        print(f"softmax C={m['c']} {m['weighting']}: J={m['objective']:.10f} "
              f"n_iter={m['n_iter']} sum(b)={m['intercept_sum']:.2e}")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
