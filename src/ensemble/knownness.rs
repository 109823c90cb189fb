//! Ensemble stage, "is this one of my classes?": a saved ensemble's outputs
//! on feature rows -> one known-ness score per row (higher = more likely one
//! of the trained classes), for metrics' open-set figures and
//! `score --abstain`.
//!
//! * every approach: its maximum probability (max softmax probability for
//!   the multiclass head, the combiner's maximum for the specialists);
//! * the specialists: also the maximum *calibrated* specialist probability
//!   (`max-sigmoid`: each specialist alone can say "not mine", so all of
//!   them low means "none of these");
//! * the multiclass head: also the energy score, logsumexp of its logits
//!   (Liu et al. 2020).

use super::predict::ApproachInput;
use super::predict::HeadOutputs;

/// One known-ness score of every row.
#[derive(Debug, Clone)]
pub struct Knownness {
    /// Approach id (or `specialists` / `multiclass` for the head-level scores).
    pub approach: String,
    /// `max-probability`, `max-sigmoid` or `energy`.
    pub score: &'static str,
    pub values: Vec<f32>,
}

fn row_max(v: &[f32], k: usize) -> Vec<f32> {
    v.chunks_exact(k)
        .map(|r| r.iter().copied().fold(f32::NEG_INFINITY, f32::max))
        .collect()
}

/// The maximum probability of each row of an approach.
pub fn max_probability(a: &ApproachInput, k: usize) -> Vec<f32> {
    row_max(&a.probs, k)
}

/// Every known-ness score: each approach's maximum probability, then the
/// specialists' max-sigmoid and the multiclass energy.
pub fn knownness(out: &HeadOutputs, approaches: &[ApproachInput]) -> Vec<Knownness> {
    let k = out.k;
    let mut v: Vec<Knownness> = approaches
        .iter()
        .map(|a| Knownness {
            approach: a.name.clone(),
            score: "max-probability",
            values: max_probability(a, k),
        })
        .collect();
    v.push(Knownness {
        approach: "specialists".into(),
        score: "max-sigmoid",
        values: row_max(&out.specialist_probs, k),
    });
    let energy = out
        .multiclass_logits
        .chunks_exact(k)
        .map(|r| {
            let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let s: f64 = r.iter().map(|&z| f64::from(z - m).exp()).sum();
            (f64::from(m) + s.ln()) as f32
        })
        .collect();
    v.push(Knownness {
        approach: "multiclass".into(),
        score: "energy",
        values: energy,
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_row_maxima_and_logsumexp() {
        let out = HeadOutputs {
            n: 2,
            k: 2,
            specialist_logits: vec![0.0; 4],
            specialist_probs: vec![0.1, 0.7, 0.2, 0.05],
            multiclass_logits: vec![0.0, 0.0, 1000.0, 0.0],
        };
        let a = ApproachInput {
            name: "x".into(),
            description: String::new(),
            probs: vec![0.4, 0.6, 0.9, 0.1],
            preds: vec![1, 0],
        };
        let v = knownness(&out, &[a]);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].values, vec![0.6, 0.9]);
        assert_eq!(v[1].values, vec![0.7, 0.2]);
        assert!((v[2].values[0] - 2f32.ln()).abs() < 1e-6);
        assert!((v[2].values[1] - 1000.0).abs() < 1e-3, "no overflow");
    }
}
