#!/usr/bin/env python3
"""Writes `tests/fixtures/calibration/joint.json`, the oracle for `src/calibration/score_map.rs`.

Joint calibration of a score vector: q = softmax(W x + b) fitted by the mean multiclass NLL
on calibration rows. Every number here comes from dirichletcal / scipy / numpy, never from
the Rust code.

Sections of the JSON:
  dirichlet  inputs `p` (rows of probabilities summing to 1, like the normalised Platt
             outputs of the specialists), labels, and for several lambda the probabilities
             of `dirichletcal.calib.fulldirichlet.FullDirichletCalibrator(reg_lambda=lam,
             reg_mu=lam, reg_norm=True, ref_row=False, optimizer='fmin_l_bfgs_b')` on the
             same rows and on held-out probe rows. With reg_norm=True dirichletcal's ODIR
             penalty is lam/(K(K-1)) * sum_{i!=j} W_ij^2 + mu/K * sum_j b_j^2 (diagonal
             free), exactly ovr's (`ScoreMap` with `MapKind::Full`, input ln p).
             A scipy L-BFGS-B fit of the same objective (gtol 1e-10) is stored as well with
             its objective value, so the optimum can be checked on two references.
  vector     raw logits `s`, labels, and for several lambda the probabilities of a scipy
             L-BFGS-B fit of ovr's vector-scaling objective
             mean NLL(softmax(a*s + b)) + lam/K * (sum (a_k - 1)^2 + sum b_k^2)
             (gtol 1e-10), its objective and (a, b); at lam = 0 also dirichletcal's
             `MultinomialRegression(method='Diag', reg_lambda=0, ref_row=False)` on the same
             logits (its probabilities; the optimum is unique in probability space).

Inputs are rounded to 6 decimals and stored as decimals; Python computes with
float64(float32(decimal)) where Rust sees f32 and with the decimal itself where Rust reads
f64 (the ScoreMap inputs are f64).

Needs: Python >= 3.12, numpy, scipy, scikit-learn, dirichletcal==0.5.3 (pulls jax).
Written with numpy 2.5.5, scipy 1.18.1, scikit-learn 1.9.1, dirichletcal 0.5.3.
Deterministic (seeded). Usage, from the crate root:
    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install numpy scipy scikit-learn dirichletcal==0.5.3
    /tmp/refenv/bin/python tests/reference/make_joint_calibration_fixtures.py
"""

import json
import os

import numpy as np
import scipy.optimize
from dirichletcal.calib.fulldirichlet import FullDirichletCalibrator
from dirichletcal.calib.multinomial import MultinomialRegression

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "calibration", "joint.json")


def rounded(a):
    return np.round(np.asarray(a, dtype=np.float64), 6)


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def mean_nll(q, y):
    return float(-np.mean(np.log(q[np.arange(len(y)), y])))


def synthetic(rng, n, k, scale):
    """Over-confident one-vs-rest style scores: a class signal plus noise."""
    y = rng.integers(0, k, size=n)
    y[:k] = np.arange(k)  # every class present
    s = rng.normal(-2.0, 1.0, size=(n, k))
    s[np.arange(n), y] += scale * rng.uniform(0.5, 2.0, size=n)
    return s, y


def fit_full(x, y, k, lam):
    """ovr's Dirichlet objective (input x = ln p), scipy L-BFGS-B from the identity."""
    n = len(y)
    c_off = lam / (k * (k - 1))
    c_b = lam / k
    onehot = np.eye(k)[y]
    off = 1.0 - np.eye(k)

    def f(theta):
        w = theta[: k * k].reshape(k, k)
        b = theta[k * k :]
        z = x @ w.T + b
        m = z.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
        val = np.mean(lse - z[np.arange(n), y]) + c_off * np.sum((w * off) ** 2) + c_b * np.sum(b ** 2)
        r = (softmax(z) - onehot) / n
        gw = r.T @ x + 2 * c_off * w * off
        gb = r.sum(axis=0) + 2 * c_b * b
        return val, np.concatenate([gw.ravel(), gb])

    theta0 = np.concatenate([np.eye(k).ravel(), np.zeros(k)])
    res = scipy.optimize.minimize(f, theta0, jac=True, method="L-BFGS-B",
                                  options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 20000})
    return res.x[: k * k].reshape(k, k), res.x[k * k :], float(res.fun)


