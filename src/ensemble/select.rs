//! Ensemble stage, selection on the validation split: every trained
//! candidate of every head gets a validation loss, each head keeps its best
//! (weighting, C), and heads whose best C sits on an end of what was tried
//! ask for one more factor-of-10 step ([`extensions`]) until the optimum is
//! interior or the bound (`train.grid_extension` steps) is hit.
//!
//! Specialists' criterion (`train.selection`): `nll` (default) is the head's
//! own unweighted log-loss over every validation row, not only the few
//! positives that dominate the weighted loss; `calibrated-nll` the
//! unweighted log-loss after a Platt fit of the head's validation scores
//! (invariant to the head's scale and offset); `weighted-nll` the loss
//! weighted like its training (the old rule). `nll` gave the specialists the
//! best cross-validated NLL after calibration on emoji40 and on the
//! Fashion-MNIST subset (docs/experiments.md). The multiclass head is
//! chosen by its validation NLL under its own weighting (unweighted by
//! default); MLP heads by their early-stopping loss. Which of a linear
//! head's Cs is kept (`train.c_rule`: the least loss, or the one-SE rule
//! over validation folds) and the spread recorded: `select/c_rule.rs`.

use candle_core::{Device, Tensor};

mod c_rule;

pub use c_rule::{mean_se, pick, stratified_folds, Candidate, Pick};

use super::manifest::{head_seed, CRuleRecord, EdgeSide, GridEdge, GridPoint, HeadRecord};
use super::params::{Selection, TrainParams};
use super::plan::{Extension, Tried};
use super::Weights;
use crate::calibration::Platt;
use crate::heads::objective::{binary_weights, logistic_loss};
use crate::heads::HeadKind;
use crate::heads::{
    try_softmax_val_loss, ClassWeighting, HeadError, HeadParams, LinearFit, Standardizer,
};

/// Validation rows (standardized) and labels.
pub struct Val<'a> {
    pub x: &'a [f32],
    pub n: usize,
    pub d: usize,
    pub labels: &'a [u32],
    pub k: usize,
}

/// `[n]` logits of many binary fits at once, one matmul.
fn binary_logits(v: &Val, fits: &[&LinearFit]) -> candle_core::Result<Vec<Vec<f64>>> {
    let m = fits.len();
    if m == 0 {
        return Ok(Vec::new());
    }
    let mut w = vec![0f32; v.d * m];
    for (j, f) in fits.iter().enumerate() {
        for (i, &x) in f.w.iter().enumerate() {
            w[i * m + j] = x;
        }
    }
    let x = Tensor::from_slice(v.x, (v.n, v.d), &Device::Cpu)?;
    let w = Tensor::from_vec(w, (v.d, m), &Device::Cpu)?;
    let z: Vec<f32> = x.matmul(&w)?.flatten_all()?.to_vec1()?;
    Ok((0..m)
        .map(|j| {
            (0..v.n)
                .map(|i| f64::from(z[i * m + j]) + f64::from(fits[j].b[0]))
                .collect()
        })
        .collect())
}

fn clipped_ln(p: f64) -> f64 {
    p.max(1e-15).ln()
}

/// One specialist candidate's validation loss under `rule`.
fn binary_loss(rule: Selection, z: &[f64], pos: &[bool], weighting: ClassWeighting) -> f64 {
    let n = z.len() as f64;
    match rule {
        Selection::CalibratedNll => {
            let s: Vec<f32> = z.iter().map(|&v| v as f32).collect();
            match Platt::fit(&s, pos, None) {
                Ok(p) => {
                    -z.iter()
                        .zip(pos)
                        .map(|(&zi, &y)| {
                            let q = p.prob_f64(zi);
                            if y {
                                clipped_ln(q)
                            } else {
                                clipped_ln(1.0 - q)
                            }
                        })
                        .sum::<f64>()
                        / n
                }
                // No positives (or negatives) in val: nothing to choose by.
                Err(_) => f64::INFINITY,
            }
        }
        Selection::Nll => {
            z.iter()
                .zip(pos)
                .map(|(&zi, &y)| logistic_loss(y, zi))
                .sum::<f64>()
                / n
        }
        Selection::WeightedNll => {
            let positives = pos.iter().filter(|&&y| y).count();
            let (wp, wn) = binary_weights(weighting, positives, pos.len());
            let (mut l, mut sw) = (0.0, 0.0);
            for (&zi, &y) in z.iter().zip(pos) {
                let s = if y { wp } else { wn };
                l += s * logistic_loss(y, zi);
                sw += s;
            }
            l / sw
        }
    }
}

