"""Fixtures for src/metrics/equivalence.rs: the TOST (two one-sided paired
t-tests, statsmodels' ttost_paired) on the per-row correctness of two
approaches, and their flip table.

Run once with numpy, scipy and statsmodels:
    python tests/reference/make_equivalence_fixtures.py
writes tests/fixtures/metrics/equivalence.json.
"""
import json
import pathlib

import numpy as np
from statsmodels.stats.weightstats import ttost_paired

rng = np.random.default_rng(17)
cases = []
for n, pa, pb, margin in [
    (1170, 0.83, 0.83, 0.01),
    (1170, 0.83, 0.80, 0.01),
    (560, 0.70, 0.705, 0.02),
    (200, 0.9, 0.9, 0.05),
    (3000, 0.88, 0.879, 0.01),
    (50, 0.6, 0.5, 0.01),
]:
    truth = rng.random(n)
    a = (truth < pa).astype(int)
    # b agrees with a on most rows, flips a few: a paired design.
    b = a.copy()
    flip = rng.random(n) < 0.08
    b[flip] = (rng.random(flip.sum()) < pb).astype(int)
    p, low, high = ttost_paired(a.astype(float), b.astype(float), -margin, margin)
    cases.append(
        {
            "a": a.tolist(),
            "b": b.tolist(),
            "margin": margin,
            "p_value": float(p),
            "t_low": float(low[0]),
            "p_low": float(low[1]),
            "t_high": float(high[0]),
            "p_high": float(high[1]),
            "df": float(low[2]),
            "flips": {
                "both_right": int(((a == 1) & (b == 1)).sum()),
                "a_only": int(((a == 1) & (b == 0)).sum()),
                "b_only": int(((a == 0) & (b == 1)).sum()),
                "both_wrong": int(((a == 0) & (b == 0)).sum()),
            },
        }
    )
out = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "metrics" / "equivalence.json"
out.write_text(json.dumps({"cases": cases}) + "\n")
print(f"wrote {out}")
