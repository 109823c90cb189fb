//! Calibration stage, choosing the calibrated argmax: the specialists'
//! held-out raw logits ([N, K]) -> every combiner of [`super::joint`] and
//! every λ of its two maps scored by cross-validated NLL inside the
//! calibration split, the least kept ([`calibrate`]), then all refitted on
//! every calibration row.
//!
//! Each fold fits the per-specialist calibrators and the temperature on the
//! other folds once, then the whole λ path of vector scaling and of
//! Dirichlet (warm-started, strongest penalty first), and scores every
//! combiner and every λ on the rows it left out. Each map keeps its λ with
//! the least pooled CV NLL (a small optimism over a handful of λ values that
//! the 0- and 1-parameter combiners do not get; stated in
//! `docs/experiments.md`). A map whose best λ sits on an end of its grid
//! gets up to `extensions` factor-of-10 steps past it, each scored on the
//! same folds (only the new λ is fitted), as the heads' C grids; except
//! vector scaling's strong end, whose limit (a = 1, b = 0) is the
//! `softmax-logits` candidate itself, scored exactly.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::joint::{
    argmax, check_input, fit_base, ln_platt, mean_nll, raw, stratified_folds, take,
    JointCalibration, JointParams,
};
use super::score_map::{MapKind, Rows, ScoreMap};
use super::{check_len, CalibrationError, Combiner};

/// One candidate's cross-validated NLL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub combiner: Combiner,
    pub cv_nll: f64,
    /// Accuracy of its argmax on the rows each fold left out.
    pub cv_accuracy: f64,
}

/// One penalty of a map's path with its pooled CV NLL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LambdaPoint {
    pub lambda: f64,
    pub cv_nll: f64,
}

/// The combiner choice: every candidate's CV NLL and the one with the least,
/// and each map's λ path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub folds: usize,
    pub seed: u64,
    pub candidates: Vec<Candidate>,
    pub chosen: Combiner,
    pub vector_scaling_path: Vec<LambdaPoint>,
    pub dirichlet_path: Vec<LambdaPoint>,
    /// Maps whose best λ fell on an end of the configured grid.
    #[serde(default)]
    pub lambda_edges: Vec<LambdaEdge>,
}

/// A map whose best λ was on an end of its grid, and what extending did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LambdaEdge {
    pub combiner: Combiner,
    /// `low` or `high`.
    pub side: String,
    /// Factor-of-10 steps added beyond the configured grid.
    pub extensions: usize,
    /// Still on the end after the last step allowed (`extensions` bound).
    pub at_bound: bool,
    /// The candidate the map tends to past this end, when there is one
    /// (vector scaling's strong end: `softmax-logits`); not extended then.
    #[serde(default)]
    pub limit: Option<Combiner>,
}

/// (summed NLL, correct argmaxes) of probabilities on labelled rows.
fn score(q: &[f64], y: &[u32], k: usize) -> (f64, f64) {
    let right = q
        .chunks_exact(k)
        .zip(y)
        .filter(|(row, &l)| argmax(row) == l as usize)
        .count();
    (mean_nll(q, y, k) * y.len() as f64, right as f64)
}

/// The combiners without a λ path, in the order of [`Fold::fixed`].
const FIXED: [Combiner; 4] = [
    Combiner::PlattTemperature,
    Combiner::Platt,
    Combiner::Isotonic,
    Combiner::SoftmaxLogits,
];

/// The two maps with a λ path: (combiner, map kind).
const MAPS: [(Combiner, MapKind); 2] = [
    (Combiner::VectorScaling, MapKind::Vector),
    (Combiner::Dirichlet, MapKind::Full),
];

/// One fold, fitted once: its labels, the fixed combiners' scores on the
/// rows it left out, and each map's inputs (train rows, left-out rows).
struct Fold {
    ytr: Vec<u32>,
    yte: Vec<u32>,
    fixed: Vec<(f64, f64)>,
    inputs: [(Vec<f64>, Vec<f64>); 2],
}

