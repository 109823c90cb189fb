#!/usr/bin/env python3
"""Writes `tests/fixtures/metrics/metrics.json`, the oracle for `src/metrics/`.

Metrics stage of `ovr`: predictions / probabilities of each approach on a split -> numbers for
compare / score / report. Every number here comes from numpy / scipy / scikit-learn, never from
the Rust code.

Sections of the JSON:
  multiclass   cases with labels [N], probabilities [N, K] (f32) and predictions [N]:
               accuracy, macro-F1, per-class precision / recall / F1 / support
               (`precision_recall_fscore_support` / `f1_score(average='macro')` with
               `labels=range(K), zero_division=0`), `balanced_accuracy_score`, `confusion_matrix`,
               top-k accuracy (explicit numpy, ties -> LOWER class index ranks first; scikit-learn's
               `top_k_accuracy_score` stored too as `top_k_sklearn`: it ranks ties the other way,
               see `top_k_ours`), NLL (explicit numpy, eps = 1e-15; checked here against
               `log_loss` on float64 where no p_true < 1e-15), multiclass Brier (explicit numpy:
               mean over rows of sum_k (p_k - 1[y=k])^2, never halved; checked here against
               `brier_score_loss(labels=range(K))`, which equals it for K >= 3), ECE / MCE / the
               reliability table (explicit numpy, rule below), and per class one-vs-rest
               `roc_auc_score`, `average_precision_score`, `brier_score_loss` on column k
               (null when class k has no positive or no negative in y_true).
  calibration  ECE cases with confidences exactly on bin edges.
  binary       single one-vs-rest cases: positives, scores (for ranking), probabilities (Brier).
  mcnemar      (b, c) -> `scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue` (1 when b+c = 0).
  percentile   numpy's default (linear) `np.percentile` at 2.5 and 97.5, used by the bootstrap.

Binning rule (ECE): B equal-width bins; the edges are e_b = b / B computed in float64 and rounded
to float32; the confidence c = max_k p_k is a float32; c goes to the first bin b with c <= e_{b+1}
(`np.searchsorted(edges[1:], c, side='left')`), i.e. bins are (e_b, e_{b+1}], the first [0, e_1].
A float32 probability equal to float32(2/15) therefore lands in the second bin, not the third.
Accuracy in a bin uses the argmax of the row (ties -> lower index, as `np.argmax`). Empty bins are
skipped. ECE = 100 * sum_b |B_b|/N |acc_b - conf_b|, MCE = 100 * max_b |acc_b - conf_b|.

Inputs: probabilities are float32 and stored as their shortest round-trip decimal (`str` of the
np.float32); the Python side computes with those float32 values widened to float64, what Rust
sees. `probs_sum` (float64 sum of all of them) lets the Rust side check its parse.

Needs: Python 3, numpy, scipy, scikit-learn (written with numpy 2.4, scipy 1.17,
scikit-learn 1.9). Deterministic (seeded). Usage, from the crate root:
    python3 tests/reference/make_metric_fixtures.py
"""

import json
import os
import warnings

import numpy as np
import scipy
import sklearn
from scipy.stats import binomtest
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (average_precision_score, balanced_accuracy_score, brier_score_loss,
                             confusion_matrix, f1_score, log_loss, precision_recall_fscore_support,
                             roc_auc_score, top_k_accuracy_score)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "metrics")
RNG = np.random.default_rng(20240612)
EPS = 1e-15
warnings.simplefilter("ignore", UndefinedMetricWarning)
warnings.simplefilter("ignore", UserWarning)


def f32_list(x):
    """float32 values -> shortest round-trip decimals (checked)."""
    x32 = np.asarray(x, dtype=np.float32).ravel()
    out = [float(str(v)) for v in x32]
    assert np.array_equal(np.asarray(out, dtype=np.float32), x32)
    return out