/// The validation loss of every candidate, in order.
pub fn losses(tried: &[Tried], v: &Val, cfg: &TrainParams) -> Result<Vec<f64>, HeadError> {
    let mut out = vec![f64::INFINITY; tried.len()];
    let linear_spec: Vec<usize> = (0..tried.len())
        .filter(|&i| tried[i].slot.head < v.k && tried[i].fit.linear().is_some())
        .collect();
    let fits: Vec<&LinearFit> = linear_spec
        .iter()
        .filter_map(|&i| tried[i].fit.linear())
        .collect();
    let z = binary_logits(v, &fits).map_err(HeadError::candle("validation logits"))?;
    for (&i, zi) in linear_spec.iter().zip(&z) {
        let head = tried[i].slot.head as u32;
        let pos: Vec<bool> = v.labels.iter().map(|&y| y == head).collect();
        out[i] = binary_loss(cfg.selection, zi, &pos, tried[i].slot.weighting);
    }
    for (i, t) in tried.iter().enumerate() {
        match &t.fit {
            HeadParams::Mlp(m) => out[i] = m.val_loss,
            HeadParams::Linear(f) if t.slot.head == v.k => {
                out[i] = try_softmax_val_loss(v.x, v.n, v.d, v.k, v.labels, f, t.slot.weighting)?;
            }
            HeadParams::Linear(_) => {}
        }
    }
    Ok(out)
}

/// Index (into `tried`) of each head's best candidate; the first of equals.
pub fn best(tried: &[Tried], loss: &[f64], heads: usize) -> Vec<Option<usize>> {
    let mut b: Vec<Option<usize>> = vec![None; heads];
    for (i, t) in tried.iter().enumerate() {
        let h = t.slot.head;
        match b[h] {
            Some(j) if loss[i].partial_cmp(&loss[j]) != Some(std::cmp::Ordering::Less) => {}
            _ => b[h] = Some(i),
        }
    }
    b
}

/// The Cs tried for (head, weighting), ascending.
fn tried_cs(tried: &[Tried], head: usize, w: ClassWeighting) -> Vec<f64> {
    let mut cs: Vec<f64> = tried
        .iter()
        .filter(|t| t.slot.head == head && t.slot.weighting == w)
        .filter_map(|t| t.slot.c)
        .collect();
    cs.sort_by(f64::total_cmp);
    cs
}

fn grid_of(cfg: &TrainParams, head: usize, k: usize) -> &[f64] {
    if head == k {
        &cfg.multiclass_c_grid
    } else {
        &cfg.c_grid
    }
}

/// Bounds of the extended grid: its ends times 10^∓grid_extension.
fn bounds(grid: &[f64], steps: usize) -> (f64, f64) {
    let lo = grid.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = grid.iter().copied().fold(0.0, f64::max);
    let f = 10f64.powi(steps as i32);
    (lo / f * (1.0 - 1e-9), hi * f * (1.0 + 1e-9))
}

/// Where a head's chosen C sits on what was tried: `None` when interior
/// (or the grid has a single C: no search was asked for).
fn edge(tried: &[Tried], t: &Tried) -> Option<EdgeSide> {
    let c = t.slot.c?;
    let cs = tried_cs(tried, t.slot.head, t.slot.weighting);
    if cs.len() < 2 {
        return None;
    }
    if c <= cs[0] {
        Some(EdgeSide::Low)
    } else if c >= cs[cs.len() - 1] {
        Some(EdgeSide::High)
    } else {
        None
    }
}

/// The next step for every head whose best C is on an end, within bounds.
pub fn extensions(
    tried: &[Tried],
    best: &[Option<usize>],
    cfg: &TrainParams,
    k: usize,
) -> Vec<Extension> {
    let mut out = Vec::new();
    for &i in best.iter().flatten() {
        let t = &tried[i];
        let (Some(c), HeadParams::Linear(f)) = (t.slot.c, &t.fit) else {
            continue;
        };
        let kind = if t.slot.head == k {
            cfg.multiclass_head
        } else {
            cfg.specialist_head
        };
        if kind != HeadKind::Linear {
            continue;
        }
        let (lo, hi) = bounds(grid_of(cfg, t.slot.head, k), cfg.grid_extension);
        let next = match edge(tried, t) {
            Some(EdgeSide::Low) => c / 10.0,
            Some(EdgeSide::High) => c * 10.0,
            None => continue,
        };
        if next >= lo && next <= hi {
            out.push(Extension {
                head: t.slot.head,
                weighting: t.slot.weighting,
                c: next,
                start: f.clone(),
            });
        }
    }
    out
}

/// Mean, SE and folds used of each candidate's fold losses (`None`: MLP).
type Spread = Option<(f64, f64, usize)>;

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Every candidate of `head`, for the manifest, in training order.
pub fn grid_points(
    tried: &[Tried],
    loss: &[f64],
    spread: &[Spread],
    head: usize,
) -> Vec<GridPoint> {
    tried
        .iter()
        .zip(loss.iter().zip(spread))
        .filter(|(t, _)| t.slot.head == head)
        .map(|(t, (&l, s))| GridPoint {
            weighting: t.slot.weighting,
            c: t.slot.c,
            val_loss: l,
            fold_mean: s.and_then(|s| finite(s.0)),
            fold_se: s.and_then(|s| finite(s.1)),
        })
        .collect()
}

