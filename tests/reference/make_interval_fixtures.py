"""Oracle for src/metrics/intervals.rs: paired-bootstrap intervals on ECE,
MCE, NLL, Brier and per-class F1 of every approach and on their pairwise
differences, computed on GIVEN resample indices (drawn here with numpy and
stored in the fixture), so the Rust side reproduces the arithmetic exactly.

Definitions (independent of the Rust code):
* confidence c = max_k p_k of the float32 row, predicted class = np.argmax;
  15 equal-width bins, upper edges float32(b / 15); a row goes to the first
  bin whose upper edge is >= c (compared in float32), clipped to the last
  (so c = 1.0 is in bin 15);
* ECE = 100 * sum_b |B_b| / N * |acc_b - conf_b| over non-empty bins,
  MCE = 100 * max_b |acc_b - conf_b| over non-empty bins;
* NLL = mean -ln(max(p_true, 1e-15)); Brier = mean sum_k (p_k - 1[y=k])^2;
* F1 of class c from the given predicted classes: 2 tp / (#pred + #true),
  0 when the denominator is 0;
* interval: np.percentile(samples, [2.5, 97.5]) (linear); observed on all rows;
  a pair's sample r is figure_A(resample r) - figure_B(resample r).

Run: python3 tests/reference/make_interval_fixtures.py
(writes tests/fixtures/metrics/intervals.json; numpy only).
"""

import json
import os

import numpy as np

BINS = 15
K = 4
N = 60
R = 40


def bins_of(conf):
    uppers = np.array([np.float32(b / BINS) for b in range(1, BINS + 1)], dtype=np.float32)
    out = np.searchsorted(uppers, conf.astype(np.float32), side="left")
    return np.minimum(out, BINS - 1)


def figures(labels, probs, preds, idx):
    y = labels[idx]
    p = probs[idx].astype(np.float64)
    pr = preds[idx]
    conf32 = probs[idx].max(axis=1)
    top = probs[idx].argmax(axis=1)
    correct = (top == y).astype(np.float64)
    b = bins_of(conf32)
    conf = conf32.astype(np.float64)
    ece, mce = 0.0, 0.0
    for j in range(BINS):
        m = b == j
        if m.sum() == 0:
            continue
        gap = abs(correct[m].mean() - conf[m].mean())
        ece += m.sum() / len(idx) * gap
        mce = max(mce, gap)
    nll = float(np.mean(-np.log(np.maximum(p[np.arange(len(idx)), y], 1e-15))))
    onehot = np.eye(K)[y]
    brier = float(np.mean(((p - onehot) ** 2).sum(axis=1)))
    f1 = []
    for c in range(K):
        tp = int(((pr == c) & (y == c)).sum())
        den = int((pr == c).sum() + (y == c).sum())
        f1.append(0.0 if den == 0 else 2 * tp / den)
    return [100 * ece, 100 * mce, nll, brier] + f1


def interval(observed, samples):
    lo, hi = np.percentile(np.array(samples), [2.5, 97.5])
    return {"observed": float(observed), "low": float(lo), "high": float(hi)}


def main():
    rng = np.random.default_rng(20261203)
    labels = rng.integers(0, K, size=N)
    labels[:3] = 0
    approaches = []
    for a in range(3):
        logits = rng.normal(size=(N, K)) + (1.0 + a) * np.eye(K)[labels]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
        # Bin conventions: a confidence of exactly 1.0, one exactly on the
        # float32 edge 4/15, one exactly on 9/15.
        p[0] = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
        p[1] = np.array([np.float32(4 / 15), 0.25, 0.25, np.float32(1 - 4 / 15 - 0.5)], dtype=np.float32)
        p[2] = np.array([np.float32(9 / 15), 0.2, 0.1, np.float32(1 - 9 / 15 - 0.3)], dtype=np.float32)
        preds = p.argmax(axis=1)
        if a == 2:
            # Predictions need not be the argmax of the probabilities
            # (calibrated argmax vs a combiner's probabilities).
            preds = preds.copy()
            preds[5:9] = (preds[5:9] + 1) % K
        approaches.append((f"approach-{a}", p, preds))
    draws = [rng.integers(0, N, size=N) for _ in range(R)]
    everything = np.arange(N)
    per = []
    for name, p, pr in approaches:
        obs = figures(labels, p, pr, everything)
        samples = np.array([figures(labels, p, pr, d) for d in draws])
        per.append((name, obs, samples))
    names = ["ece", "mce", "nll", "brier"]

    def pack(obs, samples):
        out = {n: interval(obs[i], samples[:, i]) for i, n in enumerate(names)}
        out["f1"] = [interval(obs[4 + c], samples[:, 4 + c]) for c in range(K)]
        return out

    result = {
        "bins": BINS,
        "k": K,
        "labels": labels.tolist(),
        "approaches": [
            {"name": name, "probs": p.astype(np.float64).ravel().tolist(), "preds": pr.tolist()}
            for name, p, pr in approaches
        ],
        "draws": [d.tolist() for d in draws],
        "figures": [dict(name=name, **pack(obs, s)) for name, obs, s in per],
        "pairs": [],
    }
    for i in range(len(per)):
        for j in range(i + 1, len(per)):
            (na, oa, sa), (nb, ob, sb) = per[i], per[j]
            result["pairs"].append(dict(a=na, b=nb, **pack(np.array(oa) - np.array(ob), sa - sb)))
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "fixtures", "metrics", "intervals.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
