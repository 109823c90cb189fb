#!/usr/bin/env python3
"""Oracle for src/curves/fit.rs and the slope of `ovr curves`.

Independent of the Rust code: numpy only, its own RNG (PCG64, seeded).

Each case is one class's learning curve: the nominal fractions, the number of
the class's training images, the F1 per (fraction, seed), and the number of
largest fractions fitted. The expected values:

* kept images m(f) = max(1, round_half_away(n * f)), at most n (the Rust side
  rounds half away from zero, unlike Python's round());
* x = log2(m / n) over the last `fit` fractions;
* per seed: numpy.polyfit(x, F1, 1)[0] (None when every x is equal);
* gain_per_doubling = mean of the per-seed slopes = polyfit of the mean F1;
* std = sample standard deviation (ddof=1; 0 with one seed) of the slopes;
* the per-fraction mean / std (ddof=1) / min / max of F1 over seeds.

Writes tests/fixtures/curves/slopes.json. Run from the crate root:
python3 tests/reference/make_curve_fixtures.py
"""

import json
import math
import os

import numpy as np

RNG = np.random.default_rng(20261202)


def kept(n, f):
    m = math.floor(n * f + 0.5)
    return min(max(m, 1), n)


def case(name, fractions, n, f1, fit):
    f1 = np.asarray(f1, dtype=np.float64)  # [fractions, seeds]
    m = [kept(n, f) for f in fractions]
    x = np.log2(np.asarray(m[-fit:], dtype=np.float64) / n)
    per_seed = []
    for s in range(f1.shape[1]):
        if np.ptp(x) == 0:
            per_seed.append(None)
        else:
            per_seed.append(float(np.polyfit(x, f1[-fit:, s], 1)[0]))
    known = [v for v in per_seed if v is not None]
    if len(known) == len(per_seed) and known:
        gain = float(np.mean(known))
        std = float(np.std(known, ddof=1)) if len(known) > 1 else 0.0
        assert abs(gain - np.polyfit(x, f1[-fit:].mean(axis=1), 1)[0]) < 1e-12
    else:
        gain, std = None, None
    ddof = 1 if f1.shape[1] > 1 else 0
    return {
        "name": name,
        "fractions": fractions,
        "n": n,
        "fit": fit,
        "f1": f1.tolist(),
        "kept": m,
        "x": x.tolist(),
        "per_seed": per_seed,
        "gain_per_doubling": gain,
        "std": std,
        "mean": f1.mean(axis=1).tolist(),
        "sd": (f1.std(axis=1, ddof=ddof) if ddof else np.zeros(len(fractions))).tolist(),
        "min": f1.min(axis=1).tolist(),
        "max": f1.max(axis=1).tolist(),
    }


def main():
    fr = [0.1, 0.25, 0.5, 1.0]
    cases = [
        # a rising curve with noise, 3 seeds, 40 images
        case("rising", fr, 40,
             np.clip(np.array([[0.3], [0.5], [0.65], [0.8]]) + RNG.normal(0, 0.03, (4, 3)), 0, 1), 3),
        # flat: the same F1 everywhere
        case("flat", fr, 40, np.full((4, 3), 0.75), 3),
        # small class: rounding and the one-image floor move x off log2(f)
        case("small", fr, 5, RNG.uniform(0, 1, (4, 2)), 3),
        # fit over the last two only, one seed
        case("two-points", [0.2, 0.5, 1.0], 17, RNG.uniform(0, 1, (3, 1)), 2),
        # every fitted fraction keeps one image: no slope
        case("degenerate", [0.1, 0.2, 0.3], 2, RNG.uniform(0, 1, (3, 2)), 3),
        # n * f exactly half: rounds half away from zero (0.25 * 10 = 2.5 -> 3)
        case("half", fr, 10, RNG.uniform(0, 1, (4, 4)), 4),
    ]
    out = os.path.join("tests", "fixtures", "curves", "slopes.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        json.dump({"numpy": np.__version__, "cases": cases}, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"wrote {out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