fn prepare(
    logits: &[f32],
    labels: &[u32],
    k: usize,
    tr: &[usize],
    te: &[usize],
) -> Result<Fold, CalibrationError> {
    let (ztr, zte) = (take(logits, k, tr), take(logits, k, te));
    let ytr: Vec<u32> = tr.iter().map(|&i| labels[i]).collect();
    let yte: Vec<u32> = te.iter().map(|&i| labels[i]).collect();
    let b = fit_base(&ztr, &ytr, tr.len(), k)?;
    let fixed = JointCalibration {
        vector_scaling: ScoreMap::identity(MapKind::Vector, k),
        dirichlet: ScoreMap::identity(MapKind::Full, k),
        platt: b.platt,
        isotonic: b.isotonic,
        platt_temperature: b.temperature,
    };
    let scores = FIXED
        .iter()
        .map(|&c| score(&fixed.probs(c, &zte, te.len()), &yte, k))
        .collect();
    let inputs = [
        (raw(&ztr), raw(&zte)),
        (
            ln_platt(&fixed.platt, &ztr, k),
            ln_platt(&fixed.platt, &zte, k),
        ),
    ];
    Ok(Fold {
        ytr,
        yte,
        fixed: scores,
        inputs,
    })
}

/// Scores of map `m` at every λ of `lambdas` on one fold's left-out rows.
fn path(fold: &Fold, m: usize, lambdas: &[f64], k: usize) -> Vec<(f64, f64)> {
    let (xtr, xte) = &fold.inputs[m];
    let rows = Rows {
        x: xtr.clone(),
        labels: &fold.ytr,
        n: fold.ytr.len(),
        k,
    };
    ScoreMap::fit_path(&rows, MAPS[m].1, lambdas)
        .iter()
        .map(|map| score(&map.probs(xte, fold.yte.len()), &fold.yte, k))
        .collect()
}

/// Per fold, the (summed NLL, correct) of each candidate it scored.
type FoldScores = Vec<Vec<(f64, f64)>>;

/// Pooled (mean NLL, accuracy) of entry `j` over the folds' score lists.
fn pooled(per_fold: &[Vec<(f64, f64)>], j: usize, n: usize) -> (f64, f64) {
    let (l, r) = per_fold
        .iter()
        .fold((0.0, 0.0), |a, f| (a.0 + f[j].0, a.1 + f[j].1));
    (l / n as f64, r / n as f64)
}

/// Index of the least value (ties: the first).
fn least(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] < v[b] { i } else { b })
}

/// `high` / `low` when `best` is the largest / smallest λ of a grid of at
/// least two values; `None` when it is interior.
fn end_of(lambdas: &[f64], best: usize) -> Option<&'static str> {
    let v = lambdas[best];
    if lambdas.len() < 2 {
        None
    } else if lambdas.iter().all(|&l| l <= v) {
        Some("high")
    } else if lambdas.iter().all(|&l| l >= v) {
        Some("low")
    } else {
        None
    }
}

/// A map's λ path scored on every fold, grown past an end while its best
/// λ sits there and steps remain. Returns the λs, per-fold scores, edge.
fn scored_path(
    folds: &[Fold],
    m: usize,
    mut lambdas: Vec<f64>,
    bound: usize,
    n: usize,
    k: usize,
) -> (Vec<f64>, FoldScores, Option<LambdaEdge>) {
    let mut scores: FoldScores = folds.par_iter().map(|f| path(f, m, &lambdas, k)).collect();
    let combiner = MAPS[m].0;
    let mut edge: Option<LambdaEdge> = None;
    loop {
        let nll: Vec<f64> = (0..lambdas.len())
            .map(|j| pooled(&scores, j, n).0)
            .collect();
        let Some(side) = end_of(&lambdas, least(&nll)) else {
            return (lambdas, scores, edge);
        };
        let e = edge.get_or_insert(LambdaEdge {
            combiner,
            side: side.into(),
            extensions: 0,
            at_bound: false,
            limit: None,
        });
        e.side = side.into();
        if combiner == Combiner::VectorScaling && side == "high" {
            e.limit = Some(Combiner::SoftmaxLogits);
            return (lambdas, scores, edge);
        }
        if e.extensions >= bound {
            e.at_bound = true;
            return (lambdas, scores, edge);
        }
        let (lo, hi) = lambdas
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &l| (a.min(l), b.max(l)));
        let next = if side == "high" { hi * 10.0 } else { lo / 10.0 };
        lambdas.push(next);
        e.extensions += 1;
        let more: FoldScores = folds.par_iter().map(|f| path(f, m, &[next], k)).collect();
        for (s, extra) in scores.iter_mut().zip(more) {
            s.extend(extra);
        }
    }
}

