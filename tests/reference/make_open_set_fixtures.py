#!/usr/bin/env python3
"""Oracle for src/metrics/open_set.rs: AUROC known-vs-unknown and FPR at 95 % TPR
from scikit-learn (roc_auc_score, roc_curve with drop_intermediate=False), the
area under the risk-coverage curve (AURC) by an explicit loop, and for scores
with ties the AURC averaged over 20,000 random orders of the tie groups (the
Rust side spreads errors evenly inside a group: the exact expectation).

Writes tests/fixtures/metrics/open_set.json. Run from the crate root:
    python3 tests/reference/make_open_set_fixtures.py
Needs numpy and scikit-learn.
"""

import json
import os

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

RNG = np.random.default_rng(14)


def f32(x):
    x32 = np.asarray(x, dtype=np.float32)
    return [float(str(v)) for v in x32], x32.astype(np.float64)


def aurc_loop(score, correct, rng=None):
    order = np.argsort(-score, kind="stable") if rng is None else None
    if rng is not None:
        # random order inside tie groups: sort by (-score, random key)
        key = rng.random(len(score))
        order = np.lexsort((key, -score))
    errors, total = 0, 0.0
    for i, j in enumerate(order, start=1):
        errors += 0 if correct[j] else 1
        total += errors / i
    return total / len(order)


def fpr95(known, unknown):
    y = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
    s = np.r_[known, unknown]
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return float(fpr[np.argmax(tpr >= 0.95 - 1e-12)])


def case(name, known, unknown, correct, ties):
    kl, k64 = f32(known)
    ul, u64 = f32(unknown)
    y = np.r_[np.ones(len(k64)), np.zeros(len(u64))]
    out = {"name": name, "known": kl, "unknown": ul, "known_correct": [bool(c) for c in correct],
           "auroc": float(roc_auc_score(y, np.r_[k64, u64])), "fpr_at_95_tpr": fpr95(k64, u64)}
    if ties:
        vals = [aurc_loop(k64, correct, RNG) for _ in range(20000)]
        out["aurc"] = float(np.mean(vals))
        out["aurc_tol"] = float(4 * np.std(vals) / np.sqrt(len(vals)) + 1e-9)
    else:
        out["aurc"] = aurc_loop(k64, correct)
        out["aurc_tol"] = 1e-9
    return out


def main():
    cases = []
    # Overlapping Gaussians; errors more likely at low scores.
    known = RNG.normal(1.0, 1.0, 300)
    unknown = RNG.normal(-0.5, 1.0, 80)
    correct = RNG.random(300) < 1 / (1 + np.exp(-2 * known))
    cases.append(case("gaussian", known, unknown, correct, ties=False))
    # Coarse scores (many ties), like saturated probabilities.
    known = np.round(RNG.random(200) * 5) / 5
    unknown = np.round(RNG.random(60) * 3) / 5
    correct = RNG.random(200) < 0.3 + 0.6 * known
    cases.append(case("ties", known, unknown, correct, ties=True))
    path = os.path.join("tests", "fixtures", "metrics", "open_set.json")
    with open(path, "w") as f:
        json.dump({"note": "see tests/reference/make_open_set_fixtures.py", "cases": cases}, f)
    for c in cases:
        print(c["name"], "auroc", round(c["auroc"], 4), "fpr95", round(c["fpr_at_95_tpr"], 4),
              "aurc", round(c["aurc"], 5))


if __name__ == "__main__":
    main()
