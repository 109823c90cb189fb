//! Tests of the combiner choice's λ grid extension (`choose.rs`): a best λ on
//! an end of its grid is followed by factor-of-10 steps up to the bound, the
//! record says what happened, and vector scaling's strong end is left to its
//! limit, the `softmax-logits` candidate. Scores with a known answer: labels
//! drawn from softmax(r), the specialists' logits `scale · r`.

use super::*;
use rand::{Rng, SeedableRng};

fn scores(n: usize, k: usize, scale: f32, seed: u64) -> (Vec<f32>, Vec<u32>, Vec<u64>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut z, mut y) = (Vec::with_capacity(n * k), Vec::with_capacity(n));
    for _ in 0..n {
        let r: Vec<f64> = (0..k).map(|_| rng.random_range(-2.0..2.0)).collect();
        let e: Vec<f64> = r.iter().map(|v| v.exp()).collect();
        let s: f64 = e.iter().sum();
        let u: f64 = rng.random_range(0.0..s);
        let mut acc = 0.0;
        let label = e.iter().position(|v| {
            acc += v;
            u < acc
        });
        y.push(label.unwrap_or(k - 1) as u32);
        z.extend(r.iter().map(|&v| scale * v as f32));
    }
    (z, y, (0..n as u64).collect())
}

fn params(vector: &[f64], dirichlet: &[f64], extensions: usize) -> JointParams {
    JointParams {
        vector_lambdas: vector.to_vec(),
        dirichlet_lambdas: dirichlet.to_vec(),
        extensions,
        ..JointParams::default()
    }
}

#[test]
fn a_best_lambda_on_the_weak_end_is_extended_until_interior_or_the_bound() {
    // Over-confident by 3x: vector scaling needs a ~ 1/3, far from a = 1,
    // so strong penalties lose and the best λ is the weakest of [10, 100].
    let (z, y, g) = scores(1500, 4, 3.0, 1);
    let (_, wide) = calibrate(&z, &y, &g, 4, &params(&[10.0, 100.0], &[1.0], 4)).unwrap();
    let edge = wide
        .lambda_edges
        .iter()
        .find(|e| e.combiner == Combiner::VectorScaling)
        .expect("vector scaling hit its weak end");
    assert_eq!(edge.side, "low");
    assert!(edge.extensions >= 1 && edge.limit.is_none(), "{edge:?}");
    let path = &wide.vector_scaling_path;
    assert_eq!(path.len(), 2 + edge.extensions);
    assert!(path.windows(2).all(|w| w[0].lambda < w[1].lambda), "sorted");
    assert!((path[0].lambda - 10.0 / 10f64.powi(edge.extensions as i32)).abs() < 1e-12);
    let best = path
        .iter()
        .min_by(|a, b| a.cv_nll.total_cmp(&b.cv_nll))
        .unwrap();
    assert!(
        best.lambda < 10.0,
        "the extension found a better λ: {path:?}"
    );
    if !edge.at_bound {
        assert!(
            best.lambda > path[0].lambda,
            "interior when not at the bound"
        );
    }
    // Bound 0: no step, marked at the bound, the configured grid only.
    let (_, fixed) = calibrate(&z, &y, &g, 4, &params(&[10.0, 100.0], &[1.0], 0)).unwrap();
    let edge = fixed
        .lambda_edges
        .iter()
        .find(|e| e.combiner == Combiner::VectorScaling)
        .unwrap();
    assert!(edge.at_bound && edge.extensions == 0, "{edge:?}");
    assert_eq!(fixed.vector_scaling_path.len(), 2);
    let cv = |s: &Selection| {
        s.candidates
            .iter()
            .find(|c| c.combiner == Combiner::VectorScaling)
            .unwrap()
            .cv_nll
    };
    assert!(cv(&wide) < cv(&fixed), "{} vs {}", cv(&wide), cv(&fixed));
}

#[test]
fn vector_scalings_strong_end_is_its_softmax_limit_not_extended() {
    // Calibrated already: a = 1, b = 0 is right, so the strongest penalty wins.
    let (z, y, g) = scores(1500, 4, 1.0, 2);
    let (_, sel) = calibrate(&z, &y, &g, 4, &params(&[1e-4, 1e-3], &[1.0], 3)).unwrap();
    let edge = sel
        .lambda_edges
        .iter()
        .find(|e| e.combiner == Combiner::VectorScaling)
        .expect("the strong end");
    assert_eq!((edge.side.as_str(), edge.extensions), ("high", 0));
    assert_eq!(edge.limit, Some(Combiner::SoftmaxLogits));
    assert!(!edge.at_bound);
    assert_eq!(sel.vector_scaling_path.len(), 2);
}

#[test]
fn an_interior_best_lambda_records_no_edge() {
    let (z, y, g) = scores(1500, 4, 3.0, 3);
    let grid = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0];
    let (_, sel) = calibrate(&z, &y, &g, 4, &params(&grid, &[1.0], 3)).unwrap();
    assert!(
        sel.lambda_edges
            .iter()
            .all(|e| e.combiner != Combiner::VectorScaling),
        "{:?}",
        sel.vector_scaling_path
    );
    assert_eq!(sel.vector_scaling_path.len(), grid.len());
}
