"""Oracle for src/ensemble/select/c_rule.rs: the fold mean and standard
error of a candidate's validation loss, and the one-standard-error pick.

Definitions (independent of the Rust code):
* mean = np.mean(v), se = np.std(v, ddof=1) / sqrt(len(v)) over the finite
  fold values;
* best = argmin of the means (first of equals);
* one-se = among the candidates of best's weighting, the smallest C whose
  mean <= mean[best] + se[best].

Cases: random fold losses of 6 candidates x 5 folds around a U-shaped curve,
and a flat curve near its minimum (one-se must move to a smaller C than
best), and a curve with one undefined (NaN) fold.

Run: python3 tests/reference/make_c_rule_fixtures.py
(writes tests/fixtures/heads/c_rule.json; numpy only).
"""

import json
import os

import numpy as np


def case(name, cs, weightings, losses):
    losses = np.array(losses, dtype=np.float64)
    means, ses, used = [], [], []
    for row in losses:
        v = row[np.isfinite(row)]
        means.append(float(np.mean(v)))
        ses.append(float(np.std(v, ddof=1) / np.sqrt(len(v))))
        used.append(int(len(v)))
    best = int(np.argmin(means))
    threshold = means[best] + ses[best]
    ok = [i for i in range(len(cs)) if weightings[i] == weightings[best] and means[i] <= threshold]
    one_se = min(ok, key=lambda i: (cs[i], i))
    return {
        "name": name,
        "c": cs,
        "weighting": weightings,
        "fold_losses": [[None if not np.isfinite(x) else float(x) for x in row] for row in losses],
        "mean": means,
        "se": ses,
        "used": used,
        "best_mean": best,
        "one_se": one_se,
    }


def main():
    rng = np.random.default_rng(17)
    cs = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
    w = ["none"] * 6
    curve = np.array([0.9, 0.6, 0.45, 0.40, 0.43, 0.55])
    random = curve[:, None] + rng.normal(scale=0.05, size=(6, 5))
    # Folds differ in difficulty alike for every candidate (shared effect),
    # plus a little noise of each candidate's own.
    fold_effect = rng.normal(scale=0.05, size=5)
    flat = (
        np.array([0.70, 0.402, 0.401, 0.400, 0.401, 0.41])[:, None]
        + fold_effect[None, :]
        + rng.normal(scale=0.002, size=(6, 5))
    )
    with_nan = random.copy()
    with_nan[:, 2] = np.nan
    # A smaller C of the other weighting is within one SE too: one-se must
    # keep best's weighting.
    mixed_c = [0.1, 0.0001, 0.001, 0.01, 0.1, 1.0]
    mixed_w = ["none", "none", "balanced", "balanced", "balanced", "balanced"]
    cases = [
        case("u-shaped", cs, w, random),
        case("flat-near-minimum", cs, w, flat),
        case("undefined-fold", cs, w, with_nan),
        case("two-weightings", mixed_c, mixed_w, flat),
    ]
    assert cs[cases[1]["one_se"]] < cs[cases[1]["best_mean"]], "the flat case must move"
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "fixtures", "heads", "c_rule.json")
    with open(out, "w") as f:
        json.dump({"cases": cases}, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(out))
    for c in cases:
        print(c["name"], "best", c["best_mean"], "one-se", c["one_se"])


if __name__ == "__main__":
    main()
