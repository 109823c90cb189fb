//! Heads stage (cached features -> trained linear heads), timing runs
//! (ignored tests): fitting the heads on synthetic pooled-feature-like
//! matrices at emoji40 scale (N = 1730,
//! D = 1280, 40 classes) and Fashion-MNIST scale (N = 54000, D = 1280,
//! 10 classes). Run in release:
//! `cargo test --release --lib heads::timing -- --ignored --nocapture`.

use std::time::Instant;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    (0..4).map(|_| rng.random::<f32>()).sum::<f32>() - 2.0
}

/// Standardized `[n, d]` rows with labels: a shared 32-factor latent
/// (correlated, ill-conditioned features), a weak class prototype and noise,
/// clipped at 0 like ReLU-pooled features. Class sizes fall off as `(k-i)^4`.
fn synthetic(n: usize, d: usize, k: usize, seed: u64) -> (Tensor, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let raw: Vec<f64> = (0..k)
        .map(|i| 16.0 + 243.0 * ((k - i) as f64 / k as f64).powi(4))
        .collect();
    let total: f64 = raw.iter().sum();
    let mut sizes: Vec<usize> = raw
        .iter()
        .map(|r| (r / total * n as f64) as usize)
        .collect();
    sizes[0] += n - sizes.iter().sum::<usize>();
    let mut labels = Vec::with_capacity(n);
    for (c, &m) in sizes.iter().enumerate() {
        labels.extend(std::iter::repeat_n(c as u32, m));
    }
    let r = 32;
    let mix: Vec<f32> = (0..d * r).map(|_| gauss(&mut rng) * 0.5).collect();
    let protos: Vec<f32> = (0..k * d).map(|_| gauss(&mut rng) * 0.3).collect();
    let mut x = Vec::with_capacity(n * d);
    for &l in &labels {
        let h: Vec<f32> = (0..r).map(|_| gauss(&mut rng)).collect();
        for j in 0..d {
            let shared: f32 = mix[j * r..(j + 1) * r]
                .iter()
                .zip(&h)
                .map(|(a, b)| a * b)
                .sum();
            let v = shared + protos[l as usize * d + j] + gauss(&mut rng) + 0.5;
            x.push(v.max(0.0));
        }
    }
    let s = Standardizer::fit(&x, n, d);
    let x = s.apply(&x);
    let t = Tensor::from_vec(x, (n, d), &Device::Cpu).expect("x");
    (t, labels)
}

fn run(n: usize, d: usize, k: usize, cs: &[f64], tols: &[f64], softmax_cs: &[f64]) {
    let (t, labels) = synthetic(n, d, k, 7);
    let jobs: Vec<BinaryJob> = cs
        .iter()
        .flat_map(|&c| {
            (0..k as u32).map(move |class| BinaryJob {
                class,
                c,
                weighting: ClassWeighting::Balanced,
            })
        })
        .collect();
    // One evaluation's two matmuls at full width.
    let a = jobs.len();
    let w = Tensor::zeros((d, a), candle_core::DType::F32, &Device::Cpu).expect("w");
    let r = Tensor::zeros((n, a), candle_core::DType::F32, &Device::Cpu).expect("r");
    let t0 = Instant::now();
    let _ = t.matmul(&w).expect("xw");
    let xw = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let _ = t.t().and_then(|xt| xt.matmul(&r)).expect("xtr");
    let xtr = t0.elapsed().as_secs_f64();
    println!("N={n} D={d}: one X.W [{d}x{a}] {xw:.3} s, one X^T.R {xtr:.3} s");
    for &tol in tols {
        let opts = FitOptions {
            tol,
            ..FitOptions::default()
        };
        let t0 = Instant::now();
        let fits = fit_binary(&t, &labels, &jobs, &opts).expect("fit_binary");
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(fits.len(), jobs.len(), "one fit per job");
        assert!(
            fits.iter().all(|f| f.objective.is_finite()),
            "finite objectives"
        );
        for (ci, c) in cs.iter().enumerate() {
            let part = &fits[ci * k..(ci + 1) * k];
            let iters: Vec<usize> = part.iter().map(|f| f.iterations).collect();
            println!(
                "  tol {tol:e} C={c}: iterations min {} max {}, converged {}/{k}",
                iters.iter().min().unwrap_or(&0),
                iters.iter().max().unwrap_or(&0),
                part.iter().filter(|f| f.converged).count()
            );
        }
        println!(
            "tol {tol:e}: fit_binary {k} classes x {} C fused (N={n}, D={d}): {secs:.2} s",
            cs.len()
        );
        for &c in softmax_cs {
            let t0 = Instant::now();
            let soft =
                fit_softmax(&t, &labels, k, c, ClassWeighting::Balanced, &opts).expect("softmax");
            assert!(soft.objective.is_finite(), "finite softmax objective");
            println!(
                "tol {tol:e}: fit_softmax K={k} C={c}: {:.2} s, {} iterations, converged {}",
                t0.elapsed().as_secs_f64(),
                soft.iterations,
                soft.converged
            );
        }
    }
}

/// 40 classes x 5 C values fused and the 40-class softmax head (emoji40 size).
#[test]
#[ignore = "timing at emoji40 scale, prints figures: run with --ignored --nocapture"]
fn timing_emoji40_scale() {
    run(
        1730,
        1280,
        40,
        &[1e-3, 1e-2, 1e-1, 1.0, 10.0],
        &[1e-6, 1e-8],
        &[0.1, 1.0],
    );
}

/// 10 classes x 5 C values fused and the 10-class softmax head
/// (Fashion-MNIST training split size; needs ~0.6 GB).
#[test]
#[ignore = "timing at Fashion-MNIST scale (~0.6 GB), prints figures: run with --ignored --nocapture"]
fn timing_fashion_scale() {
    run(
        54000,
        1280,
        10,
        &[1e-3, 1e-2, 1e-1, 1.0, 10.0],
        &[1e-6],
        &[1.0],
    );
}
