//! Tests of the direct depthwise convolution against candle's reference path.

use super::*;
use candle_core::{Device, Tensor};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    a.sub(b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn same_padding_matches_tensorflow() {
    // TF: out = ceil(in/s); total = max((out-1)*s + k - in, 0); before = total/2.
    assert_eq!(Padding::same_1d(224, 3, 2), (0, 1));
    assert_eq!(Padding::same_1d(112, 3, 1), (1, 1));
    assert_eq!(Padding::same_1d(56, 5, 2), (1, 2));
    assert_eq!(Padding::same_1d(28, 5, 1), (2, 2));
    assert_eq!(Padding::same_1d(7, 3, 2), (1, 1));
    assert_eq!(Padding::same_1d(260, 3, 2), (0, 1));
}

#[test]
fn matches_candle_grouped_conv() {
    let dev = Device::Cpu;
    for &(c, h, w, k, s, relu6) in &[
        (4usize, 9usize, 7usize, 3usize, 1usize, false),
        (5, 10, 10, 3, 2, true),
        (3, 11, 8, 5, 2, false),
        (6, 8, 8, 5, 1, true),
        // Wider than one register block, with a remainder.
        (3, 20, 37, 3, 2, true),
        (2, 17, 40, 5, 1, false),
        (2, 33, 50, 5, 2, true),
    ] {
        let x = Tensor::randn(0f32, 3.0, (2, c, h, w), &dev).unwrap();
        let wt = Tensor::randn(0f32, 1.0, (c, 1, k, k), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, c, &dev).unwrap();
        let pad = Padding::same(h, w, k, s);
        let expected = depthwise_candle(&x, &wt, &b, s, pad, relu6).unwrap();
        let conv = DepthwiseConv::new(&wt, &b, s, relu6).unwrap();
        let got = conv.forward(&x, pad).unwrap();
        assert_eq!(got.dims(), expected.dims());
        let d = max_abs_diff(&got, &expected);
        assert!(d < 1e-4, "c={c} h={h} w={w} k={k} s={s}: max diff {d}");
    }
}

#[test]
fn hand_computed_value() {
    // 1 channel, 3x3 input 1..9, 3x3 kernel of ones, SAME stride 1:
    // centre = sum(1..9) = 45, corner (0,0) = 1+2+4+5 = 12; bias 1.
    let dev = Device::Cpu;
    let x = Tensor::arange(1f32, 10f32, &dev)
        .unwrap()
        .reshape((1, 1, 3, 3))
        .unwrap();
    let wt = Tensor::ones((1, 1, 3, 3), candle_core::DType::F32, &dev).unwrap();
    let b = Tensor::new(&[1f32], &dev).unwrap();
    let conv = DepthwiseConv::new(&wt, &b, 1, false).unwrap();
    let y = conv
        .forward_same(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(y[4], 46.0);
    assert_eq!(y[0], 13.0);
    let conv6 = DepthwiseConv::new(&wt, &b, 1, true).unwrap();
    let y6 = conv6
        .forward_same(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(y6.iter().all(|&v| v == 6.0));
}

#[test]
fn bias_act_matches_broadcast_add_and_clamp() {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 5.0, (2, 3, 4, 5), &dev).unwrap();
    let bias = [1.5f32, -2.0, 0.25];
    let b = Tensor::new(&bias, &dev)
        .unwrap()
        .reshape((1, 3, 1, 1))
        .unwrap();
    for relu6 in [false, true] {
        let mut want = x.broadcast_add(&b).unwrap();
        if relu6 {
            want = want.clamp(0f32, 6f32).unwrap();
        }
        let got = x.copy().unwrap();
        got.inplace_op1(&BiasAct { bias: &bias, relu6 }).unwrap();
        assert!(max_abs_diff(&got, &want) < 1e-6);
    }
}

#[test]
fn rejects_bad_weight_shape() {
    let dev = Device::Cpu;
    let wt = Tensor::zeros((2, 2, 3, 3), candle_core::DType::F32, &dev).unwrap();
    let b = Tensor::zeros(2, candle_core::DType::F32, &dev).unwrap();
    assert!(DepthwiseConv::new(&wt, &b, 1, false).is_err());
}
