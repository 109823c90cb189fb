//! Metrics stage, comparing two approaches on the same images: their
//! per-row predictions on one split -> McNemar's exact test, paired bootstrap
//! intervals of the accuracy and macro-F1 differences, and a sentence for the
//! report.
//!
//! * McNemar (exact): b = rows A gets right and B wrong, c = the reverse;
//!   p = min(1, 2 · P(X ≤ min(b, c))) with X ~ Bin(b + c, 1/2), p = 1 when
//!   b + c = 0 (equals `scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue`).
//! * Paired bootstrap: `resamples` times, draw N row indices with replacement
//!   (ChaCha8 seeded with `seed`, `rand` 0.9's portable uniform sampling) and
//!   recompute A − B on the same rows; the interval is the 2.5th and 97.5th
//!   percentile of the resampled differences (numpy's default linear
//!   interpolation). Macro-F1 is over all k classes with zero_division = 0,
//!   so a class missing from a resample counts as 0 for both approaches.
//!   Differences are fractions (A − B, in [−1, 1]); [`verdict`] prints points.

use super::classification::Counts;
use super::{check_labels, check_same_len, MetricError, Result};
use rand::distr::{Distribution, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Significance level of [`verdict`].
pub const ALPHA: f64 = 0.05;
/// Default number of bootstrap resamples.
pub const RESAMPLES_DEFAULT: usize = 2000;

/// Discordant pair counts and the exact two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct McNemar {
    /// Rows A classifies correctly and B does not.
    pub b: usize,
    /// Rows B classifies correctly and A does not.
    pub c: usize,
    pub p_value: f64,
}

/// An observed difference A − B with its 95% percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub observed: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// The same interval for B − A.
    pub fn negated(&self) -> Interval {
        Interval {
            observed: -self.observed,
            low: -self.high,
            high: -self.low,
        }
    }
}

/// Paired bootstrap of A − B on the same rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bootstrap {
    pub accuracy: Interval,
    pub macro_f1: Interval,
    pub resamples: usize,
    pub seed: u64,
}

/// McNemar's exact test on the paired correctness of two approaches.
pub fn mcnemar_exact(correct_a: &[bool], correct_b: &[bool]) -> Result<McNemar> {
    if correct_a.is_empty() {
        return Err(MetricError::Empty { what: "correct_a" });
    }
    check_same_len("correct_b", correct_b.len(), correct_a.len())?;
    let b = correct_a
        .iter()
        .zip(correct_b)
        .filter(|(&a, &b)| a && !b)
        .count();
    let c = correct_a
        .iter()
        .zip(correct_b)
        .filter(|(&a, &b)| !a && b)
        .count();
    Ok(McNemar {
        b,
        c,
        p_value: mcnemar_p_value(b, c),
    })
}

