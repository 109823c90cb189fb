//! Stage 2 (features): a direct depthwise convolution for CPU backbones.
//!
//! candle runs a grouped convolution as `groups` separate convolutions plus a
//! concat, which makes depthwise-heavy networks (EfficientNet-Lite) far slower
//! than their FLOPs say. This custom op computes a depthwise `k x k`
//! convolution with asymmetric ("SAME") zero padding, a per-channel bias and
//! an optional fused ReLU6 in one pass, one `(image, channel)` plane per rayon
//! task. Inference only: it has no backward pass.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Zero padding on each side of a plane, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Padding {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Padding {
    /// TensorFlow "SAME" padding for one spatial size: `out = ceil(in / stride)`,
    /// the extra pixel (if any) goes after (right/bottom).
    pub fn same_1d(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
        let out = input.div_ceil(stride);
        let total = ((out.saturating_sub(1)) * stride + kernel).saturating_sub(input);
        (total / 2, total - total / 2)
    }

    /// TensorFlow "SAME" padding for an `h x w` input.
    pub fn same(h: usize, w: usize, kernel: usize, stride: usize) -> Padding {
        let (top, bottom) = Self::same_1d(h, kernel, stride);
        let (left, right) = Self::same_1d(w, kernel, stride);
        Padding {
            top,
            bottom,
            left,
            right,
        }
    }
}

/// Depthwise convolution weights (BatchNorm already folded in) and geometry.
#[derive(Debug, Clone)]
pub struct DepthwiseConv {
    /// `[channels, kernel, kernel]`, row-major.
    weight: Arc<Vec<f32>>,
    /// `[channels]`.
    bias: Arc<Vec<f32>>,
    channels: usize,
    kernel: usize,
    stride: usize,
    relu6: bool,
}

impl DepthwiseConv {
    /// `weight` is `[C, 1, k, k]` (PyTorch layout), `bias` is `[C]`.
    pub fn new(
        weight: &Tensor,
        bias: &Tensor,
        stride: usize,
        relu6: bool,
    ) -> candle_core::Result<Self> {
        let (channels, one, kh, kw) = weight.dims4()?;
        if one != 1 || kh != kw {
            candle_core::bail!(
                "depthwise weight must be [C, 1, k, k], got {:?}",
                weight.dims()
            );
        }
        if bias.dims() != [channels] {
            candle_core::bail!("depthwise bias must be [{channels}], got {:?}", bias.dims());
        }
        if stride == 0 {
            candle_core::bail!("depthwise stride must be at least 1");
        }
        let weight = weight
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1()?;
        let bias = bias.to_dtype(candle_core::DType::F32)?.to_vec1()?;
        Ok(Self {
            weight: Arc::new(weight),
            bias: Arc::new(bias),
            channels,
            kernel: kh,
            stride,
            relu6,
        })
    }

    pub fn kernel(&self) -> usize {
        self.kernel
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Applies the convolution with TF "SAME" padding to `[B, C, H, W]`.
    pub fn forward_same(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let pad = Padding::same(h, w, self.kernel, self.stride);
        self.forward(x, pad)
    }

    /// Applies the convolution with explicit padding to `[B, C, H, W]`.
    pub fn forward(&self, x: &Tensor, pad: Padding) -> candle_core::Result<Tensor> {
        x.apply_op1_no_bwd(&DepthwiseOp { conv: self, pad })
    }
}

struct DepthwiseOp<'a> {
    conv: &'a DepthwiseConv,
    pad: Padding,
}

