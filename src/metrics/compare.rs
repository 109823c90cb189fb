//! Metrics stage: one side-by-side evaluation of every approach an ensemble
//! holds on one split — the data behind `ovr compare`'s table, its JSON/CSV
//! exports and the HTML report. Built from per-approach predictions and
//! probabilities; every number comes from the metric modules.

use serde::Serialize;

use super::{
    calibration_error, calibration_uncertainty, confusion, mcnemar_exact, one_vs_rest,
    paired_bootstrap, paired_calibration_bootstrap, per_class, summarize, verdict, BinaryScores,
    Bootstrap, Calibration, CalibrationDiff, CalibrationUncertainty, McNemar, MetricError,
    PerClass, Summary, ECE_BINS,
};

use super::intervals::{intervals, Scored};
pub use crate::ensemble::predict::ApproachInput;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApproachResult {
    pub name: String,
    pub description: String,
    pub summary: Summary,
    pub per_class: PerClass,
    /// `confusion[true][pred]`.
    pub confusion: Vec<Vec<usize>>,
    pub reliability: Calibration,
    /// Bootstrap interval of the ECE and the ECE a perfectly calibrated
    /// model with the same confidences would show on these rows.
    pub calibration: CalibrationUncertainty,
}

/// Paired significance of approach `a` against approach `b`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairResult {
    pub a: String,
    pub b: String,
    pub mcnemar: McNemar,
    /// Differences are `a - b` (fractions).
    pub bootstrap: Bootstrap,
    /// Paired bootstrap of the ECE / NLL / Brier differences `a - b`.
    pub calibration: CalibrationDiff,
    pub verdict: String,
}

/// A scheduler job as the ensemble's manifest records it (the report's timeline).
pub use crate::ensemble::manifest::TimelineEntry;

/// Everything `compare` knows about one ensemble on one split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub ensemble: String,
    pub dataset: String,
    pub backbone: String,
    pub split: String,
    pub classes: Vec<String>,
    pub n: usize,
    pub approaches: Vec<ApproachResult>,
    /// Per specialist k: AUROC, average precision, Brier of its calibrated
    /// probability against "is class k" (None where the split lacks positives or negatives).
    pub specialists: Vec<BinaryScores>,
    pub pairs: Vec<PairResult>,
    pub timeline: Vec<TimelineEntry>,
    /// Known vs unknown images, when the comparison has unknown ones.
    pub open_set: Option<super::open_set::OpenSetReport>,
    /// The same approaches on a second dataset (`compare --against`).
    pub shift: Option<super::shift::ShiftReport>,
    /// The figures again without the test images that have a near-duplicate
    /// in train (`audit.duplicate_cosine`), when there are such images.
    pub deduplicated: Option<super::dedup::Deduplicated>,
    /// TOST on each pair's accuracy difference and its flip table.
    pub equivalence: Vec<super::equivalence::PairEquivalence>,
    /// Paired-bootstrap intervals on every approach's ECE, MCE, NLL, Brier
    /// and per-class F1, and on every pair's differences.
    pub intervals: super::intervals::Intervals,
    /// Each linear head's C rule and spread over validation folds, from the
    /// ensemble's manifest (filled by `compare`; empty for ensembles trained
    /// before the rule was recorded).
    pub c_rule: Vec<HeadCRule>,
    pub bootstrap_resamples: usize,
    pub seed: u64,
}

/// One head's C rule record (`train.c_rule`) as the ensemble saved it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadCRule {
    pub head: String,
    #[serde(flatten)]
    pub record: crate::ensemble::manifest::CRuleRecord,
}

/// Identity and context of a comparison (everything but the predictions).
#[derive(Debug, Clone)]
pub struct CompareContext {
    pub ensemble: String,
    pub dataset: String,
    pub backbone: String,
    pub split: String,
    pub classes: Vec<String>,
    pub timeline: Vec<TimelineEntry>,
    pub resamples: usize,
    pub seed: u64,
}

/// Evaluates every approach, the specialists one by one and every pair.
/// `specialist_scores` / `specialist_probs` are `[N, K]`: raw logits and
/// calibrated (unnormalized) probabilities of each specialist.
pub fn compare(
    ctx: CompareContext,
    labels: &[u32],
    approaches: &[ApproachInput],
    specialist_scores: &[f32],
    specialist_probs: &[f32],
) -> Result<Comparison, MetricError> {
    let k = ctx.classes.len();
    let mut results = Vec::with_capacity(approaches.len());
    for a in approaches {
        results.push(ApproachResult {
            name: a.name.clone(),
            description: a.description.clone(),
            summary: summarize(labels, &a.probs, &a.preds, k)?,
            per_class: per_class(labels, &a.preds, k)?,
            confusion: confusion(labels, &a.preds, k)?,
            reliability: calibration_error(labels, &a.probs, k, ECE_BINS)?,
            calibration: calibration_uncertainty(
                labels,
                &a.probs,
                k,
                ECE_BINS,
                ctx.resamples,
                ctx.seed,
            )?,
        });
    }
    let scored: Vec<Scored> = approaches
        .iter()
        .map(|a| Scored {
            name: &a.name,
            probs: &a.probs,
            preds: &a.preds,
        })
        .collect();
    let intervals = intervals(labels, &scored, k, ECE_BINS, ctx.resamples, ctx.seed)?;
    let specialists = one_vs_rest(labels, specialist_scores, specialist_probs, k)?;
    let mut pairs = Vec::new();
    for i in 0..approaches.len() {
        for j in i + 1..approaches.len() {
            let (a, b) = (&approaches[i], &approaches[j]);
            let correct =
                |p: &[u32]| -> Vec<bool> { p.iter().zip(labels).map(|(x, y)| x == y).collect() };
            let m = mcnemar_exact(&correct(&a.preds), &correct(&b.preds))?;
            let boot = paired_bootstrap(labels, &a.preds, &b.preds, k, ctx.resamples, ctx.seed)?;
            let calibration = paired_calibration_bootstrap(
                labels,
                &a.probs,
                &b.probs,
                k,
                ECE_BINS,
                ctx.resamples,
                ctx.seed,
            )?;
            pairs.push(PairResult {
                a: a.name.clone(),
                b: b.name.clone(),
                verdict: verdict(&a.name, &b.name, &boot.accuracy, &m),
                mcnemar: m,
                bootstrap: boot,
                calibration,
            });
        }
    }
    Ok(Comparison {
        ensemble: ctx.ensemble,
        dataset: ctx.dataset,
        backbone: ctx.backbone,
        split: ctx.split,
        n: labels.len(),
        classes: ctx.classes,
        approaches: results,
        specialists,
        pairs,
        timeline: ctx.timeline,
        open_set: None,
        shift: None,
        deduplicated: None,
        equivalence: Vec::new(),
        intervals,
        c_rule: Vec::new(),
        bootstrap_resamples: ctx.resamples,
        seed: ctx.seed,
    })
}
