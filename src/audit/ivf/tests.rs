//! Tests of the approximate index: one cell is the exact search, planted
//! near-duplicates are all found with many cells, and the answer does not
//! depend on the thread count.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::audit::neighbours::search;

/// `n` rows uniform in [-1, 1)^d; then `twins` rows replaced by a copy of
/// an earlier row plus 1 % noise (cosine about 0.9998). Returns the rows
/// and the planted (original, twin) pairs.
fn planted(n: usize, d: usize, twins: usize, seed: u64) -> (Unit, Vec<(usize, usize)>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x: Vec<f32> = (0..n * d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let mut pairs = Vec::new();
    for t in 0..twins {
        let (a, b) = (t * 7, n - 1 - t * 13);
        for k in 0..d {
            x[b * d + k] = x[a * d + k] + rng.random_range(-0.01f32..0.01);
        }
        pairs.push((a, b));
    }
    (Unit::new(&x, n, d), pairs)
}

fn params(lists: usize) -> IvfParams {
    IvfParams {
        lists,
        probes: 8,
        seed: 3,
    }
}

#[test]
fn one_cell_is_the_exact_search() {
    let (u, _) = planted(700, 12, 5, 1);
    let q = Unit {
        rows: u.rows[..100 * 12].to_vec(),
        n: 100,
        d: 12,
    };
    for same in [true, false] {
        let q = if same { &u } else { &q };
        assert_eq!(
            search_ivf(q, &u, same, 0.8, &params(1)),
            search(q, &u, same, 0.8),
            "same = {same}"
        );
    }
}

#[test]
fn planted_near_duplicates_are_all_found() {
    let (u, planted_pairs) = planted(6000, 32, 100, 2);
    let p = params(0);
    assert_eq!(p.lists_for(u.n), 77);
    let found = search_ivf(&u, &u, true, 0.95, &p);
    let mut pairs: Vec<(usize, usize)> = found
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.above.iter().map(move |&(j, _)| (i, j)))
        .collect();
    pairs.sort_unstable();
    let mut want = planted_pairs.clone();
    want.sort_unstable();
    // In uniform 32-d data no unplanted pair comes near 0.95, so the exact
    // answer is the planted pairs; the index finds every one of them ...
    let exact = search(&u, &u, true, 0.95);
    let exact_pairs: Vec<(usize, usize)> = exact
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.above.iter().map(move |&(j, _)| (i, j)))
        .collect();
    assert_eq!(exact_pairs, want);
    assert_eq!(pairs, want);
    // ... and each twin's nearest row is its original, and the other way.
    for &(a, b) in &planted_pairs {
        assert_eq!(found[b].nearest.map(|x| x.0), Some(a));
        assert_eq!(found[a].nearest.map(|x| x.0), Some(b));
    }
    // An approximate nearest is never more similar than the exact one.
    for (f, e) in found.iter().zip(&exact) {
        assert!(f.nearest.unwrap().1 <= e.nearest.unwrap().1);
    }
}

#[test]
fn the_answer_does_not_depend_on_the_thread_count() {
    let (u, _) = planted(3000, 16, 20, 4);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| search_ivf(&u, &u, true, 0.9, &params(0)))
    };
    assert_eq!(run(1), run(3));
}
