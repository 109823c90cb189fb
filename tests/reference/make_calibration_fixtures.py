#!/usr/bin/env python3
"""Writes `tests/fixtures/calibration/calibration.json`, the oracle for `src/calibration/`.

Calibration stage of `ovr`: raw head scores on held-out data -> calibrated probabilities;
the ensemble then combines the specialists. Every number here comes from numpy / scipy /
scikit-learn, never from the Rust code.

Sections of the JSON:
  platt        `sklearn.calibration._sigmoid_calibration(scores, y, sample_weight)` (a, b), Platt's
               convention p = 1 / (1 + exp(a*s + b)) with targets t+ = (N+ + 1)/(N+ + 2),
               t- = 1/(N- + 2). scikit-learn stops L-BFGS-B at gtol 1e-6, so the exact optimum
               (`a_exact`, `b_exact`, scipy trust-exact with the analytic Hessian, gtol 1e-13) and
               the summed objective at both are stored too; `probes`/`probs` use the exact (a, b).
  isotonic     `IsotonicRegression(out_of_bounds='clip', y_min=0, y_max=1)`: `X_thresholds_`,
               `y_thresholds_` and `predict(probes)`; scores with ties, weights with zeros.
  temperature  T = exp(u), u minimizing the mean NLL of softmax(z / T) with
               `scipy.optimize.minimize_scalar(method='bounded', bounds=(log 1e-2, log 1e2),
               xatol=1e-12)`; `nll` at T and `nll_at_1`.
  combine      [N, K] specialist logits with K calibrators (isotonic thresholds from
               scikit-learn, Platt (a, b)) and the three combiners' probabilities and argmaxes
               (numpy f64; ties -> lower index as `np.argmax`). One row is below every isotonic
               calibrator's range (all p_k = 0 -> uniform 1/K); rows with tied logits and tied
               calibrated probabilities.

Inputs: every score / logit / weight is rounded to 4 decimals and stored as that decimal;
the Python side computes with float64(float32(decimal)), the exact value Rust sees after
parsing it as f32. Outputs are float64 (Rust's serde_json may read them 1 ulp off, far
below the test tolerances; the isotonic x thresholds are f32 values and compared as f32).

Needs: Python 3, numpy, scipy, scikit-learn (written with numpy 2.4, scipy 1.17,
scikit-learn 1.9). Deterministic (seeded). Usage, from the crate root:
    python3 tests/reference/make_calibration_fixtures.py
"""

import json
import math
import os

import numpy as np
import scipy
import sklearn
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_softmax, logsumexp, softmax
from sklearn.calibration import _sigmoid_calibration
from sklearn.isotonic import IsotonicRegression

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "calibration")
RNG = np.random.default_rng(20240611)


def dec(x):
    """Round to 4 decimals: the stored decimal (list of Python floats)."""
    return [float(v) for v in np.round(np.asarray(x, dtype=np.float64), 4)]


def as_f32(decimals):
    """What Rust sees after parsing the decimals as f32, widened to f64."""
    return np.asarray(decimals, dtype=np.float64).astype(np.float32).astype(np.float64)


# ---------------------------------------------------------------- Platt
def platt_objective(ab, s, t, w):
    z = ab[0] * s + ab[1]  # p = 1/(1+exp(z)); loss = log(1+exp(z)) - (1-t) z
    return float(np.sum(w * (np.logaddexp(0.0, z) - (1.0 - t) * z)))


