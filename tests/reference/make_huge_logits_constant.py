"""The scikit-learn constant of `heads::tests::huge_logits_stay_finite`.

Rebuilds the test's 64 separable rows (2 features, wide margin, large
values), fits scikit-learn's LogisticRegression(C=1e6, tol=1e-10) (lbfgs,
intercept, no class weights: the classes are 32 / 32 so balanced is the
same) and prints the objective J = 0.5 ||w||^2 + C sum_i logloss_i that the
Rust test compares with (0.0954336331 with scikit-learn 1.9.1).

    python tests/reference/make_huge_logits_constant.py
"""

import numpy as np
from sklearn.linear_model import LogisticRegression


def rows():
    x, y = [], []
    for i in range(64):
        side = 1.0 if i % 2 == 0 else -1.0
        x.append([side * (50.0 + 100.0 * (i % 7)), float((i * 37) % 11) - 5.0])
        y.append(1 if side > 0 else 0)
    # The test builds the rows in f32.
    return np.array(x, dtype=np.float32).astype(np.float64), np.array(y)


def main():
    x, y = rows()
    c = 1e6
    m = LogisticRegression(C=c, tol=1e-10, max_iter=100000).fit(x, y)
    z = x @ m.coef_[0] + m.intercept_[0]
    s = np.where(y == 1, 1.0, -1.0)
    loss = np.logaddexp(0.0, -s * z).sum()
    j = 0.5 * float(m.coef_[0] @ m.coef_[0]) + c * loss
    print(f"J = {j:.10f}  (w = {m.coef_[0]}, b = {m.intercept_[0]})")


if __name__ == "__main__":
    main()
