//! Ensemble stage, part of selection: how much each candidate's validation
//! loss moves over the validation rows, and the rule that picks a linear
//! head's C (`train.c_rule`).
//!
//! * Folds: the validation rows are split into F folds (`train.c_rule_folds`,
//!   default 5), stratified by class: each class's rows in a shuffle seeded
//!   by the head's seed ([`super::head_seed`] of (run seed, head id)), dealt
//!   in turn to the folds, class after class, so every fold holds about 1/F
//!   of each class and fold sizes differ by at most one. No head is refitted:
//!   the folds only measure the spread of the fixed candidates' loss.
//! * Per candidate and fold, the head's selection criterion (the one the
//!   whole validation split chooses by: `train.selection` for the
//!   specialists, the multiclass NLL under its weighting) on that fold's
//!   rows alone; mean and standard error sd(ddof = 1) / √F over the folds
//!   where it is defined (a `calibrated-nll` fold without a positive has no
//!   Platt fit and is left out, alike for every candidate of the head).
//! * `best` keeps the candidate with the least loss on all validation rows,
//!   as before; `one-se` takes the candidate with the least fold mean, and
//!   among the candidates of its weighting the smallest C (strongest L2)
//!   whose fold mean is at most that best mean plus its standard error
//!   (Hastie, Tibshirani & Friedman, ESL 7.10). When the spread is undefined
//!   (fewer than two folds), `one-se` falls back to `best` and says so.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{binary_logits, binary_loss, Val};
use crate::ensemble::manifest::head_seed;
use crate::ensemble::params::{CRule, TrainParams};
use crate::ensemble::plan::Tried;
use crate::heads::{try_softmax_val_loss, ClassWeighting, HeadError, HeadParams};

/// The fold (0..folds) of each row: stratified by `labels`, seeded.
pub fn stratified_folds(labels: &[u32], folds: usize, seed: u64) -> Vec<usize> {
    let k = labels.iter().map(|&y| y as usize + 1).max().unwrap_or(0);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &y) in labels.iter().enumerate() {
        by_class[y as usize].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = vec![0; labels.len()];
    let mut next = 0;
    for rows in &mut by_class {
        rows.shuffle(&mut rng);
        for &r in rows.iter() {
            out[r] = next % folds.max(1);
            next += 1;
        }
    }
    out
}

/// Mean and standard error (sd with ddof 1, over √m) of the finite values,
/// and m; the SE is NaN when m < 2.
pub fn mean_se(values: &[f64]) -> (f64, f64, usize) {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let m = v.len();
    if m == 0 {
        return (f64::NAN, f64::NAN, 0);
    }
    let mean = v.iter().sum::<f64>() / m as f64;
    if m < 2 {
        return (mean, f64::NAN, m);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1) as f64;
    (mean, (var / m as f64).sqrt(), m)
}

/// One candidate of one head as the rule sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub weighting: ClassWeighting,
    pub c: f64,
    pub mean: f64,
    pub se: f64,
}

/// What the rule picked among one head's candidates (indices into them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub chosen: usize,
    pub best_mean: usize,
    /// `one-se` fell back to `best`: the spread was undefined.
    pub fallback: bool,
}

/// The rule's pick; `best_loss` is the candidate with the least loss on all
/// validation rows (`best`'s choice). `None` without candidates.
pub fn pick(rule: CRule, cands: &[Candidate], best_loss: usize) -> Option<Pick> {
    let mut best_mean: Option<usize> = None;
    for (i, c) in cands.iter().enumerate() {
        if c.mean.is_finite() && best_mean.is_none_or(|b| c.mean < cands[b].mean) {
            best_mean = Some(i);
        }
    }
    let bm = best_mean.unwrap_or(best_loss);
    let threshold = cands.get(bm)?.mean + cands[bm].se;
    let fallback = rule == CRule::OneSe && !threshold.is_finite();
    if rule == CRule::Best || fallback {
        return Some(Pick {
            chosen: best_loss,
            best_mean: bm,
            fallback,
        });
    }
    let mut chosen = bm;
    for (i, c) in cands.iter().enumerate() {
        let same = c.weighting == cands[bm].weighting;
        if same && c.mean <= threshold && c.c < cands[chosen].c {
            chosen = i;
        }
    }
    Some(Pick {
        chosen,
        best_mean: bm,
        fallback: false,
    })
}

/// Rows of each fold, in row order.
fn rows_of(folds: &[usize], f: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); f];
    for (r, &fold) in folds.iter().enumerate() {
        out[fold].push(r);
    }
    out
}

/// The criterion of every linear candidate on every fold of its head
/// (`None` for MLP candidates: no C to choose).
pub fn fold_losses(
    tried: &[Tried],
    v: &Val,
    cfg: &TrainParams,
    seed: u64,
) -> Result<Vec<Option<Vec<f64>>>, HeadError> {
    let f = cfg.c_rule_folds;
    let folds_of = |head: usize| {
        rows_of(
            &stratified_folds(v.labels, f, head_seed(seed, head as u64)),
            f,
        )
    };
    let mut out = vec![None; tried.len()];
    let spec: Vec<usize> = (0..tried.len())
        .filter(|&i| tried[i].slot.head < v.k && tried[i].fit.linear().is_some())
        .collect();
    let fits: Vec<_> = spec.iter().filter_map(|&i| tried[i].fit.linear()).collect();
    let z = binary_logits(v, &fits).map_err(HeadError::candle("validation logits"))?;
    let mut head_folds: Vec<Option<Vec<Vec<usize>>>> = vec![None; v.k + 1];
    for (&i, zi) in spec.iter().zip(&z) {
        let (head, w) = (tried[i].slot.head, tried[i].slot.weighting);
        let rows = head_folds[head].get_or_insert_with(|| folds_of(head));
        let values = rows
            .iter()
            .map(|rows| {
                let zf: Vec<f64> = rows.iter().map(|&r| zi[r]).collect();
                let pf: Vec<bool> = rows.iter().map(|&r| v.labels[r] == head as u32).collect();
                if rows.is_empty() {
                    f64::NAN
                } else {
                    binary_loss(cfg.selection, &zf, &pf, w)
                }
            })
            .collect();
        out[i] = Some(values);
    }
    let multi: Vec<Vec<usize>> = folds_of(v.k);
    let gathered: Vec<(Vec<f32>, Vec<u32>)> = multi
        .iter()
        .map(|rows| {
            let x = rows
                .iter()
                .flat_map(|&r| v.x[r * v.d..(r + 1) * v.d].iter().copied());
            (x.collect(), rows.iter().map(|&r| v.labels[r]).collect())
        })
        .collect();
    for (i, t) in tried.iter().enumerate() {
        let HeadParams::Linear(fit) = &t.fit else {
            continue;
        };
        if t.slot.head != v.k {
            continue;
        }
        let mut values = Vec::with_capacity(f);
        for (x, y) in &gathered {
            values.push(if y.is_empty() {
                f64::NAN
            } else {
                try_softmax_val_loss(x, y.len(), v.d, v.k, y, fit, t.slot.weighting)?
            });
        }
        out[i] = Some(values);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