/// min(1, 2 · P(X ≤ min(b, c))), X ~ Bin(b + c, 1/2); 1 when b + c = 0.
/// Computed in log space (relative error ~1e-12 even for p ~ 1e-20; p below
/// ~1e-308 underflows to 0).
pub fn mcnemar_p_value(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let m = b.min(c);
    // ln C(n, m) as a running sum of ln((n − i) / (i + 1)).
    let ln_top: f64 = (0..m).map(|i| ((n - i) as f64 / (i + 1) as f64).ln()).sum();
    // Σ_{i ≤ m} C(n, i) / C(n, m), walking down: C(n, i−1) / C(n, i) = i / (n − i + 1).
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for i in (1..=m).rev() {
        term *= i as f64 / (n - i + 1) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    let ln_tail = ln_top + sum.ln() - n as f64 * std::f64::consts::LN_2;
    (2.0 * ln_tail.exp()).min(1.0)
}

/// Paired bootstrap of the accuracy and macro-F1 differences A − B.
pub fn paired_bootstrap(
    labels: &[u32],
    preds_a: &[u32],
    preds_b: &[u32],
    k: usize,
    resamples: usize,
    seed: u64,
) -> Result<Bootstrap> {
    check_labels("labels", labels, k)?;
    check_labels("preds_a", preds_a, k)?;
    check_labels("preds_b", preds_b, k)?;
    check_same_len("preds_a", preds_a.len(), labels.len())?;
    check_same_len("preds_b", preds_b.len(), labels.len())?;
    if resamples == 0 {
        return Err(MetricError::ZeroParameter {
            what: "the number of bootstrap resamples",
        });
    }
    let n = labels.len();
    let (full_a, full_b) = (
        Counts::new(labels, preds_a, k),
        Counts::new(labels, preds_b, k),
    );
    let uniform = Uniform::new(0, n).map_err(|_| MetricError::Empty { what: "labels" })?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut ca, mut cb) = (Counts::zeros(k), Counts::zeros(k));
    let mut acc = Vec::with_capacity(resamples);
    let mut f1 = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        ca.clear();
        cb.clear();
        for _ in 0..n {
            let i = uniform.sample(&mut rng);
            let y = labels[i] as usize;
            ca.add(y, preds_a[i] as usize);
            cb.add(y, preds_b[i] as usize);
        }
        acc.push(ca.accuracy() - cb.accuracy());
        f1.push(ca.macro_f1() - cb.macro_f1());
    }
    Ok(Bootstrap {
        accuracy: interval(full_a.accuracy() - full_b.accuracy(), acc),
        macro_f1: interval(full_a.macro_f1() - full_b.macro_f1(), f1),
        resamples,
        seed,
    })
}

/// The observed value with the 2.5th / 97.5th percentiles of its resamples.
pub(crate) fn interval(observed: f64, mut samples: Vec<f64>) -> Interval {
    samples.sort_by(f64::total_cmp);
    Interval {
        observed,
        low: percentile(&samples, 2.5),
        high: percentile(&samples, 97.5),
    }
}

/// numpy's default (`method='linear'`) percentile `q` in [0, 100] of sorted,
/// non-empty values, with numpy's interpolation formula.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q / 100.0;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let (a, b, t) = (sorted[lo], sorted[hi], h - lo as f64);
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// One sentence comparing A and B by accuracy. Significant when McNemar's
/// p < [`ALPHA`] AND the bootstrap interval excludes 0; then the better
/// approach is named first ("A is better than B by 2.1 points (95% CI 0.4 to
/// 3.9, McNemar p = 0.01)"), otherwise "No significant difference between A
/// and B (A - B = 0.3 points, 95% CI -1.2 to 1.8, McNemar p = 0.62)". Points
/// are percentage points with one decimal.
pub fn verdict(name_a: &str, name_b: &str, acc: &Interval, mcnemar: &McNemar) -> String {
    let p = format_p(mcnemar.p_value);
    let excludes_zero = acc.low > 0.0 || acc.high < 0.0;
    let significant = mcnemar.p_value < ALPHA && excludes_zero && acc.observed != 0.0;
    if significant {
        let (better, worse, d, lo, hi) = if acc.observed > 0.0 {
            (name_a, name_b, acc.observed, acc.low, acc.high)
        } else {
            (name_b, name_a, -acc.observed, -acc.high, -acc.low)
        };
        format!(
            "{better} is better than {worse} by {} points (95% CI {} to {}, McNemar {p})",
            points(d),
            points(lo),
            points(hi)
        )
    } else {
        format!(
            "No significant difference between {name_a} and {name_b} ({name_a} - {name_b} = {} points, 95% CI {} to {}, McNemar {p})",
            points(acc.observed),
            points(acc.low),
            points(acc.high)
        )
    }
}

/// A fraction as percentage points with one decimal, never "-0.0".
fn points(fraction: f64) -> String {
    let v = (fraction * 1000.0).round() / 10.0;
    if v == 0.0 {
        "0.0".to_string()
    } else {
        format!("{v:.1}")
    }
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_string()
    } else if p < 0.01 {
        format!("p = {p:.3}")
    } else {
        format!("p = {p:.2}")
    }
}