/// Chooses the combiner (and each map's λ) by cross-validated NLL inside
/// the calibration rows, then fits every combiner on all of them.
///
/// `groups[i]` is row i's group (rows of a group share a fold; pass
/// `0..n` for none).
pub fn calibrate(
    logits: &[f32],
    labels: &[u32],
    groups: &[u64],
    k: usize,
    p: &JointParams,
) -> Result<(JointCalibration, Selection), CalibrationError> {
    let n = labels.len();
    check_input(logits, labels, n, k)?;
    check_len(None, "groups", groups.len(), n)?;
    let fold = stratified_folds(labels, groups, k, p.folds, p.seed);
    let folds: Vec<Fold> = (0..p.folds)
        .into_par_iter()
        .filter_map(|f| {
            let (tr, te): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| fold[i] != f);
            (!tr.is_empty() && !te.is_empty()).then(|| prepare(logits, labels, k, &tr, &te))
        })
        .collect::<Result<_, _>>()?;
    let fixed: FoldScores = folds.iter().map(|f| f.fixed.clone()).collect();
    let grids = [p.vector_lambdas.clone(), p.dirichlet_lambdas.clone()];
    let mut chosen_lambda = [0.0f64; 2];
    let mut chosen_score = [(0.0f64, 0.0f64); 2];
    let mut lambda_paths: [Vec<LambdaPoint>; 2] = Default::default();
    let mut lambda_edges = Vec::new();
    for (m, grid) in grids.into_iter().enumerate() {
        let (lambdas, scores, edge) = scored_path(&folds, m, grid, p.extensions, n, k);
        let points: Vec<(f64, f64)> = (0..lambdas.len()).map(|j| pooled(&scores, j, n)).collect();
        let best = least(&points.iter().map(|x| x.0).collect::<Vec<_>>());
        chosen_lambda[m] = lambdas[best];
        chosen_score[m] = points[best];
        let mut path: Vec<LambdaPoint> = lambdas
            .iter()
            .zip(&points)
            .map(|(&lambda, s)| LambdaPoint {
                lambda,
                cv_nll: s.0,
            })
            .collect();
        path.sort_by(|a, b| a.lambda.total_cmp(&b.lambda));
        lambda_paths[m] = path;
        lambda_edges.extend(edge);
    }
    let candidates: Vec<Candidate> = Combiner::ALL
        .iter()
        .map(|&combiner| {
            let (cv_nll, cv_accuracy) = match MAPS.iter().position(|m| m.0 == combiner) {
                Some(m) => chosen_score[m],
                None => pooled(
                    &fixed,
                    FIXED.iter().position(|&f| f == combiner).unwrap_or(0),
                    n,
                ),
            };
            Candidate {
                combiner,
                cv_nll,
                cv_accuracy,
            }
        })
        .collect();
    let chosen =
        candidates[least(&candidates.iter().map(|c| c.cv_nll).collect::<Vec<_>>())].combiner;
    let joint = JointCalibration::fit(logits, labels, n, k, chosen_lambda[0], chosen_lambda[1])?;
    let [vector_scaling_path, dirichlet_path] = lambda_paths;
    Ok((
        joint,
        Selection {
            folds: p.folds,
            seed: p.seed,
            candidates,
            chosen,
            vector_scaling_path,
            dirichlet_path,
            lambda_edges,
        },
    ))
}
