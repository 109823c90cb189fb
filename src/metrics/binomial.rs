//! Metrics stage, exact binomial intervals for the reliability bins:
//! Clopper–Pearson, the 95 % interval [lo, hi] of x successes in n with
//! P(X ≥ x | lo) = α/2 and P(X ≤ x | hi) = α/2 (lo = 0 when x = 0, hi = 1
//! when x = n), found by bisection on the binomial tail computed in log
//! space; equals `scipy.stats.binomtest(x, n).proportion_ci(method="exact")`
//! (fixtures in `tests/fixtures/metrics`, checked in `tests_reliability_extra.rs`).

/// ln C(n, i) p^i (1 − p)^(n − i) for every i, as a vector.
fn ln_pmf(n: u64, p: f64) -> Vec<f64> {
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut ln_c = 0.0f64;
    (0..=n)
        .map(|i| {
            if i > 0 {
                ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
            }
            ln_c + i as f64 * lp + (n - i) as f64 * lq
        })
        .collect()
}

/// P(X ≥ x) for X ~ Bin(n, p), 0 < p < 1.
fn upper_tail(x: u64, n: u64, p: f64) -> f64 {
    ln_pmf(n, p)[x as usize..].iter().map(|v| v.exp()).sum()
}

fn bisect(mut lo: f64, mut hi: f64, f: impl Fn(f64) -> bool) -> f64 {
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if f(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The exact 95 % interval of `x` successes out of `n` (n ≥ 1, x ≤ n).
pub fn clopper_pearson(x: u64, n: u64) -> (f64, f64) {
    let a = 0.025;
    let low = if x == 0 {
        0.0
    } else {
        // Smallest p with P(X ≥ x | p) ≥ α/2 (the tail grows with p).
        bisect(0.0, 1.0, |p| upper_tail(x, n, p) >= a)
    };
    let high = if x == n {
        1.0
    } else {
        // Largest p with P(X ≤ x | p) ≥ α/2, i.e. P(X ≥ x + 1 | p) ≤ 1 − α/2.
        bisect(0.0, 1.0, |p| upper_tail(x + 1, n, p) > 1.0 - a)
    };
    (low, high)
}