impl CustomOp1 for DepthwiseOp<'_> {
    fn name(&self) -> &'static str {
        "ovr-depthwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("depthwise conv: only f32 input is supported");
        };
        let (b, c, h, w) = layout.shape().dims4()?;
        let conv = self.conv;
        if c != conv.channels {
            candle_core::bail!(
                "depthwise conv: input has {c} channels, weights {}",
                conv.channels
            );
        }
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("depthwise conv: input must be contiguous");
        };
        let input = &data[start..end];
        let (k, s, p) = (conv.kernel, conv.stride, self.pad);
        let (ph, pw) = (h + p.top + p.bottom, w + p.left + p.right);
        if ph < k || pw < k {
            candle_core::bail!("depthwise conv: padded input {ph}x{pw} smaller than kernel {k}");
        }
        let (oh, ow) = ((ph - k) / s + 1, (pw - k) / s + 1);
        let geo = Geometry::new(h, w, k, s, p, oh, ow);
        let mut out = vec![0f32; b * c * oh * ow];
        out.par_chunks_mut(oh * ow)
            .zip(input.par_chunks(h * w))
            .enumerate()
            .for_each_init(
                || vec![0f32; geo.scratch_len()],
                |scratch, (plane, (o, src))| {
                    let ch = plane % c;
                    let wk = &conv.weight[ch * k * k..(ch + 1) * k * k];
                    geo.fill_phases(src, scratch);
                    plane_conv(&geo, scratch, wk, conv.bias[ch], conv.relu6, o);
                },
            );
        Ok((CpuStorage::F32(out), Shape::from((b, c, oh, ow))))
    }
}

/// Output columns computed together, held in registers across all taps.
const LANES: usize = 16;

/// Sizes of one plane's computation.
///
/// The zero-padded input is split into `stride` *phases*: phase `p` holds
/// padded columns `p, p + s, p + 2s, ...`, so the input of output column
/// `ox` under tap `kx` is phase `kx % s`, column `ox + kx / s`: contiguous
/// for every stride, which lets the compiler vectorize the tap loop.
struct Geometry {
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    pad: Padding,
    oh: usize,
    ow: usize,
    /// Padded rows.
    rows: usize,
    /// Columns of one phase row: room for `ow` rounded up to [`LANES`] plus the taps.
    cols: usize,
}

impl Geometry {
    fn new(h: usize, w: usize, k: usize, s: usize, pad: Padding, oh: usize, ow: usize) -> Self {
        let rows = h + pad.top + pad.bottom;
        let cols = ow.div_ceil(LANES) * LANES + (k - 1) / s + 1;
        Geometry {
            h,
            w,
            k,
            s,
            pad,
            oh,
            ow,
            rows,
            cols,
        }
    }

    fn scratch_len(&self) -> usize {
        self.s * self.rows * self.cols
    }

    /// Writes the zero-padded, phase-split copy of `src` into `scratch`.
    /// Every plane of one geometry writes the same positions, so the zero
    /// border of a scratch buffer made by [`Geometry::scratch_len`] zeros
    /// stays zero across planes and is never cleared again.
    fn fill_phases(&self, src: &[f32], scratch: &mut [f32]) {
        let (s, left) = (self.s, self.pad.left);
        let plane = self.rows * self.cols;
        for y in 0..self.h {
            let r = y + self.pad.top;
            let line = &src[y * self.w..(y + 1) * self.w];
            if s == 1 {
                let n = self.w.min(self.cols.saturating_sub(left));
                let at = r * self.cols + left;
                scratch[at..at + n].copy_from_slice(&line[..n]);
                continue;
            }
            for phase in 0..s {
                // Columns x with (x + left) % s == phase land in this phase.
                let first = (phase + s - left % s) % s;
                let row = &mut scratch
                    [phase * plane + r * self.cols..(phase * plane) + (r + 1) * self.cols];
                for (x, &v) in line.iter().enumerate().skip(first).step_by(s) {
                    if let Some(d) = row.get_mut((x + left) / s) {
                        *d = v;
                    }
                }
            }
        }
    }
}

