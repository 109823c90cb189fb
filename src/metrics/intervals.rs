//! Metrics stage, an interval on every figure: the [N, K] probabilities and
//! predicted classes of every approach on one split -> 95 % paired-bootstrap
//! intervals on each approach's ECE, MCE, NLL, Brier and per-class F1, and
//! on the differences A − B of every pair of approaches.
//!
//! * Resamples: `resamples` draws of N row indices with replacement (ChaCha8
//!   seeded with the comparison's seed: the same draws as
//!   [`super::calibration_uncertainty()`] and [`super::paired_bootstrap`], so
//!   this ECE interval is theirs). Every approach is scored on the same
//!   draw, so a pair's value in resample r is figure_A(r) − figure_B(r):
//!   the differences are paired by construction.
//! * ECE / MCE: the 15 equal-width bins of [`super::reliability`] (a
//!   confidence of exactly 1.0 falls in the last bin); MCE is the largest
//!   |acc_b − conf_b| over the bins non-empty in that resample, percent.
//!   NLL and Brier as [`super::probabilistic`]. Per-class F1 from the
//!   predicted classes with zero_division = 0, as macro-F1: a class absent
//!   from a resample's labels and predictions scores 0 there, so a rare
//!   class's interval reaches down to 0.
//! * Interval: the 2.5th / 97.5th percentile (numpy's linear rule) of the
//!   resampled values; `observed` is the figure on all rows. The numpy
//!   oracle `tests/reference/make_interval_fixtures.py` computes the same on
//!   stored draws (`tests/fixtures/metrics/intervals.json`).

use serde::Serialize;

use super::calibration_uncertainty::{bootstrap, check, Rows};
use super::classification::Counts;
use super::significance::interval;
use super::{check_labels, check_same_len, Interval, Result};

/// One approach's figures (or a pair's differences) with their intervals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FigureIntervals {
    /// ECE, percent (a difference: percentage points).
    pub ece: Interval,
    /// MCE, percent.
    pub mce: Interval,
    /// Mean NLL, nats.
    pub nll: Interval,
    /// Multiclass Brier score.
    pub brier: Interval,
    /// F1 of each class, in class order (fractions).
    pub f1: Vec<Interval>,
}

/// The intervals of one approach.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApproachIntervals {
    pub name: String,
    #[serde(flatten)]
    pub figures: FigureIntervals,
}

/// Paired intervals of the differences `a − b`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairIntervals {
    pub a: String,
    pub b: String,
    #[serde(flatten)]
    pub difference: FigureIntervals,
}

/// Every approach's and every pair's intervals, from one set of resamples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Intervals {
    pub resamples: usize,
    pub seed: u64,
    pub approaches: Vec<ApproachIntervals>,
    pub pairs: Vec<PairIntervals>,
}

/// What the bootstrap scores: an approach's name, probabilities
/// (row-major [N, k]) and predicted classes (what its F1 counts).
#[derive(Debug, Clone, Copy)]
pub struct Scored<'a> {
    pub name: &'a str,
    pub probs: &'a [f32],
    pub preds: &'a [u32],
}

/// Intervals of every approach and pair (`resamples` draws seeded by `seed`).
pub fn intervals(
    labels: &[u32],
    approaches: &[Scored],
    k: usize,
    bins: usize,
    resamples: usize,
    seed: u64,
) -> Result<Intervals> {
    validate(labels, approaches, k, bins, resamples)?;
    let n = labels.len();
    let mut out = from_driver(labels, approaches, k, bins, resamples, |f| {
        bootstrap(n, resamples, seed, f)
    });
    out.seed = seed;
    Ok(out)
}

/// The same on given draws (each a list of row indices), as the numpy
/// oracle does; `seed` is reported as 0.
#[cfg(test)]
pub(crate) fn intervals_on_draws(
    labels: &[u32],
    approaches: &[Scored],
    k: usize,
    bins: usize,
    draws: &[Vec<usize>],
) -> Result<Intervals> {
    validate(labels, approaches, k, bins, draws.len())?;
    for d in draws {
        check_same_len("a draw", d.len(), labels.len())?;
        if let Some(index) = d.iter().position(|&i| i >= labels.len()) {
            return Err(super::MetricError::LengthMismatch {
                what: "a draw's row index",
                got: d[index],
                expected: labels.len(),
            });
        }
    }
    Ok(from_driver(labels, approaches, k, bins, draws.len(), |f| {
        draws.iter().for_each(|d| f(d))
    }))
}

