//! Audit stage, the hook `compare` calls: an ensemble's approaches on the
//! test split -> which test images have a near-duplicate in train (cosine
//! at least `audit.duplicate_cosine`, searched as `audit.index` says,
//! [`super::duplicates::leaked_rows`])
//! -> the headline metrics and the paired verdicts again on the test
//! images without them, so a reader sees whether leakage moves any figure.

use super::duplicates::leaked_rows;
use super::near::NearSearch;
use crate::features::store::FeatureSet;
use crate::metrics::compare::ApproachInput;
pub use crate::metrics::dedup::{DedupApproach, DedupPair, Deduplicated, Leak};
use crate::metrics::{mcnemar_exact, paired_bootstrap, summarize, verdict, MetricError};

/// `None` when no evaluation row has a near-duplicate in `train` (or no
/// row would be left); else every approach and pair on the other rows.
pub fn deduplicated(
    train: &FeatureSet,
    eval: &FeatureSet,
    near: &NearSearch,
    approaches: &[ApproachInput],
    resamples: usize,
    seed: u64,
) -> Result<Option<Deduplicated>, MetricError> {
    let leaked = leaked_rows(train, eval, near);
    let mut keep = vec![true; eval.len()];
    leaked.iter().for_each(|l| keep[l.row] = false);
    let rows: Vec<usize> = (0..eval.len()).filter(|&i| keep[i]).collect();
    if leaked.is_empty() || rows.is_empty() {
        return Ok(None);
    }
    let k = eval.classes.len();
    let labels: Vec<u32> = rows.iter().map(|&i| eval.labels[i]).collect();
    let kept: Vec<(Vec<f32>, Vec<u32>)> = approaches
        .iter()
        .map(|a| {
            let p = rows
                .iter()
                .flat_map(|&i| a.probs[i * k..(i + 1) * k].iter().copied())
                .collect();
            (p, rows.iter().map(|&i| a.preds[i]).collect())
        })
        .collect();
    let mut out = Vec::with_capacity(approaches.len());
    for (a, (p, y)) in approaches.iter().zip(&kept) {
        out.push(DedupApproach {
            name: a.name.clone(),
            summary: summarize(&labels, p, y, k)?,
        });
    }
    let mut pairs = Vec::new();
    let correct = |p: &[u32]| -> Vec<bool> { p.iter().zip(&labels).map(|(x, y)| x == y).collect() };
    for i in 0..approaches.len() {
        for j in i + 1..approaches.len() {
            let (pa, pb) = (&kept[i].1, &kept[j].1);
            let m = mcnemar_exact(&correct(pa), &correct(pb))?;
            let boot = paired_bootstrap(&labels, pa, pb, k, resamples, seed)?;
            let (na, nb) = (&approaches[i].name, &approaches[j].name);
            pairs.push(DedupPair {
                a: na.clone(),
                b: nb.clone(),
                verdict: verdict(na, nb, &boot.accuracy, &m),
                accuracy: boot.accuracy,
                macro_f1: boot.macro_f1,
            });
        }
    }
    Ok(Some(Deduplicated {
        threshold: near.threshold,
        leaked,
        rows_left: rows.len(),
        approaches: out,
        pairs,
    }))
}