/// `train.c_rule` on `head`'s linear candidates: the index (into `tried`)
/// it keeps and its record; `best_loss` (and no record) where the head has
/// no C to choose.
fn apply_rule(
    tried: &[Tried],
    folds: &[Option<Vec<f64>>],
    spread: &[Spread],
    head: usize,
    best_loss: usize,
    cfg: &TrainParams,
) -> (usize, Option<CRuleRecord>) {
    let members: Vec<usize> = (0..tried.len())
        .filter(|&i| tried[i].slot.head == head && tried[i].slot.c.is_some())
        .filter(|&i| spread[i].is_some())
        .collect();
    let cands: Vec<Candidate> = members
        .iter()
        .filter_map(|&i| {
            let (mean, se, _) = spread[i]?;
            let (weighting, c) = (tried[i].slot.weighting, tried[i].slot.c?);
            Some(Candidate {
                weighting,
                c,
                mean,
                se,
            })
        })
        .collect();
    let Some(at) = members.iter().position(|&i| i == best_loss) else {
        return (best_loss, None);
    };
    let Some(p) = pick(cfg.c_rule, &cands, at) else {
        return (best_loss, None);
    };
    let (chosen, bm) = (members[p.chosen], members[p.best_mean]);
    let (ch, b) = (&cands[p.chosen], &cands[p.best_mean]);
    let record = CRuleRecord {
        rule: cfg.c_rule,
        folds: cfg.c_rule_folds,
        folds_used: spread[chosen].map_or(0, |s| s.2),
        chosen_c: ch.c,
        chosen_fold_losses: folds[chosen].iter().flatten().map(|&x| finite(x)).collect(),
        chosen_fold_mean: finite(ch.mean),
        chosen_fold_se: finite(ch.se),
        best_mean_c: b.c,
        best_mean_weighting: tried[bm].slot.weighting,
        best_fold_mean: finite(b.mean),
        best_fold_se: finite(b.se),
        fallback: p.fallback,
    };
    (chosen, Some(record))
}

/// The grid-edge record of a head's final choice: `None` when its C was
/// interior in the configured grid.
pub fn grid_edge(tried: &[Tried], chosen: &Tried, cfg: &TrainParams, k: usize) -> Option<GridEdge> {
    chosen.slot.c?;
    let (glo, ghi) = bounds(grid_of(cfg, chosen.slot.head, k), 0);
    let cs = tried_cs(tried, chosen.slot.head, chosen.slot.weighting);
    let below = cs.iter().filter(|&&x| x < glo).count();
    let above = cs.iter().filter(|&&x| x > ghi).count();
    let side = edge(tried, chosen);
    let side_now = side.or(match (below, above) {
        (0, 0) => None,
        (b, a) if b >= a => Some(EdgeSide::Low),
        _ => Some(EdgeSide::High),
    })?;
    Some(GridEdge {
        side: side_now,
        extensions: below + above,
        at_bound: side.is_some(),
    })
}

/// Every head's chosen candidate: the manifest records and the weights.
pub struct Chosen {
    pub specialists: Vec<HeadRecord>,
    pub multiclass: HeadRecord,
    pub weights: Weights,
}

/// Every head's candidate kept by `train.c_rule` among `tried` (`Ok(None)`
/// when some head has none: its jobs did not run), with the spread of its
/// loss over the validation folds of `v`. `classes` names the specialists.
pub fn choose(
    tried: &[Tried],
    loss: &[f64],
    classes: &[String],
    standardizer: &Standardizer,
    cfg: &TrainParams,
    seed: u64,
    v: &Val,
) -> Result<Option<Chosen>, HeadError> {
    let k = classes.len();
    let best = best(tried, loss, k + 1);
    let folds = c_rule::fold_losses(tried, v, cfg, seed)?;
    let spread: Vec<Spread> = folds.iter().map(|f| f.as_deref().map(mean_se)).collect();
    let record = |name: &str, head: usize| -> Option<(HeadRecord, HeadParams)> {
        let (i, c_rule) = apply_rule(tried, &folds, &spread, head, best[head]?, cfg);
        let t = &tried[i];
        let r = HeadRecord {
            name: name.to_string(),
            kind: t.fit.kind(),
            c: t.slot.c,
            weighting: t.slot.weighting,
            val_loss: loss[i],
            val_loss_grid: grid_points(tried, loss, &spread, head),
            grid_edge: grid_edge(tried, t, cfg, k),
            c_rule,
            iterations: t.fit.iterations(),
            converged: t.fit.converged(),
            objective: t.fit.objective(),
            best_epoch: t.fit.best_epoch(),
            seed: head_seed(seed, head as u64),
            seconds: t.seconds,
        };
        Some((r, t.fit.clone()))
    };
    let Some(records) = classes
        .iter()
        .enumerate()
        .map(|(c, name)| record(name, c))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let (specialists, params): (Vec<HeadRecord>, Vec<HeadParams>) = records.into_iter().unzip();
    let Some((multiclass, multiclass_params)) = record("multiclass", k) else {
        return Ok(None);
    };
    Ok(Some(Chosen {
        specialists,
        multiclass,
        weights: Weights {
            standardizer: standardizer.clone(),
            specialists: params,
            multiclass: multiclass_params,
        },
    }))
}
