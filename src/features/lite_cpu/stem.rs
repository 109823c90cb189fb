//! Stage 2 (features), native Lite engine: the stem, a dense 3x3 stride-2
//! convolution from the `[3, S, S]` pixels (0..=255, the backbone's NCHW
//! input) to NHWC, bias + ReLU6 fused. The input normalisation
//! `(x - 127) / 128` is folded in: the 1/128 into the packed weights, the
//! `- 127` into the gather of each output row's 27-value patches (so the
//! zero padding of TF "SAME", asymmetric at stride 2, stays exact). One row
//! of patches at a time feeds the pointwise GEMM kernel with K = 27; a
//! patch is ordered (colour, ky, kx), so each (colour, kernel row) pair
//! fills `k` adjacent entries from one input row, a fixed-size copy for
//! the interior pixels of the 3 x 3 stem.

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
                        let row = (c * k + ky) * k + kx;
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
            for ky in 0..k {
                let iy = iy0 + ky as isize;
                for c in 0..3 {
                    let plane = (iy >= 0 && (iy as usize) < s)
                        .then(|| &px[(c * s + iy as usize) * s..][..s]);
                    self.gather(plane, &mut patch[..wo * kk], (c * k + ky) * k, wo, pad);
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

    /// Patch entries `first..first + k` (the taps kx) of every output
    /// pixel from one input row of one colour plane (`None`: a padding row,
    /// zeros), centred by `- MEAN`; columns left and right of the image are
    /// the zero padding.
    fn gather(
        &self,
        plane: Option<&[f32]>,
        patch: &mut [f32],
        first: usize,
        wo: usize,
        pad: usize,
    ) {
        let t = Taps {
            first,
            pad,
            stride: self.stride,
            kk: self.dense.k,
            k: self.k,
        };
        match (self.k, plane) {
            (3, Some(row)) => gather_3(row, patch, wo, &t),
            _ => gather_any(plane, patch, 0..wo, &t),
        }
    }
}

/// Where one (colour, kernel row) pair's taps go: entries `first..first + k`
/// of each `kk`-value patch; output pixel `ox` reads input columns from
/// `ox * stride - pad`.
struct Taps {
    first: usize,
    pad: usize,
    stride: usize,
    kk: usize,
    k: usize,
}

/// [`Stem::gather`] for the 3 x 3 stem: interior pixels (all taps inside
/// the row) as fixed-size copies, the borders through [`gather_any`].
fn gather_3(row: &[f32], patch: &mut [f32], wo: usize, t: &Taps) {
    const K: usize = 3;
    let lo = t.pad.div_ceil(t.stride).min(wo);
    let hi = match (row.len() + t.pad).checked_sub(K) {
        Some(last) => (last / t.stride + 1).clamp(lo, wo),
        None => lo,
    };
    gather_any(Some(row), patch, 0..lo, t);
    for ox in lo..hi {
        let ix = ox * t.stride - t.pad;
        let dst = &mut patch[ox * t.kk + t.first..][..K];
        for (d, &v) in dst.iter_mut().zip(&row[ix..ix + K]) {
            *d = v - MEAN;
        }
    }
    gather_any(Some(row), patch, hi..wo, t);
}

/// [`Stem::gather`] for output pixels `oxs`, every tap bounds-checked.
fn gather_any(plane: Option<&[f32]>, patch: &mut [f32], oxs: std::ops::Range<usize>, t: &Taps) {
    for ox in oxs {
        let dst = &mut patch[ox * t.kk + t.first..][..t.k];
        let ix0 = (ox * t.stride) as isize - t.pad as isize;
        for (kx, d) in dst.iter_mut().enumerate() {
            let ix = ix0 + kx as isize;
            *d = match plane {
                Some(row) if ix >= 0 && (ix as usize) < row.len() => row[ix as usize] - MEAN,
                _ => 0.0,
            };
        }
    }
}
