//! Stage 2 (features): depthwise convolution from plain tensor ops, for any
//! device and for autograd. Channels-last `[B, H, W, C]` input; the output
//! is the sum over the `k x k` taps of shifted (and, at stride 2,
//! subsampled) views of the padded input times each channel's tap weight,
//! TF "SAME" padding, plus the bias, optionally ReLU6. The direct CPU kernel
//! ([`super::depthwise::DepthwiseConv`]) is faster on the CPU; this one runs
//! on CUDA (inference) and carries gradients (fine-tuning), and is checked
//! against the direct kernel in the tests of `heads::finetune`.

use candle_core::{Result, Tensor};

use super::depthwise::Padding;

/// `min(max(x, 0), 6)`.
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    x.clamp(0f32, 6f32)
}

/// Depthwise `k x k` convolution of `[B, H, W, C]` with tap-major weights
/// `[k * k, C]` and bias `[C]` at `stride`.
pub fn depthwise_taps(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    k: usize,
    stride: usize,
    act: bool,
) -> Result<Tensor> {
    let (n, h, wd, c) = x.dims4()?;
    let (ho, wo) = (h.div_ceil(stride), wd.div_ceil(stride));
    let p = Padding::same(h, wd, k, stride);
    // `stride - 1` extra zeros so every strided window fits the reshape below.
    let extra = stride - 1;
    let xp = x
        .pad_with_zeros(1, p.top, p.bottom + extra)?
        .pad_with_zeros(2, p.left, p.right + extra)?;
    let mut acc: Option<Tensor> = None;
    for i in 0..k {
        for j in 0..k {
            let v = xp.narrow(1, i, ho * stride)?.narrow(2, j, wo * stride)?;
            let v = if stride == 1 {
                v
            } else {
                v.reshape((n, ho, stride, wo, stride, c))?
                    .narrow(2, 0, 1)?
                    .narrow(4, 0, 1)?
                    .reshape((n, ho, wo, c))?
            };
            let term = v.broadcast_mul(&w.narrow(0, i * k + j, 1)?)?;
            acc = Some(match acc {
                None => term,
                Some(a) => (a + term)?,
            });
        }
    }
    let y = acc.ok_or_else(|| candle_core::Error::Msg("depthwise kernel of size 0".into()))?;
    let y = y.broadcast_add(b)?;
    if act {
        relu6(&y)
    } else {
        Ok(y)
    }
}
