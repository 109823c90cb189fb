//! Metrics stage, the cost of a style shift: every approach's predictions on
//! the in-domain test split and on a second labelled dataset (another image
//! style, `compare --against`) -> both summaries, the drop of accuracy,
//! macro-F1, NLL and ECE with a bootstrap interval, and the reliability
//! table under shift.
//!
//! The two sets hold different images, so the bootstrap is unpaired: each
//! resample draws the in-domain rows and the shifted rows independently
//! (ChaCha8 seeded with `seed`), drop = in-domain − shifted for accuracy
//! and macro-F1 (shifted − in-domain for NLL and ECE, so a positive drop is
//! always a loss), and the interval is the 2.5th / 97.5th percentile.

use rand::distr::{Distribution, Uniform};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::significance::interval;
use super::{
    calibration_error, summarize, Calibration, Interval, MetricError, Result, Summary, ECE_BINS,
};
use crate::ensemble::predict::ApproachInput;

/// One approach in domain and under shift.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShiftResult {
    pub approach: String,
    pub in_domain: Summary,
    pub shifted: Summary,
    /// Losses (positive = worse under shift), with 95 % bootstrap intervals:
    /// accuracy and macro-F1 as fractions, NLL in nats, ECE in points.
    pub accuracy_drop: Interval,
    pub macro_f1_drop: Interval,
    pub nll_rise: Interval,
    pub ece_rise: Interval,
    pub reliability_shifted: Calibration,
}

/// A labelled set: class ids and every approach's outputs on it.
pub struct Labelled<'a> {
    pub labels: &'a [u32],
    pub approaches: &'a [ApproachInput],
}

fn take(
    labels: &[u32],
    a: &ApproachInput,
    idx: &[usize],
    k: usize,
) -> (Vec<u32>, Vec<f32>, Vec<u32>) {
    let y = idx.iter().map(|&i| labels[i]).collect();
    let p = idx
        .iter()
        .flat_map(|&i| a.probs[i * k..(i + 1) * k].iter().copied())
        .collect();
    let q = idx.iter().map(|&i| a.preds[i]).collect();
    (y, p, q)
}

fn draw(rng: &mut ChaCha8Rng, n: usize) -> Result<Vec<usize>> {
    let u = Uniform::new(0, n).map_err(|_| MetricError::Empty { what: "labels" })?;
    Ok((0..n).map(|_| u.sample(rng)).collect())
}

/// (accuracy, macro-F1, NLL, ECE %) of one resample: the four figures
/// the losses need, not the whole [`Summary`] (rows were checked by it).
fn figures(y: &[u32], p: &[f32], q: &[u32], k: usize) -> [f64; 4] {
    let counts = super::classification::Counts::new(y, q, k);
    [
        counts.accuracy(),
        counts.macro_f1(),
        super::probabilistic::nll_unchecked(y, p, k),
        super::reliability::calibration_unchecked(y, p, k, ECE_BINS).ece,
    ]
}

/// In-domain vs shifted figures of every approach present in both (by name).
pub fn shift(
    in_domain: &Labelled,
    shifted: &Labelled,
    k: usize,
    resamples: usize,
    seed: u64,
) -> Result<Vec<ShiftResult>> {
    if resamples == 0 {
        return Err(MetricError::ZeroParameter {
            what: "the number of bootstrap resamples",
        });
    }
    let mut out = Vec::new();
    for a in in_domain.approaches {
        let Some(b) = shifted.approaches.iter().find(|b| b.name == a.name) else {
            continue;
        };
        let s_in = summarize(in_domain.labels, &a.probs, &a.preds, k)?;
        let s_sh = summarize(shifted.labels, &b.probs, &b.preds, k)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut drops: [Vec<f64>; 4] = Default::default();
        for _ in 0..resamples {
            let i = draw(&mut rng, in_domain.labels.len())?;
            let j = draw(&mut rng, shifted.labels.len())?;
            let (y, p, q) = take(in_domain.labels, a, &i, k);
            let (y2, p2, q2) = take(shifted.labels, b, &j, k);
            let (m, n) = (figures(&y, &p, &q, k), figures(&y2, &p2, &q2, k));
            drops[0].push(m[0] - n[0]);
            drops[1].push(m[1] - n[1]);
            drops[2].push(n[2] - m[2]);
            drops[3].push(n[3] - m[3]);
        }
        let [da, df, dn, de] = drops;
        out.push(ShiftResult {
            approach: a.name.clone(),
            accuracy_drop: interval(s_in.accuracy - s_sh.accuracy, da),
            macro_f1_drop: interval(s_in.macro_f1 - s_sh.macro_f1, df),
            nll_rise: interval(s_sh.nll - s_in.nll, dn),
            ece_rise: interval(s_sh.ece - s_in.ece, de),
            reliability_shifted: calibration_error(shifted.labels, &b.probs, k, ECE_BINS)?,
            in_domain: s_in,
            shifted: s_sh,
        });
    }
    Ok(out)
}

/// Everything `compare --against` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShiftReport {
    /// The second dataset's name and split.
    pub dataset: String,
    pub split: String,
    pub rows: usize,
    /// Rows of classes the ensemble does not know, left out.
    pub rows_left_out: usize,
    pub results: Vec<ShiftResult>,
    pub resamples: usize,
    pub seed: u64,
}
