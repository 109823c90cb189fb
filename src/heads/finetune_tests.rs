//! Tests of the fine-tuned top: the channels-last depthwise against the
//! direct kernel of the features stage (itself checked against the numpy
//! reference), autograd gradients against central finite differences, and
//! the training loop lowering the loss, deterministically.

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::features::depthwise::DepthwiseConv;
use crate::features::depthwise_taps::depthwise_taps;
use crate::features::efficientnet_lite::top::TopBlockWeights;

fn draw(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

fn dense(rng: &mut ChaCha8Rng, inputs: usize, outputs: usize) -> DenseWeights {
    let s = 1.0 / (inputs as f32).sqrt();
    DenseWeights {
        w: draw(rng, inputs * outputs, s),
        b: draw(rng, outputs, 0.1),
        inputs,
        outputs,
    }
}

/// Two blocks (expand + residual at stride 1; k5 at stride 2) and a head.
fn small_top(seed: u64) -> TopWeights {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    TopWeights {
        cut: 0,
        input: (4, 5, 5),
        blocks: vec![
            TopBlockWeights {
                expand: Some(dense(&mut rng, 4, 8)),
                dw_w: draw(&mut rng, 9 * 8, 0.5),
                dw_b: draw(&mut rng, 8, 0.1),
                kernel: 3,
                stride: 1,
                project: dense(&mut rng, 8, 4),
                residual: true,
            },
            TopBlockWeights {
                expand: None,
                dw_w: draw(&mut rng, 25 * 4, 0.5),
                dw_b: draw(&mut rng, 4, 0.1),
                kernel: 5,
                stride: 2,
                project: dense(&mut rng, 4, 6),
                residual: false,
            },
        ],
        head: dense(&mut rng, 6, 10),
    }
}

#[test]
fn depthwise_matches_the_direct_kernel() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (k, stride, side) in [(3, 1, 7), (5, 1, 6), (3, 2, 7), (5, 2, 8), (5, 2, 7)] {
        let (n, c) = (2, 5);
        let x = draw(&mut rng, n * c * side * side, 3.0);
        let w = draw(&mut rng, c * k * k, 1.0);
        let b = draw(&mut rng, c, 0.5);
        let dev = Device::Cpu;
        let x_nchw = Tensor::from_slice(&x, (n, c, side, side), &dev).unwrap();
        let w_t = Tensor::from_slice(&w, (c, 1, k, k), &dev).unwrap();
        let b_t = Tensor::from_slice(&b, c, &dev).unwrap();
        let direct = DepthwiseConv::new(&w_t, &b_t, stride, true)
            .unwrap()
            .forward_same(&x_nchw)
            .unwrap()
            .permute((0, 2, 3, 1))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let x_nhwc = x_nchw.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap();
        let taps = w_t
            .reshape((c, k * k))
            .unwrap()
            .t()
            .unwrap()
            .contiguous()
            .unwrap();
        let ours = depthwise_taps(&x_nhwc, &taps, &b_t, k, stride, true)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(
            ours.len(),
            direct.len(),
            "k {k} stride {stride} side {side}"
        );
        for (a, d) in ours.iter().zip(&direct) {
            assert!((a - d).abs() < 1e-5, "k {k} s {stride}: {a} vs {d}");
        }
    }
}

fn data(seed: u64, n: usize, k: usize, top: &TopWeights) -> (Tensor, Vec<u32>) {
    let (c, h, w) = top.input;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
    // Class-dependent shift on the first channel, so there is something to learn.
    let mut x = draw(&mut rng, n * c * h * w, 2.0);
    for (i, &y) in labels.iter().enumerate() {
        for v in &mut x[i * c * h * w..i * c * h * w + h * w] {
            *v += y as f32;
        }
    }
    (
        Tensor::from_vec(x, (n, c * h * w), &Device::Cpu).unwrap(),
        labels,
    )
}

