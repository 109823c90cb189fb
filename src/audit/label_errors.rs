//! Audit stage, likely label errors: the cached training features -> k-fold
//! out-of-fold probabilities of the multiclass linear head (retrained per
//! fold through the scheduler, C chosen per fold on the validation split by
//! its NLL, as `train` chooses the multiclass head's C; no grid extension)
//! -> a confident-learning style ranking of the training images whose given
//! label is least likely.
//!
//! * Ranking: **self-confidence**, the out-of-fold probability of the given
//!   label (ascending; ties by row). The normalized margin (p_given minus
//!   the largest other probability) is reported beside it.
//! * Flag: the confident joint (Northcutt et al. 2021) as cleanlab's
//!   `find_label_issues(filter_by="confident_learning")` computes it
//!   ([`super::confident`], which says where it differs from the paper).
//! * Folds keep the two styles of an emoji together and are stratified
//!   (`calibration::joint::stratified_folds`), seeded with the run seed.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Serialize;

use crate::calibration::joint::stratified_folds;
use crate::ensemble::predict::multiclass_probs;
use crate::ensemble::TrainParams;
use crate::features::store::FeatureSet;
use crate::heads::HeadParams;
use crate::heads::{try_linear_logits, FitOptions, HeadError, Standardizer};
use crate::metrics::MetricError;
use crate::scheduler::lane::{Lane, LaneError, Rows};
use crate::scheduler::{self, Job, JobError};

use super::{confident, AuditError};

/// Candidates of the global list (most suspicious first).
pub const TOP_OVERALL: usize = 40;
/// [`LabelErrors::flag_rule`].
const FLAG_RULE: &str =
    "confident joint, as cleanlab's find_label_issues(filter_by=\"confident_learning\")";
/// Stream mixed into the run seed for the folds.
const FOLD_SEED: u64 = 0x6175_6469_745f_666f;

/// One training image whose label is in doubt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub row: usize,
    pub key: String,
    pub given: String,
    /// The most probable class out of fold.
    pub suggested: String,
    /// Out-of-fold probability of the given label (the ranking score).
    pub self_confidence: f64,
    /// p_given minus the largest other probability, in [-1, 1].
    pub margin: f64,
    /// cleanlab's normalized margin, (margin + 1) / 2, in [0, 1].
    pub normalized_margin: f64,
    /// Flagged by the confident joint.
    pub flagged: bool,
    /// 1 = least likely label of the whole training split.
    pub rank: usize,
}

/// One class's candidates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassCandidates {
    pub class: String,
    pub rows: usize,
    /// Rows of this class flagged by the confident joint.
    pub flagged: usize,
    /// The class's threshold t_j (2 when no row carries it).
    pub threshold: f64,
    pub candidates: Vec<Candidate>,
}

/// What the out-of-fold audit found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelErrors {
    pub folds: usize,
    pub ranking: String,
    /// How a row is flagged.
    pub flag_rule: String,
    /// The C chosen in each fold.
    pub c_per_fold: Vec<f64>,
    /// Accuracy of the out-of-fold argmax against the given labels.
    pub out_of_fold_accuracy: f64,
    pub flagged: usize,
    pub top: Vec<Candidate>,
    pub per_class: Vec<ClassCandidates>,
}

/// Out-of-fold probabilities `[N, K]` of `train`'s rows and the C of each fold.
pub fn out_of_fold(
    train: &FeatureSet,
    val: &FeatureSet,
    cfg: &TrainParams,
    folds: usize,
    seed: u64,
    stop: &Arc<AtomicBool>,
) -> Result<(Vec<f32>, Vec<f64>), AuditError> {
    let (n, k) = (train.len(), train.classes.len());
    let groups = crate::images::emoji40::groups(&train.keys);
    let fold = stratified_folds(&train.labels, &groups, k, folds, seed ^ FOLD_SEED);
    let mut probs = vec![0.0f32; n * k];
    let mut cs = Vec::with_capacity(folds);
    for f in 0..folds {
        let (inside, out): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| fold[i] != f);
        if out.is_empty() || inside.is_empty() {
            cs.push(f64::NAN);
            continue;
        }
        let (p, c) =
            fit_fold(train, val, cfg, &inside, &out, stop).map_err(|source| AuditError::Fold {
                fold: f,
                folds,
                source: Box::new(source),
            })?;
        for (r, &i) in out.iter().enumerate() {
            probs[i * k..(i + 1) * k].copy_from_slice(&p[r * k..(r + 1) * k]);
        }
        cs.push(c);
    }
    Ok((probs, cs))
}

/// Why one fold's training failed (inside [`AuditError::Fold`]).
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error(transparent)]
    Lane(#[from] LaneError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Metric(#[from] MetricError),
    #[error("interrupted")]
    Interrupted,
    #[error("the multiclass path returned a non-linear head")]
    NotLinear,
    #[error("the multiclass path returned no head")]
    NoHead,
}

