//! Learning curves, step 1: nested, seeded subsets of the training split.
//! For each curve seed, every class's training rows are shuffled once
//! (ChaCha8 seeded by [`subset_seed`] of the run seed and the curve seed, one
//! stream per class); the subset at fraction f keeps the first
//! [`take`]`(n_c, f)` rows of that order. Since `take` grows with f, the
//! 10 % subset is a prefix of the 25 % one, and so on: subsets are nested
//! by construction. Only the training split is subsampled; validation (C
//! selection, calibration) and test stay whole.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::ensemble::manifest::head_seed;
use crate::features::store::FeatureSet;

/// Mixed into the run seed so curve subsets never reuse a head's seed.
const SALT: u64 = 0x6375_7276_6573_2d31; // "curves-1"

/// Seed of curve seed `s` (0-based) under the run seed `seed`.
pub fn subset_seed(seed: u64, s: usize) -> u64 {
    head_seed(seed ^ SALT, s as u64)
}

/// Rows kept of a class with `n` training rows at `fraction`:
/// `round(n * fraction)`, at least `min` (and at most `n`).
pub fn take(n: usize, fraction: f64, min: usize) -> usize {
    let m = (n as f64 * fraction).round() as usize;
    m.max(min).min(n)
}

/// Every class's row indices (into `labels`) in the seeded order of
/// subset seed `seed`.
pub fn class_orders(labels: &[u32], k: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &y) in labels.iter().enumerate() {
        if let Some(rows) = by_class.get_mut(y as usize) {
            rows.push(i);
        }
    }
    for (c, rows) in by_class.iter_mut().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(c as u64);
        rows.shuffle(&mut rng);
    }
    by_class
}

/// The rows of the subset at `fraction` (sorted ascending, so the subset
/// keeps the split's row order).
pub fn subset_rows(orders: &[Vec<usize>], fraction: f64, min: usize) -> Vec<usize> {
    let mut rows: Vec<usize> = orders
        .iter()
        .flat_map(|o| o[..take(o.len(), fraction, min)].iter().copied())
        .collect();
    rows.sort_unstable();
    rows
}

/// The feature set restricted to `rows` (same classes, backbone, split name).
pub fn select(set: &FeatureSet, rows: &[usize]) -> FeatureSet {
    let d = set.dim;
    FeatureSet {
        keys: rows.iter().map(|&i| set.keys[i].clone()).collect(),
        labels: rows.iter().map(|&i| set.labels[i]).collect(),
        features: rows
            .iter()
            .flat_map(|&i| set.features[i * d..(i + 1) * d].iter().copied())
            .collect(),
        ..set.clone()
    }
}
