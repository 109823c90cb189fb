//! Metrics stage, how sure the calibration figures of one split are: the
//! [N, K] probabilities of an approach -> a bootstrap interval on its ECE,
//! the ECE a *perfectly calibrated* model with the same confidences would
//! show on the same number of rows, and paired intervals on the ECE / NLL /
//! Brier differences between two approaches.
//!
//! * ECE interval: `resamples` times, draw N rows with replacement
//!   (ChaCha8 seeded with `seed`) and recompute the 15-bin ECE with the bins
//!   of [`super::reliability`]; the interval is the 2.5th / 97.5th percentile.
//!   ECE is biased upwards on few rows, so the interval says how much the
//!   figure moves with the sample, not where the true calibration error is.
//! * Perfect-calibration reference ("consistency resampling", Bröcker &
//!   Smith 2007): keep every row's top confidence c_i and draw its
//!   correctness as Bernoulli(c_i), i.e. labels from a model that is
//!   calibrated by construction; the mean and 95th percentile of that ECE
//!   is what a perfect model shows on this many rows, and
//!   p = (1 + #{ECE_r ≥ ECE}) / (1 + R) tests "this approach is calibrated".
//!   An ECE below the reference mean is as good as a sample of N can show.
//! * Paired differences A − B resample the same rows for both approaches.

use rand::distr::{Distribution, Uniform};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::reliability::{bin_of, upper_edges};
use super::significance::{interval, percentile};
use super::NLL_EPS;
use super::{argmax, check_labels, check_probs, check_same_len, Interval, MetricError, Result};

/// Calibration figures of one approach with their sampling uncertainty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationUncertainty {
    /// ECE (percent) with its 95 % bootstrap percentile interval.
    pub ece: Interval,
    /// Mean ECE (percent) of a perfectly calibrated model with these
    /// confidences on these many rows.
    pub perfect_ece_mean: f64,
    /// 95th percentile of that ECE.
    pub perfect_ece_p95: f64,
    /// Consistency-resampling p-value of "calibrated".
    pub p_value: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// Paired bootstrap intervals of A − B on the same rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationDiff {
    /// ECE difference, percentage points.
    pub ece: Interval,
    /// Mean NLL difference, nats.
    pub nll: Interval,
    /// Multiclass Brier difference.
    pub brier: Interval,
}

/// What the bootstrap needs of each row, computed once (shared with
/// [`super::intervals`]).
pub(crate) struct Rows {
    bin: Vec<usize>,
    conf: Vec<f64>,
    correct: Vec<bool>,
    pub(crate) nll: Vec<f64>,
    pub(crate) brier: Vec<f64>,
    bins: usize,
}

impl Rows {
    pub(crate) fn new(labels: &[u32], probs: &[f32], k: usize, bins: usize) -> Rows {
        let uppers = upper_edges(bins);
        let mut r = Rows {
            bin: Vec::with_capacity(labels.len()),
            conf: Vec::with_capacity(labels.len()),
            correct: Vec::with_capacity(labels.len()),
            nll: Vec::with_capacity(labels.len()),
            brier: Vec::with_capacity(labels.len()),
            bins,
        };
        for (&y, row) in labels.iter().zip(probs.chunks_exact(k)) {
            let pred = argmax(row);
            let c = row[pred];
            r.bin.push(bin_of(&uppers, c));
            r.conf.push(f64::from(c));
            r.correct.push(pred == y as usize);
            let py = f64::from(row[y as usize]).max(NLL_EPS);
            r.nll.push(-py.ln());
            let sq: f64 = row
                .iter()
                .enumerate()
                .map(|(j, &p)| (f64::from(p) - f64::from(u8::from(j == y as usize))).powi(2))
                .sum();
            r.brier.push(sq);
        }
        r
    }

    /// ECE (percent) of the rows `idx` with correctness `correct(i)`.
    pub(crate) fn ece(&self, idx: &[usize], correct: impl Fn(usize) -> bool) -> f64 {
        let mut gap = vec![0.0f64; self.bins];
        for &i in idx {
            gap[self.bin[i]] += f64::from(u8::from(correct(i))) - self.conf[i];
        }
        let total: f64 = gap.iter().map(|g| g.abs()).sum();
        100.0 * total / idx.len() as f64
    }

    /// ECE and MCE (percent) of the rows `idx` with their own correctness:
    /// MCE is the largest |acc_b - conf_b| over the bins non-empty in `idx`.
    pub(crate) fn ece_mce(&self, idx: &[usize]) -> (f64, f64) {
        let mut gap = vec![0.0f64; self.bins];
        let mut count = vec![0usize; self.bins];
        for &i in idx {
            gap[self.bin[i]] += f64::from(u8::from(self.correct[i])) - self.conf[i];
            count[self.bin[i]] += 1;
        }
        let total: f64 = gap.iter().map(|g| g.abs()).sum();
        let mce = gap
            .iter()
            .zip(&count)
            .filter(|(_, &c)| c > 0)
            .map(|(g, &c)| g.abs() / c as f64)
            .fold(0.0, f64::max);
        (100.0 * total / idx.len() as f64, 100.0 * mce)
    }