fn rows_of(set: &FeatureSet, rows: &[usize]) -> Vec<f32> {
    let d = set.dim;
    rows.iter()
        .flat_map(|&i| set.features[i * d..(i + 1) * d].iter().copied())
        .collect()
}

/// Trains the multiclass path on `inside`, picks C by validation NLL,
/// returns the probabilities of the `out` rows and that C.
fn fit_fold(
    train: &FeatureSet,
    val: &FeatureSet,
    cfg: &TrainParams,
    inside: &[usize],
    out: &[usize],
    stop: &Arc<AtomicBool>,
) -> Result<(Vec<f32>, f64), FoldError> {
    let (d, k) = (train.dim, train.classes.len());
    let x_in = rows_of(train, inside);
    let std = Standardizer::try_fit(&x_in, inside.len(), d)?;
    let apply = |x: &[f32]| std.try_apply(x);
    let (xs_in, xs_val, xs_out) = (
        apply(&x_in)?,
        apply(&val.features)?,
        apply(&rows_of(train, out))?,
    );
    let labels_in: Vec<u32> = inside.iter().map(|&i| train.labels[i]).collect();
    let rows_in = Rows {
        x: &xs_in,
        n: inside.len(),
        d,
        labels: &labels_in,
    };
    let rows_val = Rows {
        x: &xs_val,
        n: val.len(),
        d,
        labels: &val.labels,
    };
    let lane = Lane::cpu(0, &rows_in, &rows_val)?;
    let job = Job::SoftmaxPath {
        cs: cfg.multiclass_c_grid.clone(),
        weighting: cfg.multiclass_class_weight,
        start: None,
        warm: cfg.warm_start,
    };
    let opts = FitOptions {
        max_iter: cfg.max_iter,
        tol: cfg.tol,
        history: 10,
    };
    let outcome = scheduler::run(
        &[job],
        &[lane],
        &labels_in,
        k,
        &opts,
        None,
        Arc::clone(stop),
    );
    let fits = outcome
        .into_iter()
        .next()
        .flatten()
        .ok_or(FoldError::Interrupted)?
        .result?;
    let mut best: Option<(f64, usize)> = None;
    for (i, fit) in fits.iter().enumerate() {
        let HeadParams::Linear(fit) = fit else {
            return Err(FoldError::NotLinear);
        };
        let z = try_linear_logits(&xs_val, val.len(), d, fit)?;
        let (p, _) = multiclass_probs(&z, val.len(), k);
        let nll = crate::metrics::nll(&val.labels, &p, k)?;
        if best.is_none_or(|(b, _)| nll < b) {
            best = Some((nll, i));
        }
    }
    let (_, i) = best.ok_or(FoldError::NoHead)?;
    let HeadParams::Linear(fit) = &fits[i] else {
        return Err(FoldError::NotLinear);
    };
    let z = try_linear_logits(&xs_out, out.len(), d, fit)?;
    Ok((
        multiclass_probs(&z, out.len(), k).0,
        cfg.multiclass_c_grid[i],
    ))
}

/// Ranks the rows by self-confidence and flags them by the confident joint
/// ([`super::confident`], cleanlab's definitions).
pub fn rank(
    set: &FeatureSet,
    probs: &[f32],
    per_class_limit: usize,
    folds: usize,
    c_per_fold: Vec<f64>,
) -> LabelErrors {
    let (n, k) = (set.len(), set.classes.len());
    let s = confident::score(&set.labels, probs, k);
    let mut correct = 0usize;
    let candidates: Vec<Candidate> = s
        .ranking()
        .into_iter()
        .enumerate()
        .map(|(r, i)| {
            let y = set.labels[i] as usize;
            let argmax = crate::metrics::argmax(&probs[i * k..(i + 1) * k]);
            correct += usize::from(argmax == y);
            Candidate {
                row: i,
                key: set.keys[i].clone(),
                given: set.classes[y].clone(),
                suggested: set.classes[argmax].clone(),
                self_confidence: s.self_confidence[i],
                margin: s.margin[i],
                normalized_margin: s.normalized_margin(i),
                flagged: s.flagged[i],
                rank: r + 1,
            }
        })
        .collect();
    let flagged = candidates.iter().filter(|c| c.flagged).count();
    let per_class = (0..k)
        .map(|j| {
            let of_class = candidates
                .iter()
                .filter(|c| set.labels[c.row] as usize == j);
            ClassCandidates {
                class: set.classes[j].clone(),
                rows: of_class.clone().count(),
                flagged: of_class.clone().filter(|c| c.flagged).count(),
                threshold: s.thresholds[j],
                candidates: of_class.take(per_class_limit).cloned().collect(),
            }
        })
        .collect();
    LabelErrors {
        folds,
        ranking: "self-confidence (out-of-fold probability of the given label, ascending)".into(),
        flag_rule: FLAG_RULE.into(),
        c_per_fold,
        out_of_fold_accuracy: correct as f64 / n.max(1) as f64,
        flagged,
        top: candidates.iter().take(TOP_OVERALL).cloned().collect(),
        per_class,
    }
}
