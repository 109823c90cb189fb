"""Fixtures for src/audit/label_errors.rs: cleanlab's label-quality scores,
ranking and confident-learning flags on fixed out-of-fold probabilities.

Pinned versions (the venv this was run in, Python 3.12.1):
    numpy==2.5.5 scikit-learn==1.9.1 scipy==1.18.1 pandas==3.1.1 cleanlab==2.9.0

Run once:
    python tests/reference/make_label_error_fixtures.py
writes tests/fixtures/audit/label_errors.json.

Input: 200 rows x 5 classes, seeded. Each row's probabilities are a softmax
of noisy logits around its true class, rounded to float32 (what ovr's
out-of-fold heads produce), 20 rows given another class (planted flips).
About a quarter of the rows get flat logits, so that rows with several or
exactly one class at or above its threshold, and rows whose argmax class is
not among them, all occur: that is where the definitions differ (below).

Output, all by cleanlab:
  * thresholds: cleanlab.count.get_confident_thresholds (mean p_j over the
    rows labelled j).
  * self_confidence / normalized_margin:
    cleanlab.rank.get_label_quality_scores(method=...), adjust_pred_probs
    False (the default).
  * ranking: rows by ascending self-confidence, ties by row (a stable sort).
  * flags: cleanlab.filter.find_label_issues(filter_by="confident_learning")
    (the off-diagonal of the confident joint, then rows whose argmax is the
    given label dropped), and the ranked issue indices
    (return_indices_ranked_by="self_confidence").
  * paper_flags: the rule as Northcutt et al. (2021, eq. 1) write it (the
    most probable of the classes at or above their threshold differs from
    the given label), computed here in numpy, so the Rust test can check
    the fixture contains rows where the two definitions part.
"""
import json
import pathlib

import numpy as np
from cleanlab.count import get_confident_thresholds
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores

N, K, FLIPS = 200, 5, 20
rng = np.random.default_rng(2021)
truth = np.arange(N) % K
rng.shuffle(truth)
# Classes 3 and 4 are hard (a small logit boost): their thresholds are low,
# so another class can be the argmax while only they reach their threshold.
boost = np.array([3.0, 3.0, 3.0, 0.3, 0.0])
logits = boost[truth][:, None] * np.eye(K)[truth] + rng.normal(size=(N, K))
p = np.exp(logits - logits.max(axis=1, keepdims=True))
p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
labels = truth.copy()
flipped = np.sort(rng.choice(N, FLIPS, replace=False))
labels[flipped] = (labels[flipped] + rng.integers(1, K, FLIPS)) % K


def crafted(p, labels):
    """Three rows where cleanlab's rules and the paper's part (none labelled
    4, so threshold 4 is that of the rows above; B's label 3 moves t_3 by
    0.01 / 41, far less than its margin)."""
    t = get_confident_thresholds(labels, p.astype(np.float64))
    print("thresholds before the crafted rows:", np.round(t, 4).tolist())
    rows, given = [], []
    # A: only class 4 reaches its threshold, class 0 (given) is the argmax.
    # Paper: flagged (4 != 0). cleanlab: dropped, argmax == given.
    a4 = t[4] + 0.02
    rows.append([a4 + 0.06, 0.0, 0.0, 0.0, a4])
    given.append(0)
    # B: classes 3 and 4 reach theirs, class 0 is the argmax, given 3.
    # Paper: 3 is the most probable confident class == given, not flagged.
    # cleanlab: guess = argmax 0 != 4, flagged.
    b3, b4 = t[3] + 0.01, t[4] + 0.01
    rows.append([max(b3, b4) + 0.05, 0.0, 0.0, b3, b4])
    given.append(3)
    # C: p_4 just below t_4 (inside cleanlab's 1e-6 tolerance), the argmax.
    # Paper: nothing confident, not flagged. cleanlab: flagged.
    c4 = np.nextafter(np.float32(t[4] - 5e-7), np.float32(0))
    rows.append([0.0, 0.0, 0.0, 0.0, float(c4)])
    given.append(1)
    out = []
    for r in rows:
        r = np.array(r, dtype=np.float64)
        rest = 1.0 - r.sum()
        free = [j for j in range(K) if r[j] == 0.0]
        r[free] = rest / len(free)
        out.append(r.astype(np.float32))
    return np.vstack([p, np.array(out)]), np.concatenate([labels, given])


p, labels = crafted(p, labels)
N = len(labels)
probs = p.astype(np.float64)  # exactly the float32 values
thresholds = get_confident_thresholds(labels, probs)
sc = get_label_quality_scores(labels, probs, method="self_confidence")
nm = get_label_quality_scores(labels, probs, method="normalized_margin")
ranking = np.argsort(sc, kind="stable")
flags = find_label_issues(labels, probs, filter_by="confident_learning")
ranked = find_label_issues(
    labels, probs, filter_by="confident_learning", return_indices_ranked_by="self_confidence"
)

# The paper's rule, for contrast (no tolerance, argmax among confident classes).
confident = probs >= thresholds
masked = np.where(confident, probs, -1.0)
paper = confident.any(axis=1) & (masked.argmax(axis=1) != labels)
print("flagged by cleanlab:", int(flags.sum()), "by the paper's rule:", int(paper.sum()))
print("rows where they differ:", np.nonzero(flags != paper)[0].tolist())
print("planted flips flagged:", int(flags[flipped].sum()), "of", FLIPS)

out = {
    "classes": K,
    "labels": labels.tolist(),
    "probs": [[float(v) for v in row] for row in p],
    "flipped": flipped.tolist(),
    "thresholds": thresholds.tolist(),
    "self_confidence": sc.tolist(),
    "normalized_margin": nm.tolist(),
    "ranking": ranking.tolist(),
    "flags": flags.tolist(),
    "ranked_issues": ranked.tolist(),
    "paper_flags": paper.tolist(),
}
path = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "audit" / "label_errors.json"
path.write_text(json.dumps(out) + "\n")
print("wrote", path)
