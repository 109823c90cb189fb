//! Metrics stage, one specialist at a time: the one-vs-rest scores and
//! probabilities of class c on a split -> AUROC, average precision, Brier.
//!
//! * AUROC = area under the ROC curve with tied scores joined by a straight
//!   segment (trapezoid), i.e. the Mann–Whitney statistic with average ranks:
//!   `sklearn.metrics.roc_auc_score`.
//! * Average precision = Σ_t (R_t − R_{t−1}) · P_t over the distinct score
//!   thresholds t in decreasing order (a tie group enters at once), R_0 = 0:
//!   the step-wise (not interpolated) `average_precision_score`.
//! * Brier = mean (p − `1[positive]`)² (`brier_score_loss` for binary targets).
//!
//! Ranking uses the scores (logits or probabilities: any monotone map gives
//! the same AUROC / AP, unless it creates ties, e.g. a saturated f32 sigmoid);
//! Brier uses the probabilities. A class with no positive or no negative row
//! has no AUROC / AP: `None`, never NaN or a panic.

use super::{check_labels, check_same_len, check_unit_values, MetricError, Result};
use serde::Serialize;

/// Ranking and calibration scores of one binary specialist.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BinaryScores {
    /// Number of positive rows.
    pub positives: usize,
    /// Number of negative rows.
    pub negatives: usize,
    /// `None` when the split has no positive or no negative.
    pub auroc: Option<f64>,
    /// `None` when the split has no positive or no negative.
    pub average_precision: Option<f64>,
    pub brier: f64,
}

/// AUROC / AP from `scores`, Brier from `probs` (in [0, 1]); one value per row.
pub fn binary_scores(positive: &[bool], scores: &[f32], probs: &[f32]) -> Result<BinaryScores> {
    if positive.is_empty() {
        return Err(MetricError::Empty { what: "positive" });
    }
    check_same_len("scores", scores.len(), positive.len())?;
    check_same_len("probs", probs.len(), positive.len())?;
    check_finite("scores", scores)?;
    check_unit_values("probs", probs)?;
    Ok(binary_unchecked(positive, scores, probs))
}

/// [`binary_scores`] of every class c of a K-class split: positives are the
/// rows labelled c, scores and probabilities are column c of the row-major
/// [N, k] `scores` and `probs` (the specialists' own probabilities: rows need
/// not sum to 1). `scores` may be `probs` itself.
pub fn one_vs_rest(
    labels: &[u32],
    scores: &[f32],
    probs: &[f32],
    k: usize,
) -> Result<Vec<BinaryScores>> {
    check_labels("labels", labels, k)?;
    let n = labels.len();
    check_same_len("scores", scores.len(), n * k)?;
    check_same_len("probs", probs.len(), n * k)?;
    check_finite("scores", scores)?;
    check_unit_values("probs", probs)?;
    let mut positive = vec![false; n];
    let mut s = vec![0.0f32; n];
    let mut p = vec![0.0f32; n];
    Ok((0..k)
        .map(|c| {
            for i in 0..n {
                positive[i] = labels[i] as usize == c;
                s[i] = scores[i * k + c];
                p[i] = probs[i * k + c];
            }
            binary_unchecked(&positive, &s, &p)
        })
        .collect())
}

fn check_finite(what: &'static str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MetricError::NonFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

fn binary_unchecked(positive: &[bool], scores: &[f32], probs: &[f32]) -> BinaryScores {
    let n = positive.len();
    let positives = positive.iter().filter(|&&v| v).count();
    let negatives = n - positives;
    let brier = positive
        .iter()
        .zip(probs)
        .map(|(&y, &p)| {
            let d = f64::from(p) - if y { 1.0 } else { 0.0 };
            d * d
        })
        .sum::<f64>()
        / n as f64;
    let (auroc, average_precision) = if positives == 0 || negatives == 0 {
        (None, None)
    } else {
        let (a, ap) = ranking(positive, scores, positives, negatives);
        (Some(a), Some(ap))
    };
    BinaryScores {
        positives,
        negatives,
        auroc,
        average_precision,
        brier,
    }
}

/// AUROC of `scores` for `positive` rows against the rest (scores finite);
/// `None` without positives or negatives.
pub(crate) fn auroc(positive: &[bool], scores: &[f32]) -> Option<f64> {
    let positives = positive.iter().filter(|&&v| v).count();
    let negatives = positive.len() - positives;
    (positives > 0 && negatives > 0).then(|| ranking(positive, scores, positives, negatives).0)
}

/// (AUROC, AP) walking the rows by decreasing score, one tie group at a time
/// (groups by `==`, so −0.0 and 0.0 tie; scores are finite).
fn ranking(positive: &[bool], scores: &[f32], positives: usize, negatives: usize) -> (f64, f64) {
    let mut order: Vec<usize> = (0..positive.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut area2, mut ap) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let (tp0, fp0) = (tp, fp);
        let s = scores[order[i]];
        while i < order.len() && scores[order[i]] == s {
            if positive[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        // Trapezoid in count units: Δfp · (tp0 + tp) / 2, the /2 applied at the end.
        area2 += ((fp - fp0) * (tp0 + tp)) as f64;
        ap += (tp - tp0) as f64 / positives as f64 * (tp as f64 / (tp + fp) as f64);
    }
    let auroc = area2 / 2.0 / (positives as f64 * negatives as f64);
    (auroc, ap)
}
