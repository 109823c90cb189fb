//! Audit stage, the numeric core of the near-duplicate search: cached
//! feature rows -> unit vectors -> exact cosine nearest neighbours and every
//! pair at or above a threshold, by a blocked matrix product (tiles of
//! query x reference rows, each dot product in the same fixed order, so the
//! result does not depend on the thread count). Exact search costs
//! N_q x N_r x D multiply-adds: ~20 G for emoji40's 6,000 images, seconds on
//! two cores. [`super::near::NearSearch`] picks it, or the approximate
//! index of [`super::ivf`] (`audit.index`).

use rayon::prelude::*;
/// Query rows per parallel task.
const QUERY_BLOCK: usize = 32;
/// Reference rows per tile (a tile of 128 x 1280 f32 is 640 KiB).
const REF_BLOCK: usize = 128;

/// Row-major unit vectors `[n, d]` (a zero row stays zero: cosine 0 with everything).
#[derive(Debug, Clone)]
pub struct Unit {
    pub rows: Vec<f32>,
    pub n: usize,
    pub d: usize,
}

impl Unit {
    /// Normalizes every row of `x` (`[n, d]`) to unit L2 norm (in f64).
    pub fn new(x: &[f32], n: usize, d: usize) -> Unit {
        let mut rows = x.to_vec();
        for r in rows.chunks_exact_mut(d.max(1)) {
            let norm = r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
            if norm > 0.0 {
                r.iter_mut()
                    .for_each(|v| *v = (f64::from(*v) / norm) as f32);
            }
        }
        Unit { rows, n, d }
    }

    pub(super) fn row(&self, i: usize) -> &[f32] {
        &self.rows[i * self.d..(i + 1) * self.d]
    }
}

/// Dot product with eight partial sums, always in the same order.
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// What one query row found among the reference rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The most similar reference row and its cosine (`None`: no reference
    /// row other than itself).
    pub nearest: Option<(usize, f32)>,
    /// Every reference row at or above the threshold, with its cosine.
    pub above: Vec<(usize, f32)>,
}

/// For every query row, its nearest reference row and every reference row
/// with cosine >= `threshold`. `same`: query and reference are one set, so
/// a row is never its own neighbour and only pairs i < j are listed in `above`
/// (the nearest neighbour still looks at every other row). Ties: lower index.
pub fn search(query: &Unit, reference: &Unit, same: bool, threshold: f32) -> Vec<Found> {
    assert_eq!(
        query.d, reference.d,
        "query and reference dimensions differ"
    );
    let blocks: Vec<usize> = (0..query.n).step_by(QUERY_BLOCK).collect();
    let per_block: Vec<Vec<Found>> = blocks
        .par_iter()
        .map(|&q0| search_block(query, reference, q0, same, threshold))
        .collect();
    per_block.into_iter().flatten().collect()
}

fn search_block(q: &Unit, r: &Unit, q0: usize, same: bool, threshold: f32) -> Vec<Found> {
    let q1 = (q0 + QUERY_BLOCK).min(q.n);
    let mut found: Vec<Found> = (q0..q1)
        .map(|_| Found {
            nearest: None,
            above: Vec::new(),
        })
        .collect();
    for r0 in (0..r.n).step_by(REF_BLOCK) {
        let r1 = (r0 + REF_BLOCK).min(r.n);
        for (qi, f) in (q0..q1).zip(found.iter_mut()) {
            let a = q.row(qi);
            for rj in r0..r1 {
                if same && rj == qi {
                    continue;
                }
                let s = dot(a, r.row(rj));
                if f.nearest.is_none_or(|(_, b)| s > b) {
                    f.nearest = Some((rj, s));
                }
                if s >= threshold && (!same || rj > qi) {
                    f.above.push((rj, s));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_rows_have_norm_one_and_zero_rows_stay_zero() {
        let u = Unit::new(&[3.0, 4.0, 0.0, 0.0], 2, 2);
        assert_eq!(u.rows, vec![0.6, 0.8, 0.0, 0.0]);
    }

    #[test]
    fn nearest_and_pairs_match_a_brute_force_reference() {
        // 3 x 2 queries against 4 references: cosines by hand.
        let r = Unit::new(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0, -1.0, 0.0], 4, 2);
        let q = Unit::new(&[2.0, 0.1, 0.0, -3.0], 2, 2);
        let f = search(&q, &r, false, 0.7);
        assert_eq!(f[0].nearest.map(|x| x.0), Some(0));
        // (2, 0.1) vs (1, 1): 2.1 / (sqrt(4.01) sqrt(2)) = 0.741536
        assert_eq!(
            f[0].above.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![0, 2]
        );
        assert!((f[0].above[1].1 - 0.741_536).abs() < 1e-5);
        // (0, -3) is orthogonal to 0 and 3, opposite to 1: nearest is the
        // first of the tied zeros, nothing above 0.7.
        assert_eq!(f[1].nearest, Some((0, 0.0)));
        assert!(f[1].above.is_empty());
    }

    #[test]
    fn within_one_set_a_row_is_not_its_own_neighbour_and_pairs_are_listed_once() {
        let u = Unit::new(&[1.0, 0.0, 1.0, 0.01, 0.0, 1.0], 3, 2);
        let f = search(&u, &u, true, 0.99);
        assert_eq!(f[0].nearest.map(|x| x.0), Some(1));
        assert_eq!(f[1].nearest.map(|x| x.0), Some(0));
        assert_eq!(f[0].above.len(), 1);
        assert!(f[1].above.is_empty(), "pair (1, 0) is listed as (0, 1)");
        assert!(f[2].above.is_empty());
    }

    #[test]
    fn blocks_give_the_same_answer_as_one_pass() {
        // More rows than a block on both sides; compare with a plain loop.
        let (n, d) = (QUERY_BLOCK * 2 + 5, 19);
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919) % 101) as f32 - 50.0)
            .collect();
        let r: Vec<f32> = (0..(REF_BLOCK + 3) * d)
            .map(|i| ((i * 104_729) % 97) as f32 - 48.0)
            .collect();
        let (q, r) = (Unit::new(&x, n, d), Unit::new(&r, REF_BLOCK + 3, d));
        let f = search(&q, &r, false, 0.5);
        for (i, fi) in f.iter().enumerate() {
            let sims: Vec<f32> = (0..r.n).map(|j| dot(q.row(i), r.row(j))).collect();
            let best = (0..r.n).fold(0, |b, j| if sims[j] > sims[b] { j } else { b });
            assert_eq!(fi.nearest, Some((best, sims[best])));
            let above: Vec<usize> = (0..r.n).filter(|&j| sims[j] >= 0.5).collect();
            assert_eq!(fi.above.iter().map(|x| x.0).collect::<Vec<_>>(), above);
        }
    }
}
