//! Stage 2 stand-in for benchmarks (`ovr bench train --synthetic N`):
//! seeded random features with a planted linear structure, written as a
//! split file block by block (`features::mapped::write_streamed`), so N is
//! bounded by the disk, not by RAM.
//!
//! The model: `k` classes of equal prior, class means `mu_c ~ N(0, s^2 I)`
//! with `s = separation / sqrt(2 d)` (so two means lie about `separation`
//! apart), a row of class `y` is `mu_y + e`, `e` standard-normal-like noise
//! (the Irwin-Hall sum of 4 uniforms, rescaled to unit variance). With equal
//! isotropic noise the Bayes rule is the nearest class mean, a linear rule:
//! [`Planted::bayes_class`] is the known answer a trained linear head
//! approaches.
//!
//! Rows are generated in fixed groups of [`GEN_ROWS`], each from its own
//! ChaCha8 stream, so the bytes depend only on the seed and the shape, not
//! on threads or the writer's block size.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::feature_set::{FeatureDtype, SplitHeader};
use super::mapped::write_streamed;
use super::store::StoreError;

/// Rows per generator stream.
pub const GEN_ROWS: usize = 1024;

/// The planted model behind a synthetic split.
#[derive(Debug, Clone)]
pub struct Planted {
    pub k: usize,
    pub d: usize,
    /// Row-major `[k, d]` class means.
    pub means: Vec<f32>,
    seed: u64,
}

/// Unit-variance noise: `(u1 + u2 + u3 + u4 - 2) * sqrt(3)`.
fn noise(rng: &mut ChaCha8Rng) -> f32 {
    let s: f32 = (0..4).map(|_| rng.random::<f32>()).sum();
    (s - 2.0) * 3f32.sqrt()
}

impl Planted {
    /// Class means for `k` classes in `d` dimensions, about `separation`
    /// apart, from `seed`.
    pub fn new(k: usize, d: usize, separation: f64, seed: u64) -> Planted {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let s = (separation / (2.0 * d.max(1) as f64).sqrt()) as f32;
        let means = (0..k * d).map(|_| noise(&mut rng) * s).collect();
        Planted { k, d, means, seed }
    }

    /// The labels of rows `0..n`: uniform over the classes (stream 0).
    pub fn labels(&self, n: usize) -> Vec<u32> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(1);
        (0..n)
            .map(|_| rng.random_range(0..self.k.max(1) as u32))
            .collect()
    }

    /// Rows `start..start + len` of the split whose labels are `labels`
    /// (`start` a multiple of [`GEN_ROWS`]); `stream` keeps splits apart.
    pub fn rows(&self, labels: &[u32], start: usize, len: usize, stream: u64) -> Vec<f32> {
        let d = self.d;
        let mut out = vec![0f32; len * d];
        out.par_chunks_mut(GEN_ROWS * d.max(1))
            .enumerate()
            .for_each(|(g, block)| {
                let first = start + g * GEN_ROWS;
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                rng.set_stream(stream.wrapping_mul(1 << 40) + 2 + (first / GEN_ROWS) as u64);
                for (i, row) in block.chunks_exact_mut(d.max(1)).enumerate() {
                    let y = labels[first + i] as usize;
                    let mu = &self.means[y * d..(y + 1) * d];
                    for (v, m) in row.iter_mut().zip(mu) {
                        *v = m + noise(&mut rng);
                    }
                }
            });
        out
    }

    /// The nearest class mean of a row: the Bayes rule of the model.
    pub fn bayes_class(&self, row: &[f32]) -> usize {
        let dist = |c: usize| -> f64 {
            let mu = &self.means[c * self.d..(c + 1) * self.d];
            row.iter()
                .zip(mu)
                .map(|(&x, &m)| (f64::from(x) - f64::from(m)).powi(2))
                .sum()
        };
        (0..self.k)
            .min_by(|&a, &b| dist(a).total_cmp(&dist(b)))
            .unwrap_or(0)
    }

    /// Writes a training split of `n` rows to `path` as `dtype`, block by block.
    pub fn write_split(
        &self,
        path: &Path,
        n: usize,
        dtype: FeatureDtype,
    ) -> Result<(), StoreError> {
        let labels = self.labels(n);
        let keys: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let head = SplitHeader {
            dataset: format!("synthetic-{n}x{}-k{}-seed{}", self.d, self.k, self.seed),
            split: "train".into(),
            backbone: "synthetic".into(),
            weights_sha256: String::new(),
            classes: (0..self.k).map(|c| format!("class{c}")).collect(),
        };
        let block = 16 * GEN_ROWS;
        write_streamed(
            path,
            &head,
            &keys,
            &labels,
            self.d,
            dtype,
            block,
            |start, len| self.rows(&labels, start, len, 0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::feature_set::FeatureSet;

    #[test]
    fn rows_depend_on_the_seed_only_and_carry_the_planted_classes() {
        let p = Planted::new(4, 32, 8.0, 7);
        let labels = p.labels(3000);
        let whole = p.rows(&labels, 0, 3000, 0);
        // Generated in two pieces (and on any thread count): the same rows.
        let mut pieces = p.rows(&labels, 0, 2048, 0);
        pieces.extend(p.rows(&labels, 2048, 952, 0));
        assert_eq!(whole, pieces);
        assert_ne!(whole, p.rows(&labels, 0, 3000, 1));
        assert_ne!(whole, Planted::new(4, 32, 8.0, 8).rows(&labels, 0, 3000, 0));
        // Noise has unit variance; with means 8 apart in 32 dimensions the
        // nearest mean recovers almost every label (Bayes error ~ Phi(-4)).
        let mean_sq: f64 = whole
            .chunks_exact(32)
            .zip(&labels)
            .flat_map(|(r, &y)| {
                let mu = &p.means[y as usize * 32..(y as usize + 1) * 32];
                r.iter().zip(mu).map(|(x, m)| f64::from(x - m).powi(2))
            })
            .sum::<f64>()
            / whole.len() as f64;
        assert!((mean_sq - 1.0).abs() < 0.03, "{mean_sq}");
        let right = whole
            .chunks_exact(32)
            .zip(&labels)
            .filter(|(r, &y)| p.bayes_class(r) == y as usize)
            .count();
        assert!(right > 2980, "{right}");
        for c in 0..4u32 {
            let m = labels.iter().filter(|&&y| y == c).count();
            assert!((650..850).contains(&m), "class {c}: {m}");
        }
    }

    #[test]
    fn written_split_loads_as_a_feature_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.safetensors");
        let p = Planted::new(3, 8, 4.0, 1);
        p.write_split(&path, 20_000, FeatureDtype::F16).unwrap();
        let set = FeatureSet::load(&path).unwrap();
        assert_eq!((set.len(), set.dim, set.classes.len()), (20_000, 8, 3));
        assert_eq!(set.labels, p.labels(20_000));
        let rows = p.rows(&set.labels, 0, 20_000, 0);
        let f16 = FeatureDtype::F16;
        let mut expected = vec![0f32; rows.len()];
        f16.decode_into(&f16.encode(&rows), &mut expected);
        assert_eq!(set.features, expected);
    }
}
