//! Metrics stage, calibration beyond the top label: the [N, K] probabilities
//! of an approach -> classwise ECE (every class's probability, not only the
//! top one), adaptive ECE (equal-mass bins over the top confidence) and the
//! exact (Clopper–Pearson) interval of a reliability bin's accuracy.
//!
//! * Classwise ECE (Kull et al. 2019): for each class j the probabilities
//!   p_ij of every row go to the equal-width bins of [`super::reliability`]
//!   (float32 edges b/B, a value in the first bin whose upper edge is ≥ it,
//!   so exactly 1.0 is in the last); ECE_j = Σ_b n_b/N |mean 1[y=j] − mean
//!   p_j|; the figure is 100 · mean_j ECE_j.
//! * Adaptive ECE: rows sorted by top confidence (ascending, ties by row
//!   index), cut into B bins of equal count (the first N mod B one larger,
//!   as `numpy.array_split`); 100 · Σ_b n_b/N |acc_b − conf_b|.
//! * Clopper–Pearson: the 95 % interval [lo, hi] of x successes in n with
//!   P(X ≥ x | lo) = α/2 and P(X ≤ x | hi) = α/2 (lo = 0 when x = 0, hi = 1
//!   when x = n), found by bisection on the binomial tail computed in log
//!   space; equals `scipy.stats.binomtest(x, n).proportion_ci(method="exact")`.

use super::reliability::{bin_of, upper_edges};
use super::{argmax, check_labels, check_probs, Result};

/// Classwise ECE in percent with `bins` equal-width bins per class.
pub fn classwise_ece(labels: &[u32], probs: &[f32], k: usize, bins: usize) -> Result<f64> {
    check_labels("labels", labels, k)?;
    check_probs(probs, labels.len(), k)?;
    Ok(classwise_unchecked(labels, probs, k, bins.max(1)))
}

pub(crate) fn classwise_unchecked(labels: &[u32], probs: &[f32], k: usize, bins: usize) -> f64 {
    let uppers = upper_edges(bins);
    let n = labels.len() as f64;
    let mut total = 0.0;
    for j in 0..k {
        let mut gap = vec![0.0f64; bins];
        for (&y, row) in labels.iter().zip(probs.chunks_exact(k)) {
            let p = row[j];
            gap[bin_of(&uppers, p)] += f64::from(u8::from(y as usize == j)) - f64::from(p);
        }
        total += gap.iter().map(|g| g.abs()).sum::<f64>() / n;
    }
    100.0 * total / k as f64
}

/// Adaptive (equal-mass) ECE in percent over the top confidence.
pub fn adaptive_ece(labels: &[u32], probs: &[f32], k: usize, bins: usize) -> Result<f64> {
    check_labels("labels", labels, k)?;
    check_probs(probs, labels.len(), k)?;
    Ok(adaptive_unchecked(labels, probs, k, bins.max(1)))
}

pub(crate) fn adaptive_unchecked(labels: &[u32], probs: &[f32], k: usize, bins: usize) -> f64 {
    let rows: Vec<(f32, bool)> = labels
        .iter()
        .zip(probs.chunks_exact(k))
        .map(|(&y, row)| {
            let p = argmax(row);
            (row[p], p == y as usize)
        })
        .collect();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[a].0.total_cmp(&rows[b].0));
    let n = rows.len();
    let (base, extra) = (n / bins, n % bins);
    let (mut start, mut total) = (0usize, 0.0f64);
    for b in 0..bins {
        let len = base + usize::from(b < extra);
        let part = &order[start..start + len];
        start += len;
        let gap: f64 = part
            .iter()
            .map(|&i| f64::from(u8::from(rows[i].1)) - f64::from(rows[i].0))
            .sum();
        total += gap.abs();
    }
    100.0 * total / n as f64
}

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