#[test]
fn gradients_match_central_differences() {
    let top = small_top(2);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let fc = dense(&mut rng, 10, 3);
    let model = TopModel {
        top: top.clone(),
        fc,
        head_scale: 1.0,
    };
    let (x, labels) = data(4, 6, 3, &top);
    let rows: Vec<(f64, u32)> = labels.iter().map(|&y| (1.0 + y as f64 * 0.5, y)).collect();
    let (_, grads) = model.gradients(&x, &rows).unwrap().unwrap();
    let loss = |m: &TopModel| weighted_loss(&m.logits(&x).unwrap(), &rows, None).unwrap();
    let n_params = model.clone().params_mut().len();
    assert_eq!(grads.len(), n_params);
    let mut pairs = Vec::new();
    for (p, grad) in grads.iter().enumerate() {
        let len = grad.len();
        for idx in [0, len / 2, len - 1] {
            let eps = 1e-2f32;
            let mut plus = model.clone();
            plus.params_mut()[p][idx] += eps;
            let mut minus = model.clone();
            minus.params_mut()[p][idx] -= eps;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(eps));
            pairs.push((format!("param {p}[{idx}]"), f64::from(grad[idx]), numeric));
        }
    }
    assert_eq!(pairs.len(), 3 * 14, "14 parameter tensors, 3 entries each");
    check_gradients(&pairs).unwrap();
    // The check has power: a zero gradient, or one tensor's gradient
    // zeroed or negated, is rejected (the old absolute tolerance of 2e-3
    // passed a zero gradient on 22 of these 42 entries).
    let clear = pairs.iter().filter(|x| x.2.abs() > 1e-3).count();
    assert!(
        clear >= 14,
        "only {clear} entries with a clearly non-zero derivative"
    );
    let zero: Vec<_> = pairs.iter().map(|(n, _, f)| (n.clone(), 0.0, *f)).collect();
    assert!(check_gradients(&zero).is_err());
    for p in 0..14 {
        for flip in [0.0, -1.0] {
            let bad: Vec<_> = pairs
                .iter()
                .enumerate()
                .map(|(i, (n, a, f))| (n.clone(), if i / 3 == p { a * flip } else { *a }, *f))
                .collect();
            let nonzero = pairs[3 * p..3 * p + 3].iter().any(|x| x.2.abs() > 1e-3);
            if nonzero {
                assert!(
                    check_gradients(&bad).is_err(),
                    "tensor {p} x {flip} accepted"
                );
            }
        }
    }
}

/// Autograd vs finite differences, `(name, analytic, numeric)` per entry:
/// each entry within 2e-4 + 30% (the derivatives here are 1e-5..1e-1; a
/// step of 1e-2 across an activation's kink is off by up to ~25%, elsewhere
/// they agree to ~1e-7), every entry whose numeric derivative is clearly
/// non-zero (> 1e-3) non-zero and of the same sign, and the whole vector pointing the same way (cosine
/// > 0.999) with the same length (within 2%).
fn check_gradients(pairs: &[(String, f64, f64)]) -> Result<(), String> {
    for (name, analytic, numeric) in pairs {
        let tol = 2e-4 + 0.3 * numeric.abs().max(analytic.abs());
        if (numeric - analytic).abs() >= tol {
            return Err(format!(
                "{name}: autograd {analytic} vs finite differences {numeric}"
            ));
        }
        if numeric.abs() > 1e-3 && (*analytic == 0.0 || analytic.signum() != numeric.signum()) {
            return Err(format!(
                "{name}: autograd {analytic} vs finite differences {numeric}"
            ));
        }
    }
    let dot: f64 = pairs.iter().map(|p| p.1 * p.2).sum();
    let na = pairs.iter().map(|p| p.1 * p.1).sum::<f64>().sqrt();
    let nn = pairs.iter().map(|p| p.2 * p.2).sum::<f64>().sqrt();
    if nn == 0.0 {
        return Err("every finite difference is zero: the check cannot tell".into());
    }
    let cos = dot / (na * nn).max(f64::MIN_POSITIVE);
    if !(cos > 0.999 && (na / nn - 1.0).abs() < 0.02) {
        return Err(format!(
            "gradient direction cos {cos}, length ratio {}",
            na / nn
        ));
    }
    Ok(())
}

#[test]
fn training_lowers_the_loss_and_is_deterministic() {
    let top = small_top(5);
    let (x, labels) = data(6, 48, 3, &top);
    let (xv, lv) = data(7, 24, 3, &top);
    let spec = FinetuneSpec {
        lr: 3e-3,
        head_lr: 1e-2,
        epochs: 15,
        patience: 15,
        batch_size: 16,
        ..FinetuneSpec::default()
    };
    let run = || {
        finetune(
            top.clone(),
            (&x, &labels),
            (&xv, &lv),
            3,
            ClassWeighting::Balanced,
            &spec,
            9,
            &|_, _, _| {},
        )
        .unwrap()
    };
    let fit = run();
    let (first, last) = (
        fit.history.train_loss[0],
        *fit.history.train_loss.last().unwrap(),
    );
    assert!(last < 0.8 * first, "training loss {first} -> {last}");
    assert_ne!(fit.top, top, "the layers above the cut were trained");
    let again = run();
    assert_eq!(again.top, fit.top);
    assert_eq!(again.fc, fit.fc);
}

#[test]
fn wrong_activation_width_is_an_error_naming_the_field() {
    let top = small_top(1);
    let x = Tensor::zeros((4, 7), candle_core::DType::F32, &Device::Cpu).unwrap();
    let labels = [0, 1, 0, 1];
    let e = finetune(
        top,
        (&x, &labels),
        (&x, &labels),
        2,
        ClassWeighting::Balanced,
        &FinetuneSpec::default(),
        0,
        &|_, _, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("x_tr") && e.contains("activations"), "{e}");
}