def softmax_f32(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------- explicit references
def top_k_ours(y, p, k):
    """Rank of the true class = #classes with a higher score + #classes with the same score and
    a lower index; a hit when rank < k (so top-1 agrees with np.argmax)."""
    n, kk = p.shape
    hits = 0
    for i in range(n):
        t = p[i, y[i]]
        rank = int(np.sum(p[i] > t) + np.sum(p[i, : y[i]] == t))
        hits += rank < k
    return hits / n


def ece_ref(y, p32, bins):
    conf32 = p32.max(axis=1)
    pred = p32.argmax(axis=1)
    edges32 = (np.arange(bins + 1, dtype=np.float64) / bins).astype(np.float32)
    idx = np.minimum(np.searchsorted(edges32[1:], conf32, side="left"), bins - 1)
    conf = conf32.astype(np.float64)
    correct = (pred == y).astype(np.float64)
    n = len(y)
    ece, mce, table = 0.0, 0.0, []
    for b in range(bins):
        m = idx == b
        if not m.any():
            continue
        acc_b, conf_b = correct[m].mean(), conf[m].mean()
        gap = abs(acc_b - conf_b)
        ece += m.sum() / n * gap
        mce = max(mce, gap)
        table.append({"bin": b, "count": int(m.sum()), "confidence": float(conf_b),
                      "accuracy": float(acc_b)})
    return 100.0 * ece, 100.0 * mce, table


def binary_ref(pos, scores, probs):
    pos = np.asarray(pos, dtype=bool)
    y = pos.astype(int)
    both = 0 < y.sum() < len(y)
    return {
        "auroc": float(roc_auc_score(y, scores)) if both else None,
        "average_precision": float(average_precision_score(y, scores)) if both else None,
        "brier": float(brier_score_loss(y, probs, pos_label=1)),
    }


# ---------------------------------------------------------------- multiclass cases
def multiclass_case(name, note, y, p32, preds=None, top_ks=(1, 2, 3, 5), bins=15):
    y = np.asarray(y, dtype=np.int64)
    n, k = p32.shape
    p = p32.astype(np.float64)
    preds = p32.argmax(axis=1) if preds is None else np.asarray(preds, dtype=np.int64)
    labels = list(range(k))
    prec, rec, f1, sup = precision_recall_fscore_support(y, preds, labels=labels,
                                                          zero_division=0)
    macro = f1_score(y, preds, labels=labels, average="macro", zero_division=0)
    assert abs(macro - f1.mean()) < 1e-12
    onehot = np.eye(k)[y]
    p_true = p[np.arange(n), y]
    nll = float(np.mean(-np.log(np.maximum(p_true, EPS))))
    if p_true.min() >= EPS:
        assert abs(nll - log_loss(y, p, labels=labels)) < 1e-12
    brier = float(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    if k >= 3:
        assert abs(brier - brier_score_loss(y, p, labels=labels)) < 1e-12
    ece, mce, table = ece_ref(y, p32, bins)
    top = []
    for t in top_ks:
        ours = top_k_ours(y, p32, t)
        skl = float(top_k_accuracy_score(y, p, k=t, labels=labels))
        top.append({"k": t, "ours": ours, "sklearn": skl})
    ovr = [binary_ref(y == c, p[:, c], p[:, c]) for c in range(k)]  # float64 of the f32
    return {
        "name": name, "note": note, "n": n, "k": k, "bins": bins,
        "labels": [int(v) for v in y], "probs": f32_list(p32), "probs_sum": float(p.sum()),
        "preds": [int(v) for v in preds],
        "accuracy": float(np.mean(preds == y)),
        "top_k": top,
        "macro_f1": float(macro),
        "balanced_accuracy": float(balanced_accuracy_score(y, preds)),
        "precision": [float(v) for v in prec], "recall": [float(v) for v in rec],
        "f1": [float(v) for v in f1], "support": [int(v) for v in sup],
        "confusion": confusion_matrix(y, preds, labels=labels).tolist(),
        "nll": nll, "brier": brier, "ece": ece, "mce": mce, "reliability": table,
        "ovr": ovr,
    }


def multiclass_cases():
    cases = []
    # (1) random 6 classes, N = 200, informative logits.
    n, k = 200, 6
    y = RNG.integers(0, k, n)
    z = 1.8 * np.eye(k)[y] + 1.1 * RNG.standard_normal((n, k))
    cases.append(multiclass_case("random6", "6 classes, N=200, argmax predictions",
                                 y, softmax_f32(z)))

    # (2) class 4 is never predicted (its column is always small): zero_division path.
    n, k = 80, 5
    y = RNG.integers(0, k, n)
    z = 1.5 * np.eye(k)[y] + RNG.standard_normal((n, k))
    z[:, 4] -= 6.0
    p32 = softmax_f32(z)
    assert not (p32.argmax(axis=1) == 4).any() and (y == 4).any()
    cases.append(multiclass_case("never_predicted", "class 4 never predicted", y, p32))

    # (3) class 3 absent from y_true (K = 5), but predicted a few times.
    n, k = 90, 5
    y = RNG.choice([0, 1, 2, 4], n)
    z = 1.5 * np.eye(k)[y] + RNG.standard_normal((n, k))
    z[:5, 3] += 8.0
    p32 = softmax_f32(z)
    assert (p32.argmax(axis=1) == 3).any() and not (y == 3).any()
    cases.append(multiclass_case("missing_class", "class 3 absent from y_true, predicted 5x",
                                 y, p32))

    # (4) tied scores: quantized probabilities, many exact ties (top-k and AUROC).
    n, k = 48, 4
    rows = np.array([[2, 2, 2, 2], [4, 4, 0, 0], [3, 3, 1, 1], [0, 3, 3, 2], [1, 1, 3, 3],
                     [5, 1, 1, 1], [0, 0, 4, 4], [2, 2, 4, 0]], dtype=np.float64) / 8.0
    p32 = rows[RNG.integers(0, len(rows), n)].astype(np.float32)
    y = RNG.integers(0, k, n)
    c = multiclass_case("ties", "probabilities in multiples of 1/8, many exact ties", y, p32,
                        top_ks=(1, 2, 3, 4))
    assert any(t["ours"] != t["sklearn"] for t in c["top_k"])
    cases.append(c)

    # (5) a p_true of exactly 0: the eps clip of the NLL.
    p32 = np.array([[0.0, 0.5, 0.5], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]],
                   dtype=np.float32)
    c = multiclass_case("nll_clip", "p_true = 0 in row 0: -log(1e-15)", [0, 0, 2, 0], p32,
                        top_ks=(1, 2))
    c["nll_sklearn_float64"] = float(log_loss([0, 0, 2, 0], p32.astype(np.float64),
                                              labels=[0, 1, 2]))
    c["nll_sklearn_float32"] = float(log_loss([0, 0, 2, 0], p32, labels=[0, 1, 2]))
    cases.append(c)

    # (6) explicit predictions that are not the argmax (accuracy uses them, ECE the argmax).
    n, k = 60, 3
    y = RNG.integers(0, k, n)
    p32 = softmax_f32(1.2 * np.eye(k)[y] + RNG.standard_normal((n, k)))
    preds = np.where(RNG.random(n) < 0.3, RNG.integers(0, k, n), p32.argmax(axis=1))
    cases.append(multiclass_case("given_preds", "predictions differ from argmax in ~20% rows",
                                 y, p32, preds=preds, top_ks=(1, 2)))
    return cases


# ---------------------------------------------------------------- calibration edge cases
def edge_rows(k, confs):
    """Rows whose max is exactly the float32 confidence, the rest spread below it."""
    rows = []
    for c in confs:
        c = np.float32(c)
        rest = (1.0 - float(c)) / (k - 1)
        assert rest < float(c)
        rows.append([c] + [np.float32(rest)] * (k - 1))
    return np.array(rows, dtype=np.float32)


def calibration_cases():
    cases = []
    k = 20
    confs = [np.float32(j / 15) for j in range(1, 16)] * 2 + [np.float32(0.07), np.float32(0.5)]
    p32 = edge_rows(k, confs)
    for i in range(len(p32)):  # move the max to various columns
        p32[i] = np.roll(p32[i], i % k)
    y = np.array([(i % k) if RNG.random() < 0.6 else ((i + 1) % k) for i in range(len(p32))])
    ece, mce, table = ece_ref(y, p32, 15)
    # float32(j/15) sits on the upper edge of bin j-1; 0.07 in bin 1, 0.5 in bin 7.
    assert [t["count"] for t in table] == [2, 3, 2, 2, 2, 2, 2, 3, 2, 2, 2, 2, 2, 2, 2]
    cases.append({"name": "edges15", "note": "confidences exactly float32(j/15), j = 1..15",
                  "n": len(y), "k": k, "bins": 15, "labels": [int(v) for v in y],
                  "probs": f32_list(p32), "probs_sum": float(p32.astype(np.float64).sum()),
                  "ece": ece, "mce": mce, "reliability": table})
    k = 4
    confs = [0.25, 0.5, 0.75, 1.0, 0.5, 0.75, 0.375, 0.625, 1.0, 0.25]
    rows = []
    for c in confs:
        r = np.full(k, (1.0 - c) / (k - 1), dtype=np.float64)
        r[0] = c
        rows.append(r)
    p32 = np.array(rows, dtype=np.float32)
    y = np.array([0, 0, 1, 0, 2, 0, 0, 3, 0, 1])
    ece, mce, table = ece_ref(y, p32, 4)
    assert [t["count"] for t in table] == [2, 3, 3, 2]
    cases.append({"name": "edges4", "note": "4 bins, dyadic confidences exactly on edges",
                  "n": len(y), "k": k, "bins": 4, "labels": [int(v) for v in y],
                  "probs": f32_list(p32), "probs_sum": float(p32.astype(np.float64).sum()),
                  "ece": ece, "mce": mce, "reliability": table})
    return cases


# ---------------------------------------------------------------- binary cases
def binary_cases():
    cases = []
    n = 120
    pos = RNG.random(n) < 0.3
    s = np.round(np.where(pos, 0.8, -0.5) + RNG.standard_normal(n), 1).astype(np.float32)
    p = (1.0 / (1.0 + np.exp(-s.astype(np.float64)))).astype(np.float32)
    cases.append({"name": "rounded_scores", "note": "scores rounded to 0.1: many ties",
                  "positive": [bool(v) for v in pos], "scores": f32_list(s), "probs": f32_list(p),
                  **binary_ref(pos, s.astype(np.float64), p.astype(np.float64))})
    pos = np.array([1, 0, 1, 0, 0, 1, 0, 0], dtype=bool)
    s = np.array([0.5, 0.5, 0.5, 0.5, 0.2, 0.9, 0.9, 0.1], dtype=np.float32)
    cases.append({"name": "all_tied_groups", "note": "tie groups mixing both classes",
                  "positive": [bool(v) for v in pos], "scores": f32_list(s), "probs": f32_list(s),
                  **binary_ref(pos, s.astype(np.float64), s.astype(np.float64))})
    for name, pos in [("no_positive", np.zeros(6, dtype=bool)),
                      ("no_negative", np.ones(6, dtype=bool))]:
        s = np.linspace(0.1, 0.9, 6).astype(np.float32)
        cases.append({"name": name, "note": "one class only: AUROC and AP undefined",
                      "positive": [bool(v) for v in pos], "scores": f32_list(s),
                      "probs": f32_list(s),
                      **binary_ref(pos, s.astype(np.float64), s.astype(np.float64))})
    return cases


def mcnemar_cases():
    out = []
    for b, c in [(0, 0), (5, 5), (3, 10), (0, 7), (1, 0), (12, 4), (40, 60), (480, 560),
                 (10, 100), (2100, 2000)]:
        n = b + c
        p = 1.0 if n == 0 else float(binomtest(min(b, c), n, 0.5).pvalue)
        if n:
            # the closed form used by the Rust side, for the record
            closed = min(1.0, 2.0 * scipy.stats.binom.cdf(min(b, c), n, 0.5))
            assert abs(closed - p) <= 1e-12 * max(p, 1e-300) + 1e-300, (b, c, p, closed)
        out.append({"b": b, "c": c, "p_value": p})
    return out


def percentile_cases():
    out = []
    for n in [1, 2, 7, 40, 2000]:
        v = np.round(RNG.standard_normal(n), 6)
        out.append({"values": [float(x) for x in v],
                    "low": float(np.percentile(v, 2.5)), "high": float(np.percentile(v, 97.5))})
    return out


def main():
    fixture = {
        "generator": "tests/reference/make_metric_fixtures.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                     "sklearn": sklearn.__version__},
        "eps": EPS,
        "multiclass": multiclass_cases(),
        "calibration": calibration_cases(),
        "binary": binary_cases(),
        "mcnemar": mcnemar_cases(),
        "percentile": percentile_cases(),
    }
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "metrics.json")
    with open(path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    for c in fixture["multiclass"]:
        print(c["name"], "top_k", [(t["k"], t["ours"], t["sklearn"]) for t in c["top_k"]],
              "ece", round(c["ece"], 4), "nll", round(c["nll"], 5))


if __name__ == "__main__":
    main()