    pub(crate) fn mean(v: &[f64], idx: &[usize]) -> f64 {
        idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64
    }
}

pub(crate) fn check(
    labels: &[u32],
    probs: &[f32],
    k: usize,
    bins: usize,
    resamples: usize,
) -> Result<()> {
    check_labels("labels", labels, k)?;
    check_probs(probs, labels.len(), k)?;
    if bins == 0 {
        return Err(MetricError::ZeroParameter {
            what: "the number of calibration bins",
        });
    }
    if resamples == 0 {
        return Err(MetricError::ZeroParameter {
            what: "the number of bootstrap resamples",
        });
    }
    Ok(())
}

/// Draws `resamples` bootstrap index sets of `n` rows, calling `f` on each.
pub(crate) fn bootstrap(n: usize, resamples: usize, seed: u64, mut f: impl FnMut(&[usize])) {
    let Ok(uniform) = Uniform::new(0, n) else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx = vec![0usize; n];
    for _ in 0..resamples {
        for slot in idx.iter_mut() {
            *slot = uniform.sample(&mut rng);
        }
        f(&idx);
    }
}

/// ECE interval and perfect-calibration reference of one approach
/// (`probs` row-major [N, k], rows summing to 1).
pub fn calibration_uncertainty(
    labels: &[u32],
    probs: &[f32],
    k: usize,
    bins: usize,
    resamples: usize,
    seed: u64,
) -> Result<CalibrationUncertainty> {
    check(labels, probs, k, bins, resamples)?;
    let rows = Rows::new(labels, probs, k, bins);
    let all: Vec<usize> = (0..labels.len()).collect();
    let observed = rows.ece(&all, |i| rows.correct[i]);
    let mut boot = Vec::with_capacity(resamples);
    bootstrap(labels.len(), resamples, seed, |idx| {
        boot.push(rows.ece(idx, |i| rows.correct[i]));
    });
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut perfect = Vec::with_capacity(resamples);
    let mut drawn = vec![false; labels.len()];
    for _ in 0..resamples {
        for (d, &c) in drawn.iter_mut().zip(&rows.conf) {
            *d = rng.random::<f64>() < c;
        }
        perfect.push(rows.ece(&all, |i| drawn[i]));
    }
    let at_least = perfect.iter().filter(|&&e| e >= observed).count();
    perfect.sort_by(f64::total_cmp);
    Ok(CalibrationUncertainty {
        ece: interval(observed, boot),
        perfect_ece_mean: perfect.iter().sum::<f64>() / resamples as f64,
        perfect_ece_p95: percentile(&perfect, 95.0),
        p_value: (1 + at_least) as f64 / (1 + resamples) as f64,
        resamples,
        seed,
    })
}

/// Paired bootstrap of the ECE, NLL and Brier differences A − B.
pub fn paired_calibration_bootstrap(
    labels: &[u32],
    probs_a: &[f32],
    probs_b: &[f32],
    k: usize,
    bins: usize,
    resamples: usize,
    seed: u64,
) -> Result<CalibrationDiff> {
    check(labels, probs_a, k, bins, resamples)?;
    check_same_len("probs_b", probs_b.len(), probs_a.len())?;
    check_probs(probs_b, labels.len(), k)?;
    let (a, b) = (
        Rows::new(labels, probs_a, k, bins),
        Rows::new(labels, probs_b, k, bins),
    );
    let stats = |idx: &[usize]| -> [f64; 3] {
        [
            a.ece(idx, |i| a.correct[i]) - b.ece(idx, |i| b.correct[i]),
            Rows::mean(&a.nll, idx) - Rows::mean(&b.nll, idx),
            Rows::mean(&a.brier, idx) - Rows::mean(&b.brier, idx),
        ]
    };
    let all: Vec<usize> = (0..labels.len()).collect();
    let observed = stats(&all);
    let mut samples: [Vec<f64>; 3] = Default::default();
    bootstrap(labels.len(), resamples, seed, |idx| {
        for (s, v) in samples.iter_mut().zip(stats(idx)) {
            s.push(v);
        }
    });
    let [se, sn, sb] = samples;
    Ok(CalibrationDiff {
        ece: interval(observed[0], se),
        nll: interval(observed[1], sn),
        brier: interval(observed[2], sb),
    })
}
