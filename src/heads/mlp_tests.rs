//! Heads stage (cached features -> trained heads), tests of the MLP heads
//! ([`super`]): learning seeded Gaussian blobs, determinism per seed, early
//! stopping, host forward pass vs the candle training forward pass, errors.
//! The timing run (ignored) fits `[1024, 512]` heads at emoji40 scale:
//! `cargo test --release --lib heads::mlp -- --ignored --nocapture`.

use std::time::Instant;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::heads::{softmax_val_loss, LinearFit};

fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    // Box-Muller.
    let u: f32 = rng.random_range(f32::EPSILON..1.0);
    let v: f32 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// `n` rows of `k` Gaussian blobs in `d` dims (unit noise, centers `sep * N(0, 1)`),
/// labels `i % k`; the centers depend on `seed` only, the rows on `seed` and `draw`.
fn blobs(n: usize, d: usize, k: usize, sep: f32, seed: u64, draw: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centers: Vec<f32> = (0..k * d).map(|_| sep * gauss(&mut rng)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (draw + 1).wrapping_mul(0x9E37_79B9));
    let labels: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
    let x = labels
        .iter()
        .flat_map(|&l| {
            let c = &centers[l as usize * d..(l as usize + 1) * d];
            c.iter().map(|&m| m + gauss(&mut rng)).collect::<Vec<_>>()
        })
        .collect();
    (x, labels)
}

fn tensor(x: &[f32], n: usize, d: usize) -> Tensor {
    Tensor::from_slice(x, (n, d), &Device::Cpu).expect("tensor")
}

struct Problem {
    x_tr: Vec<f32>,
    y_tr: Vec<u32>,
    x_va: Vec<f32>,
    y_va: Vec<u32>,
    n_tr: usize,
    n_va: usize,
    d: usize,
}

impl Problem {
    fn blobs(n_tr: usize, n_va: usize, d: usize, k: usize, sep: f32, seed: u64) -> Self {
        let (x_tr, y_tr) = blobs(n_tr, d, k, sep, seed, 0);
        let (x_va, y_va) = blobs(n_va, d, k, sep, seed, 1);
        Problem {
            x_tr,
            y_tr,
            x_va,
            y_va,
            n_tr,
            n_va,
            d,
        }
    }
    fn tr(&self) -> Tensor {
        tensor(&self.x_tr, self.n_tr, self.d)
    }
    fn va(&self) -> Tensor {
        tensor(&self.x_va, self.n_va, self.d)
    }
    fn softmax(&self, k: usize, spec: &MlpSpec, seed: u64) -> Result<MlpFit, HeadError> {
        let w = ClassWeighting::Balanced;
        fit_mlp_softmax(
            &self.tr(),
            &self.y_tr,
            &self.va(),
            &self.y_va,
            k,
            w,
            spec,
            seed,
        )
    }
    fn binary(&self, class: u32, spec: &MlpSpec, seed: u64) -> Result<MlpFit, HeadError> {
        let w = ClassWeighting::Balanced;
        fit_mlp_binary(
            &self.tr(),
            &self.y_tr,
            &self.va(),
            &self.y_va,
            class,
            w,
            spec,
            seed,
        )
    }
}

fn small_spec(hidden: Vec<usize>) -> MlpSpec {
    MlpSpec {
        hidden,
        lr: 1e-2,
        max_epochs: 60,
        patience: 5,
        batch_size: 64,
        ..MlpSpec::default()
    }
}