def fit_vector(s, y, k, lam):
    n = len(y)
    onehot = np.eye(k)[y]
    c = lam / k

    def f(theta):
        a, b = theta[:k], theta[k:]
        z = s * a + b
        m = z.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
        val = np.mean(lse - z[np.arange(n), y]) + c * (np.sum((a - 1) ** 2) + np.sum(b ** 2))
        r = (softmax(z) - onehot) / n
        ga = (r * s).sum(axis=0) + 2 * c * (a - 1)
        gb = r.sum(axis=0) + 2 * c * b
        return val, np.concatenate([ga, gb])

    theta0 = np.concatenate([np.ones(k), np.zeros(k)])
    res = scipy.optimize.minimize(f, theta0, jac=True, method="L-BFGS-B",
                                  options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 20000})
    return res.x[:k], res.x[k:], float(res.fun)


def main():
    rng = np.random.default_rng(20261202)
    k = 4
    lambdas = [0.0, 0.01, 1.0, 10.0]

    # Dirichlet: probabilities from a softmax of noisy, over-confident scores.
    s, y = synthetic(rng, 240, k, 3.0)
    p = rounded(softmax(1.7 * s))
    p = p / p.sum(axis=1, keepdims=True)
    p = rounded(p)
    p = np.clip(p, 1e-6, None)
    p = rounded(p / p.sum(axis=1, keepdims=True))
    probe_s, probe_y = synthetic(rng, 40, k, 3.0)
    probe = rounded(np.clip(softmax(1.7 * probe_s), 1e-6, None))
    x, xp = np.log(p), np.log(probe)
    cases = []
    for lam in lambdas[1:]:
        cal = FullDirichletCalibrator(reg_lambda=lam, reg_mu=lam, reg_norm=True, ref_row=False,
                                      optimizer="fmin_l_bfgs_b")
        cal.fit(p, y)
        w, b, obj = fit_full(x, y, k, lam)
        cases.append({
            "lambda": lam,
            "dirichletcal_probs": np.asarray(cal.predict_proba(p)).ravel().tolist(),
            "dirichletcal_probe_probs": np.asarray(cal.predict_proba(probe)).ravel().tolist(),
            "scipy_w": w.ravel().tolist(),
            "scipy_b": b.tolist(),
            "scipy_objective": obj,
            "scipy_probs": softmax(x @ w.T + b).ravel().tolist(),
            "scipy_probe_probs": softmax(xp @ w.T + b).ravel().tolist(),
        })
    dirichlet = {"k": k, "n": len(y), "p": p.ravel().tolist(), "labels": y.tolist(),
                 "probe": probe.ravel().tolist(), "cases": cases}

    # Vector scaling on raw one-vs-rest logits.
    s, y = synthetic(rng, 200, k, 4.0)
    s = rounded(s)
    vcases = []
    for lam in lambdas:
        a, b, obj = fit_vector(s, y, k, lam)
        case = {"lambda": lam, "a": a.tolist(), "b": b.tolist(), "objective": obj,
                "probs": softmax(s * a + b).ravel().tolist()}
        if lam == 0.0:
            m = MultinomialRegression(method="Diag", reg_lambda=0.0, ref_row=False)
            m.fit(s, y)
            case["dirichletcal_probs"] = np.asarray(m.predict_proba(s)).ravel().tolist()
        vcases.append(case)
    vector = {"k": k, "n": len(y), "s": s.ravel().tolist(), "labels": y.tolist(), "cases": vcases}

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"dirichlet": dirichlet, "vector": vector}, f)
    for c in cases:
        d = np.max(np.abs(np.array(c["dirichletcal_probs"]) - np.array(c["scipy_probs"])))
        print(f"dirichlet lambda={c['lambda']}: dirichletcal vs scipy max |dp| = {d:.2e}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
