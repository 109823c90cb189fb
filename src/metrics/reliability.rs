//! Metrics stage, calibration of the top prediction: the [N, K] probability
//! rows of one approach on a split -> ECE / MCE (percent) and the per-bin
//! table behind a reliability diagram (Guo et al. 2017, 15 bins in reports).
//!
//! Binning rule (the numpy reference in `tests/reference/make_metric_fixtures.py`
//! implements the same): B equal-width bins with edges e_b = b / B computed
//! in f64 and rounded to f32; the confidence c = max_k p_k (an f32) goes to
//! the first bin b with c ≤ e_{b+1}, so bins are (e_b, e_{b+1}] and the first
//! is [0, e_1]. Comparing in f32 puts a probability equal to f32(2/15) — what
//! an f32 computation of 2/15 gives — on the edge, in the second bin (widened
//! to f64 it would exceed 2/15 and fall in the third). The predicted class of
//! a row is its argmax (ties -> lower index). Empty bins are skipped:
//! ECE = 100 · Σ_b (|B_b| / N) · |acc_b − conf_b|, MCE = 100 · max_b |acc_b − conf_b|.

use super::{argmax, check_labels, check_probs, MetricError, Result};
use serde::Serialize;

/// One non-empty bin of a reliability diagram. `lower`/`upper` are the
/// nominal edges b / B and (b + 1) / B; `confidence` is the mean max
/// probability of its rows, `accuracy` the fraction whose argmax is right.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    pub confidence: f64,
    pub accuracy: f64,
    /// Exact (Clopper–Pearson) 95 % interval of `accuracy`.
    pub accuracy_low: f64,
    pub accuracy_high: f64,
}

/// ECE and MCE in percent and the non-empty bins in increasing order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    pub ece: f64,
    pub mce: f64,
    pub bins: Vec<ReliabilityBin>,
}

/// ECE / MCE (percent) with `bins` equal-width bins over the max probability
/// of each row of `probs` (row-major [N, k]), and the reliability table.
pub fn calibration_error(
    labels: &[u32],
    probs: &[f32],
    k: usize,
    bins: usize,
) -> Result<Calibration> {
    check_labels("labels", labels, k)?;
    if bins == 0 {
        return Err(MetricError::ZeroParameter {
            what: "the number of calibration bins",
        });
    }
    check_probs(probs, labels.len(), k)?;
    Ok(calibration_unchecked(labels, probs, k, bins))
}

/// Upper edges e_1..e_B of `bins` equal-width bins, as f32; the last is 1.
pub(crate) fn upper_edges(bins: usize) -> Vec<f32> {
    (1..=bins)
        .map(|b| (b as f64 / bins as f64) as f32)
        .collect()
}

/// The bin of value `v`: the first whose upper edge is ≥ it (1.0 in the last).
pub(crate) fn bin_of(uppers: &[f32], v: f32) -> usize {
    uppers.partition_point(|&e| e < v).min(uppers.len() - 1)
}

pub(crate) fn calibration_unchecked(
    labels: &[u32],
    probs: &[f32],
    k: usize,
    bins: usize,
) -> Calibration {
    let uppers = upper_edges(bins);
    let mut count = vec![0usize; bins];
    let mut conf_sum = vec![0.0f64; bins];
    let mut correct = vec![0usize; bins];
    for (&y, row) in labels.iter().zip(probs.chunks_exact(k)) {
        let pred = argmax(row);
        let c = row[pred];
        let b = bin_of(&uppers, c);
        count[b] += 1;
        conf_sum[b] += f64::from(c);
        correct[b] += usize::from(pred == y as usize);
    }
    let n = labels.len() as f64;
    let (mut ece, mut mce) = (0.0f64, 0.0f64);
    let mut table = Vec::new();
    for b in 0..bins {
        if count[b] == 0 {
            continue;
        }
        let m = count[b] as f64;
        let (confidence, accuracy) = (conf_sum[b] / m, correct[b] as f64 / m);
        let gap = (accuracy - confidence).abs();
        ece += m / n * gap;
        mce = mce.max(gap);
        let (accuracy_low, accuracy_high) =
            super::binomial::clopper_pearson(correct[b] as u64, count[b] as u64);
        table.push(ReliabilityBin {
            accuracy_low,
            accuracy_high,
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            count: count[b],
            confidence,
            accuracy,
        });
    }
    Calibration {
        ece: 100.0 * ece,
        mce: 100.0 * mce,
        bins: table,
    }
}