#[test]
fn softmax_and_binary_mlps_learn_blobs() {
    let (k, d) = (3, 8);
    let p = Problem::blobs(300, 150, d, k, 1.0, 11);
    let fit = p.softmax(k, &small_spec(vec![16]), 1).unwrap();
    assert_eq!(fit.outputs(), k);
    assert_eq!((fit.layers[0].inputs, fit.layers.len()), (d, 2));
    let z = mlp_logits(&p.x_tr, p.n_tr, d, &fit);
    let correct = z
        .chunks_exact(k)
        .zip(&p.y_tr)
        .filter(|(zr, &y)| {
            let arg = (0..k).max_by(|&a, &b| zr[a].total_cmp(&zr[b])).unwrap();
            arg == y as usize
        })
        .count();
    let acc = correct as f64 / p.n_tr as f64;
    assert!(acc >= 0.9, "train accuracy {acc}");
    // The reported val loss is the linear heads' validation loss of these logits.
    let as_linear = |w: Vec<f32>, b: Vec<f32>| LinearFit {
        w,
        b,
        iterations: 0,
        converged: true,
        objective: 0.0,
    };
    let z_va = mlp_logits(&p.x_va, p.n_va, d, &fit);
    let eye: Vec<f32> = (0..k * k).map(|i| f32::from(i % (k + 1) == 0)).collect();
    let via_linear = softmax_val_loss(
        &z_va,
        p.n_va,
        k,
        k,
        &p.y_va,
        &as_linear(eye, vec![0.0; k]),
        ClassWeighting::Balanced,
    );
    let v = fit.val_loss;
    assert!((v - via_linear).abs() < 1e-5, "{v} vs {via_linear}");
    // Predicting the training priors everywhere.
    let mut counts = vec![0f32; k];
    p.y_tr.iter().for_each(|&y| counts[y as usize] += 1.0);
    let priors: Vec<f32> = counts.iter().map(|c| (c / p.n_tr as f32).ln()).collect();
    let prior_loss = softmax_val_loss(
        &p.x_va,
        p.n_va,
        d,
        k,
        &p.y_va,
        &as_linear(vec![0.0; d * k], priors),
        ClassWeighting::Balanced,
    );
    assert!(v < prior_loss, "{v} vs prior {prior_loss}");

    let bin = p.binary(1, &small_spec(vec![16]), 1).unwrap();
    assert_eq!(bin.outputs(), 1);
    let z = mlp_logits(&p.x_va, p.n_va, d, &bin);
    let mean = |pos: bool| {
        let v: Vec<f32> = z
            .iter()
            .zip(&p.y_va)
            .filter(|(_, &y)| (y == 1) == pos)
            .map(|(&z, _)| z)
            .collect();
        v.iter().sum::<f32>() / v.len() as f32
    };
    let (pos, neg) = (mean(true), mean(false));
    assert!(pos > neg + 1.0, "mean logit {pos} (positives) vs {neg}");
    assert!(bin.val_loss < 2f64.ln(), "{}", bin.val_loss);
}

#[test]
fn same_seed_same_weights_other_seed_other_weights() {
    let p = Problem::blobs(120, 60, 6, 3, 1.0, 5);
    let spec = MlpSpec {
        max_epochs: 8,
        ..small_spec(vec![12, 8])
    };
    let a = p.binary(2, &spec, 42).unwrap();
    let b = p.binary(2, &spec, 42).unwrap();
    assert_eq!(a, b);
    let c = p.binary(2, &spec, 43).unwrap();
    assert_ne!(a.layers, c.layers);
    let s1 = p.softmax(3, &spec, 9).unwrap();
    let s2 = p.softmax(3, &spec, 9).unwrap();
    assert_eq!(s1, s2);
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    // Pure noise: labels carry no signal, so the validation loss soon stalls.
    let (n, d) = (40, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut draw = |m: usize| -> Vec<f32> { (0..m).map(|_| gauss(&mut rng)).collect() };
    let (x_tr, x_va) = (draw(n * d), draw(n * d));
    let y_tr: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let y_va = y_tr.clone();
    let spec = MlpSpec {
        hidden: vec![32],
        lr: 3e-2,
        patience: 2,
        max_epochs: 200,
        batch_size: 8,
        ..MlpSpec::default()
    };
    let (tr, va) = (tensor(&x_tr, n, d), tensor(&x_va, n, d));
    let w = ClassWeighting::None;
    let fit = fit_mlp_binary(&tr, &y_tr, &va, &y_va, 1, w, &spec, 0).unwrap();
    assert!(fit.converged && fit.epochs < 200, "{fit:?}");
    assert!(fit.best_epoch < fit.epochs);
    assert_eq!(fit.epochs - fit.best_epoch, spec.patience);
    let fit = fit_mlp_softmax(&tr, &y_tr, &va, &y_va, 2, w, &spec, 0).unwrap();
    assert!(fit.converged && fit.best_epoch + 2 == fit.epochs, "{fit:?}");
    // Without patience to spare the cap ends the run, unconverged.
    let capped = MlpSpec {
        max_epochs: 1,
        ..spec
    };
    let fit = fit_mlp_binary(&tr, &y_tr, &va, &y_va, 1, w, &capped, 0).unwrap();
    assert!(!fit.converged && fit.epochs == 1 && fit.best_epoch == 1);
}

#[test]
fn host_logits_match_the_candle_forward() {
    let p = Problem::blobs(150, 60, 8, 3, 1.0, 21);
    let spec = MlpSpec {
        max_epochs: 5,
        ..small_spec(vec![16, 8])
    };
    for fit in [
        p.softmax(3, &spec, 2).unwrap(),
        p.binary(0, &spec, 2).unwrap(),
    ] {
        let host = mlp_logits(&p.x_va, p.n_va, p.d, &fit);
        let dev = candle_logits(&p.va(), &fit.layers).unwrap();
        assert_eq!(dev.dims(), &[p.n_va, fit.outputs()]);
        let dev = dev.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let diff = host
            .iter()
            .zip(&dev)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff <= 1e-5, "max |host - candle| = {diff}");
    }
    let fit = p.binary(0, &spec, 2).unwrap();
    let e = try_mlp_logits(&p.x_va, p.n_va, p.d + 1, &fit).unwrap_err();
    assert!(e.to_string().starts_with("x:"), "{e}");
}