def platt_exact(s, y, w):
    w = np.ones_like(s) if w is None else w
    n_neg, n_pos = w[y <= 0].sum(), w[y > 0].sum()
    t = np.where(y > 0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def grad(ab):
        g = w * (t - expit(-(ab[0] * s + ab[1])))  # d loss / dz = (1-p) - (1-t) = t - p
        return np.array([g @ s, g.sum()])

    def hess(ab):
        p = expit(-(ab[0] * s + ab[1]))
        h = w * p * (1.0 - p)
        return np.array([[h @ (s * s), h @ s], [h @ s, h.sum()]])

    x0 = np.array([0.0, math.log((n_neg + 1.0) / (n_pos + 1.0))])
    res = minimize(lambda ab: platt_objective(ab, s, t, w), x0, jac=grad, hess=hess,
                   method="trust-exact", options={"gtol": 1e-13, "maxiter": 1000})
    return res.x, t, np.abs(grad(res.x)).max()


def platt_case(name, scores_dec, y, w_dec=None, note=""):
    s = as_f32(scores_dec)
    w = None if w_dec is None else as_f32(w_dec)
    a_sk, b_sk = _sigmoid_calibration(s, y, sample_weight=w)
    (a, b), t, gmax = platt_exact(s, y, w)
    ww = np.ones_like(s) if w is None else w
    probes = dec(np.linspace(s.min() - 1.0, s.max() + 1.0, 9))
    return {
        "name": name,
        "note": note,
        "scores": scores_dec,
        "labels": [int(v) for v in y],
        "weights": w_dec,
        "a_sklearn": float(a_sk),
        "b_sklearn": float(b_sk),
        "objective_sklearn": platt_objective((a_sk, b_sk), s, t, ww),
        "a_exact": float(a),
        "b_exact": float(b),
        "objective_exact": platt_objective((a, b), s, t, ww),
        "exact_max_abs_gradient": float(gmax),
        "probes": probes,
        "probs": [float(v) for v in expit(-(a * as_f32(probes) + b))],
    }


def platt_cases():
    cases = []
    n = 300
    y = (RNG.random(n) < 0.5).astype(int)
    s = dec(1.5 * (2 * y - 1) + 1.5 * RNG.standard_normal(n))
    cases.append(platt_case("balanced", s, y, note="overlapping classes, 50% positives"))

    n = 250
    y = np.zeros(n, dtype=int)
    y[RNG.choice(n, 5, replace=False)] = 1
    s = dec(np.where(y == 1, 0.5, -2.0) + 1.2 * RNG.standard_normal(n))
    cases.append(platt_case("unbalanced", s, y, note="5 positives of 250"))

    n = 80
    y = (np.arange(n) % 3 == 0).astype(int)
    s = dec(np.where(y == 1, 1.0, -1.0) * (8.0 + 30.0 * RNG.random(n)))
    cases.append(platt_case("near_separable", s, y,
                            note="separable, |s| up to 38 (scikit-learn rescales when max |s| >= 30)"))

    n = 150
    y = (RNG.random(n) < 0.35).astype(int)
    s = dec(2.0 * y - 0.7 + RNG.standard_normal(n))
    w = dec(RNG.choice([0.0, 0.5, 1.0, 2.5], size=n))
    cases.append(platt_case("weighted", s, y, w_dec=w, note="sample weights, some zero"))
    return cases


# ---------------------------------------------------------------- isotonic
def isotonic_case(name, scores_dec, y, w_dec=None, extra_probes=()):
    s = as_f32(scores_dec)
    w = None if w_dec is None else as_f32(w_dec)
    ir = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(s, y.astype(np.float64),
                                                                         sample_weight=w)
    lo, hi = float(s.min()), float(s.max())
    probes = sorted(set(dec(list(np.linspace(lo - 0.5, hi + 0.5, 23)) + list(extra_probes)
                            + [lo, hi] + list(ir.X_thresholds_[:5]))))
    return {
        "name": name,
        "scores": scores_dec,
        "labels": [int(v) for v in y],
        "weights": w_dec,
        "x_thresholds": [float(v) for v in ir.X_thresholds_],
        "y_thresholds": [float(v) for v in ir.y_thresholds_],
        "probes": probes,
        "predictions": [float(v) for v in ir.predict(as_f32(probes))],
    }


def isotonic_cases():
    cases = []
    n = 120
    raw = RNG.standard_normal(n) * 1.5
    s = dec(np.round(raw, 1))  # many ties
    y = (RNG.random(n) < expit(1.3 * np.asarray(s))).astype(int)
    cases.append(isotonic_case("ties", s, y, extra_probes=[0.05, -0.15, 0.25]))

    n = 80
    s = dec(np.round(RNG.standard_normal(n) * 2.0, 2))
    y = (RNG.random(n) < expit(np.asarray(s))).astype(int)
    w = dec(RNG.choice([0.0, 0.25, 1.0, 3.0], size=n))
    cases.append(isotonic_case("weighted", s, y, w_dec=w))

    s = [0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 4.0]
    y = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1])
    cases.append(isotonic_case("small_hand", s, y, extra_probes=[0.5, 1.5, 2.5, 3.5]))
    return cases


# ---------------------------------------------------------------- temperature
def mean_nll(z, labels, t):
    lp = log_softmax(z / t, axis=1)
    return float(-lp[np.arange(len(labels)), labels].mean())


def temperature_case(name, z_dec, labels, note):
    z = as_f32(z_dec)
    res = minimize_scalar(lambda u: mean_nll(z, labels, math.exp(u)), method="bounded",
                          bounds=(math.log(1e-2), math.log(1e2)), options={"xatol": 1e-12})
    t = math.exp(res.x)
    n, k = z.shape
    return {
        "name": name,
        "note": note,
        "n": n,
        "k": k,
        "logits": [v for row in z_dec for v in row],
        "labels": [int(v) for v in labels],
        "t": t,
        "nll": mean_nll(z, labels, t),
        "nll_at_1": mean_nll(z, labels, 1.0),
    }


def sample_labels(probs):
    u = RNG.random(len(probs))[:, None]
    return np.minimum((np.cumsum(probs, axis=1) < u).sum(axis=1), probs.shape[1] - 1)


