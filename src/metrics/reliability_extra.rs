//! Metrics stage, calibration beyond the top label: the [N, K] probabilities
//! of an approach -> classwise ECE (every class's probability, not only the
//! top one) and adaptive ECE (equal-mass bins over the top confidence).
//!
//! * Classwise ECE (Kull et al. 2019): for each class j the probabilities
//!   p_ij of every row go to the equal-width bins of [`super::reliability`]
//!   (float32 edges b/B, a value in the first bin whose upper edge is ≥ it,
//!   so exactly 1.0 is in the last); ECE_j = Σ_b n_b/N |mean 1[y=j] − mean
//!   p_j|; the figure is 100 · mean_j ECE_j.
//! * Adaptive ECE: rows sorted by top confidence (ascending, ties by row
//!   index), cut into B bins of equal count (the first N mod B one larger,
//!   as `numpy.array_split`); 100 · Σ_b n_b/N |acc_b − conf_b|.
//! * Clopper–Pearson: the exact interval of a bin's accuracy, in
//!   [`super::binomial`] (re-exported here).

pub use super::binomial::clopper_pearson;
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