fn validate(
    labels: &[u32],
    approaches: &[Scored],
    k: usize,
    bins: usize,
    resamples: usize,
) -> Result<()> {
    for a in approaches {
        check(labels, a.probs, k, bins, resamples)?;
        check_labels("preds", a.preds, k)?;
        check_same_len("preds", a.preds.len(), labels.len())?;
    }
    Ok(())
}

/// One approach's rows, and a reusable count table for its F1.
struct Scorer<'a> {
    rows: Rows,
    labels: &'a [u32],
    preds: &'a [u32],
    counts: Counts,
}

impl Scorer<'_> {
    /// [ECE, MCE, NLL, Brier, F1_0 .. F1_{k-1}] on rows `idx`.
    fn figures(&mut self, idx: &[usize]) -> Vec<f64> {
        let (ece, mce) = self.rows.ece_mce(idx);
        let mut v = vec![
            ece,
            mce,
            Rows::mean(&self.rows.nll, idx),
            Rows::mean(&self.rows.brier, idx),
        ];
        self.counts.clear();
        for &i in idx {
            self.counts
                .add(self.labels[i] as usize, self.preds[i] as usize);
        }
        v.extend((0..self.counts.tp.len()).map(|c| self.counts.f1(c)));
        v
    }
}

/// Scores every approach on all rows and on every draw `drive` hands over.
fn from_driver(
    labels: &[u32],
    approaches: &[Scored],
    k: usize,
    bins: usize,
    resamples: usize,
    drive: impl FnOnce(&mut dyn FnMut(&[usize])),
) -> Intervals {
    let mut scorers: Vec<Scorer> = approaches
        .iter()
        .map(|a| Scorer {
            rows: Rows::new(labels, a.probs, k, bins),
            labels,
            preds: a.preds,
            counts: Counts::zeros(k),
        })
        .collect();
    let all: Vec<usize> = (0..labels.len()).collect();
    let observed: Vec<Vec<f64>> = scorers.iter_mut().map(|s| s.figures(&all)).collect();
    // samples[approach][figure][resample]
    let mut samples: Vec<Vec<Vec<f64>>> =
        vec![vec![Vec::with_capacity(resamples); 4 + k]; approaches.len()];
    drive(&mut |idx: &[usize]| {
        for (s, out) in scorers.iter_mut().zip(samples.iter_mut()) {
            for (slot, v) in out.iter_mut().zip(s.figures(idx)) {
                slot.push(v);
            }
        }
    });
    let mut pairs = Vec::new();
    for i in 0..approaches.len() {
        for j in i + 1..approaches.len() {
            let obs: Vec<f64> = observed[i]
                .iter()
                .zip(&observed[j])
                .map(|(a, b)| a - b)
                .collect();
            let diff: Vec<Vec<f64>> = samples[i]
                .iter()
                .zip(&samples[j])
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x - y).collect())
                .collect();
            pairs.push(PairIntervals {
                a: approaches[i].name.to_string(),
                b: approaches[j].name.to_string(),
                difference: pack(&obs, diff),
            });
        }
    }
    let approaches = approaches
        .iter()
        .zip(observed.iter().zip(samples))
        .map(|(a, (obs, s))| ApproachIntervals {
            name: a.name.to_string(),
            figures: pack(obs, s),
        })
        .collect();
    Intervals {
        resamples,
        seed: 0,
        approaches,
        pairs,
    }
}

/// Observed values and samples, in [`Scorer::figures`]' order -> intervals.
fn pack(observed: &[f64], samples: Vec<Vec<f64>>) -> FigureIntervals {
    let mut it = observed.iter().zip(samples).map(|(&o, s)| interval(o, s));
    let mut next = || {
        it.next().unwrap_or(Interval {
            observed: f64::NAN,
            low: f64::NAN,
            high: f64::NAN,
        })
    };
    let (ece, mce, nll, brier) = (next(), next(), next(), next());
    let f1 = std::iter::from_fn(|| it.next()).collect();
    FigureIntervals {
        ece,
        mce,
        nll,
        brier,
        f1,
    }
}
