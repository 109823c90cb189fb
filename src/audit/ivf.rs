//! Audit stage, the approximate near-duplicate search for large splits: an
//! inverted-file index over unit vectors (`audit.index = "approximate"`, or
//! `"auto"` above `audit.exact_max_rows` reference rows). Spherical k-means
//! (seeded initial rows, a fixed number of rounds, each list's mean summed in
//! row order) splits the reference rows into `lists` cells; a query is
//! compared with every centroid and then, exactly, with the rows of its
//! `probes` most similar cells. So a pair is found when the query's cell
//! ranking puts the other row's cell among its first `probes`: near
//! duplicates (cosine >= 0.95) almost always share a cell. Every step is
//! deterministic and independent of the thread count (per-row results
//! collected in order, sums in a fixed order).
//!
//! Cost: k-means `rounds x sample x lists x D`, search `N_q x (lists +
//! probes x N_r / lists) x D` multiply-adds, against `N_q x N_r x D` exact.
//! Why not a crate (hnsw_rs, instant-distance): their graph builds are
//! multi-threaded and insertion-order dependent, so results would depend on
//! the thread count, which this project does not allow.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::neighbours::{dot, Found, Unit};

/// k-means rounds.
const ROUNDS: usize = 8;
/// At most this many training rows per list (FAISS's default ceiling).
const SAMPLE_PER_LIST: usize = 256;

/// Settings of one approximate search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IvfParams {
    /// Cells of the index (0: the square root of the reference rows).
    pub lists: usize,
    /// Cells searched per query.
    pub probes: usize,
    pub seed: u64,
}

impl IvfParams {
    /// The cells actually used for `n` reference rows (1..=n).
    pub fn lists_for(&self, n: usize) -> usize {
        let auto = (n as f64).sqrt().round() as usize;
        let l = if self.lists == 0 { auto } else { self.lists };
        l.clamp(1, n.max(1))
    }
}

/// The reference rows split into cells.
struct Index {
    centroids: Unit,
    cells: Vec<Vec<usize>>,
}

/// Index of the most similar centroid (ties: the lower index).
fn nearest_centroid(c: &Unit, row: &[f32]) -> usize {
    (0..c.n)
        .fold((0, f32::NEG_INFINITY), |(b, bs), j| {
            let s = dot(row, c.row(j));
            if s > bs {
                (j, s)
            } else {
                (b, bs)
            }
        })
        .0
}

/// Each centroid the normalized mean of its rows (f64 sums in row order);
/// an empty cell keeps its centroid.
fn update(c: &mut Unit, r: &Unit, rows: &[usize], assign: &[usize]) {
    let d = r.d;
    let mut sums = vec![0f64; c.n * d];
    let mut counts = vec![0usize; c.n];
    for (&i, &a) in rows.iter().zip(assign) {
        counts[a] += 1;
        for (s, &v) in sums[a * d..(a + 1) * d].iter_mut().zip(r.row(i)) {
            *s += f64::from(v);
        }
    }
    for j in (0..c.n).filter(|&j| counts[j] > 0) {
        let s = &sums[j * d..(j + 1) * d];
        let norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            for (o, v) in c.rows[j * d..(j + 1) * d].iter_mut().zip(s) {
                *o = (v / norm) as f32;
            }
        }
    }
}

fn build(r: &Unit, p: &IvfParams) -> Index {
    let lists = p.lists_for(r.n);
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let mut train: Vec<usize> =
        sample(&mut rng, r.n, (lists * SAMPLE_PER_LIST).min(r.n)).into_vec();
    train.sort_unstable();
    let mut init: Vec<usize> = sample(&mut rng, train.len(), lists).into_vec();
    init.sort_unstable();
    let rows = init
        .iter()
        .flat_map(|&i| r.row(train[i]).iter().copied())
        .collect();
    let mut centroids = Unit {
        rows,
        n: lists,
        d: r.d,
    };
    for _ in 0..ROUNDS {
        let assign: Vec<usize> = train
            .par_iter()
            .map(|&i| nearest_centroid(&centroids, r.row(i)))
            .collect();
        update(&mut centroids, r, &train, &assign);
    }
    let all: Vec<usize> = (0..r.n)
        .into_par_iter()
        .map(|i| nearest_centroid(&centroids, r.row(i)))
        .collect();
    let mut cells = vec![Vec::new(); lists];
    for (i, &a) in all.iter().enumerate() {
        cells[a].push(i);
    }
    Index { centroids, cells }
}

/// The `probes` cells most similar to `row` (ties: the lower index).
fn probe(ix: &Index, row: &[f32], probes: usize) -> Vec<usize> {
    let mut s: Vec<(usize, f32)> = (0..ix.centroids.n)
        .map(|j| (j, dot(row, ix.centroids.row(j))))
        .collect();
    s.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    s.truncate(probes.max(1));
    s.into_iter().map(|(j, _)| j).collect()
}

/// One query row against the rows of its probed cells.
fn query_row(
    ix: &Index,
    q: &Unit,
    r: &Unit,
    qi: usize,
    same: bool,
    t: f32,
    probes: usize,
) -> Found {
    let a = q.row(qi);
    let mut cand: Vec<usize> = probe(ix, a, probes)
        .into_iter()
        .flat_map(|c| ix.cells[c].iter().copied())
        .filter(|&j| !(same && j == qi))
        .collect();
    cand.sort_unstable();
    let mut f = Found {
        nearest: None,
        above: Vec::new(),
    };
    for j in cand {
        let s = dot(a, r.row(j));
        if f.nearest.is_none_or(|(_, b)| s > b) {
            f.nearest = Some((j, s));
        }
        if s >= t {
            f.above.push((j, s));
        }
    }
    f
}

/// What [`super::neighbours::search`] returns, approximately: the nearest
/// reference row among the probed cells and every row of those cells at or
/// above `threshold`. With `same`, a pair found from either side is listed
/// once, under its lower row, in index order.
pub fn search_ivf(q: &Unit, r: &Unit, same: bool, threshold: f32, p: &IvfParams) -> Vec<Found> {
    assert_eq!(q.d, r.d, "query and reference dimensions differ");
    let ix = build(r, p);
    let mut found: Vec<Found> = (0..q.n)
        .into_par_iter()
        .map(|qi| query_row(&ix, q, r, qi, same, threshold, p.probes))
        .collect();
    if same {
        let mut pairs: Vec<(usize, usize, f32)> = Vec::new();
        for (i, f) in found.iter_mut().enumerate() {
            pairs.extend(f.above.drain(..).map(|(j, s)| (i.min(j), i.max(j), s)));
        }
        pairs.sort_by_key(|p| (p.0, p.1));
        pairs.dedup_by(|a, b| (a.0, a.1) == (b.0, b.1));
        for (i, j, s) in pairs {
            found[i].above.push((j, s));
        }
    }
    found
}

#[cfg(test)]
mod tests;
