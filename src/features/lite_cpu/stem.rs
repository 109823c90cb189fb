//! Stage 2 (features), native Lite engine: the stem, a dense 3x3 stride-2
//! convolution from the `[3, S, S]` pixels (0..=255, the backbone's NCHW
//! input) to NHWC, bias + ReLU6 fused. The input normalisation
//! `(x - 127) / 128` is folded in: the 1/128 into the packed weights, the
//! `- 127` into the gather of each output row's 27-value patches (so the
//! zero padding of TF "SAME", asymmetric at stride 2, stays exact). One row
//! of patches at a time feeds the pointwise GEMM kernel with K = 27.

use super::dw::same_pad;
use super::gemm::{gemm, Dense, Out};
use super::simd::Isa;

/// Pixel mean and scale of EfficientNet-Lite's input normalisation.
pub const MEAN: f32 = 127.0;
pub const STD: f32 = 128.0;

/// The packed stem.
#[derive(Debug, Clone)]
pub struct Stem {
    pub dense: Dense,
    pub k: usize,
    pub stride: usize,
}

impl Stem {
    /// `w` in PyTorch layout `[cout, 3, k, k]` (BN folded), `bias[cout]`.
    pub fn pack(isa: Isa, w: &[f32], bias: &[f32], k: usize, stride: usize) -> Stem {
        let cout = bias.len();
        let kk = 3 * k * k;
        assert_eq!(w.len(), cout * kk, "stem weight shape");
        let mut m = vec![0f32; kk * cout];
        for n in 0..cout {
            for c in 0..3 {
                for ky in 0..k {
                    for kx in 0..k {
                        let row = (ky * k + kx) * 3 + c;
                        m[row * cout + n] = w[((n * 3 + c) * k + ky) * k + kx] / STD;
                    }
                }
            }
        }
        Stem {
            dense: Dense::pack(isa, &m, bias, kk, cout),
            k,
            stride,
        }
    }

    /// Output side for an `s x s` input.
    pub fn out_side(&self, s: usize) -> usize {
        same_pad(s, self.k, self.stride).0
    }

    /// Floats of patch scratch one output row needs.
    pub fn patch_len(&self, s: usize) -> usize {
        self.out_side(s) * self.dense.k
    }

    /// Output rows `oys` for `px[3, s, s]`, into `out` (`[oys.len(), wo, cout]`).
    pub fn rows(
        &self,
        px: &[f32],
        s: usize,
        patch: &mut [f32],
        out: &mut [f32],
        oys: std::ops::Range<usize>,
    ) {
        let (wo, pad) = same_pad(s, self.k, self.stride);
        let (k, kk, cout) = (self.k, self.dense.k, self.dense.n);
        assert!(px.len() >= 3 * s * s && patch.len() >= wo * kk);
        for (i, oy) in oys.enumerate() {
            let iy0 = (oy * self.stride) as isize - pad as isize;
            for ox in 0..wo {
                let ix0 = (ox * self.stride) as isize - pad as isize;
                let p = &mut patch[ox * kk..(ox + 1) * kk];
                for ky in 0..k {
                    let iy = iy0 + ky as isize;
                    for kx in 0..k {
                        let ix = ix0 + kx as isize;
                        let inside = iy >= 0 && ix >= 0 && (iy as usize) < s && (ix as usize) < s;
                        for c in 0..3 {
                            p[(ky * k + kx) * 3 + c] = if inside {
                                px[(c * s + iy as usize) * s + ix as usize] - MEAN
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            let o = &mut out[i * wo * cout..(i + 1) * wo * cout];
            gemm(
                patch,
                wo,
                &self.dense,
                true,
                Out::Store { c: o, res: None },
                0..self.dense.panel_count(),
            );
        }
    }
}