/// One output plane from its phase-split input (see [`Geometry`]), with the
/// best vector instructions this CPU has.
fn plane_conv(g: &Geometry, phases: &[f32], wk: &[f32], bias: f32, relu6: bool, o: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { plane_conv_avx512(g, phases, wk, bias, relu6, o) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { plane_conv_avx2(g, phases, wk, bias, relu6, o) };
        }
    }
    plane_conv_generic(g, phases, wk, bias, relu6, o)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn plane_conv_avx512(
    g: &Geometry,
    phases: &[f32],
    wk: &[f32],
    bias: f32,
    relu6: bool,
    o: &mut [f32],
) {
    plane_conv_generic(g, phases, wk, bias, relu6, o)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn plane_conv_avx2(
    g: &Geometry,
    phases: &[f32],
    wk: &[f32],
    bias: f32,
    relu6: bool,
    o: &mut [f32],
) {
    plane_conv_generic(g, phases, wk, bias, relu6, o)
}

/// `o[oy, ox] = bias + sum_{ky,kx} w[ky,kx] * padded[oy*s+ky, ox*s+kx]`,
/// then ReLU6 if asked; [`LANES`] output columns at a time.
#[inline(always)]
fn plane_conv_generic(
    g: &Geometry,
    phases: &[f32],
    wk: &[f32],
    bias: f32,
    relu6: bool,
    o: &mut [f32],
) {
    let plane = g.rows * g.cols;
    for oy in 0..g.oh {
        let orow = &mut o[oy * g.ow..(oy + 1) * g.ow];
        for x0 in (0..g.ow).step_by(LANES) {
            let mut acc = [bias; LANES];
            for ky in 0..g.k {
                let r = oy * g.s + ky;
                for kx in 0..g.k {
                    let wv = wk[ky * g.k + kx];
                    let start = (kx % g.s) * plane + r * g.cols + x0 + kx / g.s;
                    let Some(seg) = phases.get(start..).and_then(|t| t.first_chunk::<LANES>())
                    else {
                        continue;
                    };
                    for j in 0..LANES {
                        acc[j] += wv * seg[j];
                    }
                }
            }
            if relu6 {
                for a in acc.iter_mut() {
                    *a = a.clamp(0.0, 6.0);
                }
            }
            let n = LANES.min(g.ow - x0);
            orow[x0..x0 + n].copy_from_slice(&acc[..n]);
        }
    }
}

/// In place on a contiguous `[B, C, ...]` f32 tensor: adds `bias[c]` to
/// channel `c` and, if asked, clamps to ReLU6. One pass and no allocation,
/// where `broadcast_add` + `clamp` make two passes and two new tensors.
pub struct BiasAct<'a> {
    pub bias: &'a [f32],
    pub relu6: bool,
}

impl candle_core::InplaceOp1 for BiasAct<'_> {
    fn name(&self) -> &'static str {
        "ovr-bias-relu6"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("bias-act: only f32 is supported");
        };
        let dims = layout.shape().dims();
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("bias-act: tensor must be contiguous");
        };
        if dims.len() < 2 || dims[1] != self.bias.len() {
            candle_core::bail!(
                "bias-act: shape {dims:?} does not match {} biases",
                self.bias.len()
            );
        }
        let c = dims[1];
        let plane: usize = dims[2..].iter().product();
        let relu6 = self.relu6;
        data[start..end]
            .par_chunks_mut(plane.max(1))
            .enumerate()
            .for_each(|(i, p)| {
                let b = self.bias[i % c];
                if relu6 {
                    p.iter_mut().for_each(|v| *v = (*v + b).clamp(0.0, 6.0));
                } else {
                    p.iter_mut().for_each(|v| *v += b);
                }
            });
        Ok(())
    }
}

/// The same convolution through candle's grouped `conv2d` (explicit padding,
/// then `groups = C`), used as the reference in tests and as the slow path.
pub fn depthwise_candle(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    pad: Padding,
    relu6: bool,
) -> candle_core::Result<Tensor> {
    let c = weight.dim(0)?;
    let x = x
        .pad_with_zeros(2, pad.top, pad.bottom)?
        .pad_with_zeros(3, pad.left, pad.right)?;
    let y = x.conv2d(weight, 0, stride, 1, c)?;
    let y = y.broadcast_add(&bias.reshape((1, c, 1, 1))?)?;
    if relu6 {
        y.clamp(0f32, 6f32)
    } else {
        Ok(y)
    }
}

#[cfg(test)]
mod tests;