def temperature_cases():
    cases = []
    n, k = 300, 5
    z = [dec(r) for r in 4.0 * RNG.standard_normal((n, k))]
    labels = sample_labels(softmax(as_f32(z) / 2.5, axis=1))
    cases.append(temperature_case("over_confident", z, labels,
                                  "labels drawn from softmax(z / 2.5): T near 2.5"))
    n, k = 300, 4
    z = [dec(r) for r in 0.8 * RNG.standard_normal((n, k))]
    labels = sample_labels(softmax(as_f32(z) * 2.0, axis=1))
    cases.append(temperature_case("under_confident", z, labels,
                                  "labels drawn from softmax(2 z): T near 0.5"))
    return cases


# ---------------------------------------------------------------- combiners
def combine_case():
    k = 3
    calibrators = []
    for c in range(k):  # isotonic calibrators fitted on synthetic held-out data, p = 0 below ~-1
        s = np.round(RNG.standard_normal(60) * 2.0, 1)
        y = (RNG.random(60) < expit(2.0 * s - 1.0 + 0.3 * c)).astype(int)
        y[s < -1.0] = 0
        y[s > 2.5] = 1
        s_dec = dec(s)
        ir = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(as_f32(s_dec), y)
        calibrators.append({"kind": "isotonic", "x": [float(v) for v in ir.X_thresholds_],
                            "y": [float(v) for v in ir.y_thresholds_]})
    platt = [{"kind": "platt", "a": -1.5, "b": 0.25}, {"kind": "platt", "a": -0.75, "b": -0.5},
             {"kind": "platt", "a": -2.0, "b": 1.0}]

    rows = [
        [-9.0, -8.5, -7.25],    # below every isotonic range: all p_k = 0 -> uniform
        [1.5, 1.5, 1.5],        # tied logits -> class 0
        [0.25, 2.0, 2.0],       # tied logits between 1 and 2 -> class 1
        [9.0, 9.5, 8.0],        # above every isotonic range: p_k = 1 (ties) -> class 0
        [0.3, -0.4, 1.1],
        [-0.6, 0.9, 0.2],
        [2.2, -3.0, 0.0],
        [0.0, 0.0, 3.5],
    ]
    for _ in range(4):
        rows.append(dec(RNG.standard_normal(k) * 1.5))
    z = as_f32(rows)

    def iso_prob(cal, s):
        return np.interp(np.clip(s, cal["x"][0], cal["x"][-1]), cal["x"], cal["y"])

    def calibrated(cals):
        p = np.zeros_like(z)
        for j, cal in enumerate(cals):
            if cal["kind"] == "isotonic":
                p[:, j] = iso_prob(cal, z[:, j])
            else:
                p[:, j] = expit(-(cal["a"] * z[:, j] + cal["b"]))
        sums = p.sum(axis=1, keepdims=True)
        out = np.where(sums > 0, p / np.where(sums > 0, sums, 1.0), 1.0 / k)
        return out, [int(v) for v in np.argmax(p, axis=1)]

    sm = softmax(z, axis=1)
    raw_pred = [int(v) for v in np.argmax(z, axis=1)]
    iso_probs, iso_pred = calibrated(calibrators)
    platt_probs, platt_pred = calibrated(platt)
    flat = lambda a: [float(v) for v in a.reshape(-1)]
    return {
        "n": len(rows),
        "k": k,
        "logits": [v for r in rows for v in r],
        "isotonic_calibrators": calibrators,
        "platt_calibrators": platt,
        "calibrated_argmax_isotonic": {"probs": flat(iso_probs), "preds": iso_pred},
        "calibrated_argmax_platt": {"probs": flat(platt_probs), "preds": platt_pred},
        "raw_argmax": {"probs": flat(sm), "preds": raw_pred},
        "softmax_logits": {"probs": flat(sm), "preds": raw_pred},
        "softmax_nll_labels": [0, 1, 2, 0, 2, 1, 0, 2, 1, 0, 1, 2],
        "softmax_nll": float(-np.mean(np.log(sm[np.arange(len(rows)),
                                                [0, 1, 2, 0, 2, 1, 0, 2, 1, 0, 1, 2]]))),
    }


def main():
    fixture = {
        "generator": "tests/reference/make_calibration_fixtures.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                     "sklearn": sklearn.__version__},
        "platt": platt_cases(),
        "isotonic": isotonic_cases(),
        "temperature": temperature_cases(),
        "combine": combine_case(),
    }
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "calibration.json")
    with open(path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(path)} ({os.path.getsize(path)} bytes)")
    for c in fixture["platt"]:
        print(f"platt {c['name']:15s} sklearn a={c['a_sklearn']:.8g} b={c['b_sklearn']:.8g}"
              f" | exact a={c['a_exact']:.8g} b={c['b_exact']:.8g}"
              f" | objective gap {c['objective_sklearn'] - c['objective_exact']:.3g}")
    for c in fixture["temperature"]:
        print(f"temperature {c['name']:15s} T={c['t']:.8g} nll={c['nll']:.8g} (T=1: {c['nll_at_1']:.8g})")


if __name__ == "__main__":
    main()