#[test]
fn bad_specs_and_inputs_are_errors_naming_the_field() {
    let p = Problem::blobs(30, 15, 4, 3, 1.0, 1);
    let base = small_spec(vec![4]);
    let partial: MlpSpec = serde_json::from_str(r#"{"hidden": [8], "patience": 3}"#).unwrap();
    assert_eq!(
        (partial.lr, partial.patience, partial.hidden),
        (1e-3, 3, vec![8])
    );
    let with = |f: fn(&mut MlpSpec)| {
        let mut s = base.clone();
        f(&mut s);
        s
    };
    let cases = [
        ("hidden", with(|s| s.hidden = vec![8, 0])),
        ("lr", with(|s| s.lr = 0.0)),
        ("lr", with(|s| s.lr = f64::NAN)),
        ("weight_decay", with(|s| s.weight_decay = -1.0)),
        ("max_epochs", with(|s| s.max_epochs = 0)),
        ("patience", with(|s| s.patience = 0)),
        ("batch_size", with(|s| s.batch_size = 0)),
    ];
    for (field, spec) in &cases {
        for e in [p.binary(0, spec, 0), p.softmax(3, spec, 0)].map(Result::unwrap_err) {
            let named = matches!(e, HeadError::InvalidOption { field: f, .. } if f == *field);
            assert!(named && e.to_string().contains(field), "{field}: {e}");
        }
    }
    let e = p.binary(7, &base, 0).unwrap_err();
    assert!(matches!(e, HeadError::OneSided { class: 7, .. }), "{e}");
    let e = p.softmax(2, &base, 0).unwrap_err();
    assert!(
        matches!(e, HeadError::LabelOutOfRange { label: 2, .. }),
        "{e}"
    );
    let e = p.softmax(1, &base, 0).unwrap_err();
    assert!(matches!(e, HeadError::InvalidK { k: 1 }), "{e}");
    let (w, tr, va) = (ClassWeighting::None, p.tr(), p.va());
    let narrow = tensor(&p.x_va[..p.n_va * 3], p.n_va, 3);
    let e = fit_mlp_binary(&tr, &p.y_tr, &narrow, &p.y_va, 0, w, &base, 0).unwrap_err();
    assert!(e.to_string().starts_with("x_va:"), "{e}");
    let e = fit_mlp_softmax(&tr, &p.y_tr[1..], &va, &p.y_va, 3, w, &base, 0).unwrap_err();
    assert!(e.to_string().starts_with("labels_tr:"), "{e}");
    let mut x = p.x_tr.clone();
    x[5] = f32::NAN;
    let nan = tensor(&x, p.n_tr, p.d);
    let e = fit_mlp_binary(&nan, &p.y_tr, &va, &p.y_va, 0, w, &base, 0).unwrap_err();
    assert!(matches!(e, HeadError::NonFinite { .. }), "{e}");
    // Steps that blow the weights up are caught too.
    let e = p.softmax(3, &with(|s| s.lr = 1e38), 0).unwrap_err();
    assert!(matches!(e, HeadError::NonFinite { .. }), "{e}");
}

fn time_one(label: &str, fit: impl FnOnce() -> MlpFit, x_va: &[f32], n_va: usize, d: usize) {
    let t0 = Instant::now();
    let fit = fit();
    let train = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let z = mlp_logits(x_va, n_va, d, &fit);
    println!(
        "{label}: {train:.2} s for {} epochs ({:.3} s/epoch), best epoch {}, val loss {:.4}; \
         host mlp_logits on {n_va} rows {:.3} s ({} values)",
        fit.epochs,
        train / fit.epochs as f64,
        fit.best_epoch,
        fit.val_loss,
        t1.elapsed().as_secs_f64(),
        z.len()
    );
}

/// `[1024, 512]` binary and 40-class softmax heads, 20 epochs each, at
/// emoji40 scale (N = 1730, D = 1280); prints timings.
#[test]
#[ignore = "timing at emoji40 scale, prints figures: run with --ignored --nocapture"]
fn timing_mlp_emoji40_scale() {
    let (k, d) = (40, 1280);
    let p = Problem::blobs(1730, 370, d, k, 0.1, 40);
    let spec = MlpSpec {
        max_epochs: 20,
        patience: 1000,
        ..MlpSpec::default()
    };
    time_one(
        "binary [1024, 512]",
        || p.binary(3, &spec, 1).unwrap(),
        &p.x_va,
        p.n_va,
        d,
    );
    time_one(
        "softmax [1024, 512] K=40",
        || p.softmax(k, &spec, 1).unwrap(),
        &p.x_va,
        p.n_va,
        d,
    );
}

/// Reference batch loss through candle autograd: `sum s l / sum s`.
fn autograd_loss(z: &Tensor, rows: &[(f64, u32)]) -> Tensor {
    let (n, k) = z.dims2().unwrap();
    let sw: f64 = rows.iter().map(|r| r.0).sum();
    let s: Vec<f32> = rows.iter().map(|r| r.0 as f32).collect();
    let s = Tensor::from_vec(s, (n, 1), &Device::Cpu).unwrap();
    let mut y = vec![0f32; n * k];
    for (i, r) in rows.iter().enumerate() {
        y[i * k + if k == 1 { 0 } else { r.1 as usize }] = if k == 1 { r.1 as f32 } else { 1.0 };
    }
    let y = Tensor::from_vec(y, (n, k), &Device::Cpu).unwrap();
    let total = if k == 1 {
        let soft = (z.relu().unwrap()
            + (z.abs().unwrap().neg().unwrap().exp().unwrap() + 1.0)
                .unwrap()
                .log()
                .unwrap())
        .unwrap();
        ((soft - (z * &y).unwrap()).unwrap() * &s)
            .unwrap()
            .sum_all()
            .unwrap()
    } else {
        let ls = candle_nn::ops::log_softmax(z, candle_core::D::Minus1).unwrap();
        (ls * y)
            .unwrap()
            .broadcast_mul(&s)
            .unwrap()
            .sum_all()
            .unwrap()
            .neg()
            .unwrap()
    };
    total.affine(1.0 / sw, 0.0).unwrap()
}

#[test]
fn hand_written_gradients_match_autograd() {
    use candle_core::Var;
    let p = Problem::blobs(40, 10, 6, 3, 1.0, 8);
    let x = p.tr();
    for k in [1usize, 3] {
        let mut rng = ChaCha8Rng::seed_from_u64(k as u64);
        let layers = init_layers(&[6, 10, 7, k], &mut rng);
        let rows: Vec<(f64, u32)> = p
            .y_tr
            .iter()
            .enumerate()
            .map(|(i, &y)| {
                (
                    0.5 + (i % 3) as f64,
                    if k == 1 { u32::from(y == 1) } else { y },
                )
            })
            .collect();
        let (loss, grads) = gradients(&x, &rows, &layers).unwrap().unwrap();
        let vars: Vec<(Var, Var)> = upload(&layers, &Device::Cpu)
            .unwrap()
            .iter()
            .map(|(w, b)| (Var::from_tensor(w).unwrap(), Var::from_tensor(b).unwrap()))
            .collect();
        let ts: Vec<(Tensor, Tensor)> = vars
            .iter()
            .map(|(w, b)| (w.as_tensor().clone(), b.as_tensor().clone()))
            .collect();
        let z = forward(&x, &ts).unwrap().pop().unwrap();
        let reference = autograd_loss(&z, &rows);
        let r: f32 = reference.to_scalar().unwrap();
        assert!(
            (loss - f64::from(r)).abs() < 1e-5,
            "k {k}: loss {loss} vs {r}"
        );
        let store = reference.backward().unwrap();
        for ((w, b), (gw, gb)) in vars.iter().zip(&grads) {
            for (var, mine) in [(w, gw), (b, gb)] {
                let auto = host(store.get(var.as_tensor()).unwrap()).unwrap();
                let scale = auto.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                let diff = auto
                    .iter()
                    .zip(mine)
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    diff <= 1e-5 * scale.max(1.0),
                    "k {k}: max diff {diff} (scale {scale})"
                );
            }
        }
    }
}
