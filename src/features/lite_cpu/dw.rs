//! Stage 2 (features), native Lite engine: depthwise k x k convolutions
//! (k = 3 or 5, stride 1 or 2) on NHWC activations, vectorised over
//! channels, with the bias and ReLU6 fused. TensorFlow "SAME" padding is
//! handled by clipping the window at the borders (no padded copy): interior
//! pixels run the full unrolled window, border pixels only the taps inside
//! the image. Works on a range of output rows, so a batch-1 forward pass can
//! split one layer over the workers.

use super::simd::Isa;

mod x86;

/// Depthwise weights, tap-major `[k * k, c]`, and bias `[c]` (BN folded).
#[derive(Debug, Clone)]
pub struct Depthwise {
    pub c: usize,
    pub k: usize,
    pub stride: usize,
    pub taps: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Geometry of one depthwise layer on an `h x w` input.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geo {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub s: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub wo: usize,
    /// Output columns whose whole window lies inside the image.
    pub interior: (usize, usize),
}

/// TF "SAME": `out = ceil(in / s)`, the odd padding pixel after.
pub fn same_pad(input: usize, k: usize, s: usize) -> (usize, usize) {
    let out = input.div_ceil(s);
    let total = ((out - 1) * s + k).saturating_sub(input);
    (out, total / 2)
}

impl Geo {
    fn new(d: &Depthwise, h: usize, w: usize) -> Geo {
        let (_, pad_top) = same_pad(h, d.k, d.stride);
        let (wo, pad_left) = same_pad(w, d.k, d.stride);
        // Interior: ox * s >= pad_left and ox * s - pad_left + k <= w.
        let lo = pad_left.div_ceil(d.stride);
        let hi = if w + pad_left >= d.k {
            ((w + pad_left - d.k) / d.stride + 1).min(wo)
        } else {
            0
        };
        Geo {
            h,
            w,
            c: d.c,
            k: d.k,
            s: d.stride,
            pad_top,
            pad_left,
            wo,
            interior: (lo.min(hi), hi.max(lo.min(hi))),
        }
    }

    /// Kernel rows inside the image for output row `oy`, and the input row of
    /// kernel row 0 (may be negative).
    pub fn rows(&self, oy: usize) -> (isize, usize, usize) {
        let iy0 = (oy * self.s) as isize - self.pad_top as isize;
        let lo = (-iy0).max(0) as usize;
        let hi = (self.h as isize - iy0).clamp(0, self.k as isize) as usize;
        (iy0, lo, hi)
    }

    /// Kernel columns inside the image for output column `ox`.
    pub fn cols(&self, ox: usize) -> (isize, usize, usize) {
        let ix0 = (ox * self.s) as isize - self.pad_left as isize;
        let lo = (-ix0).max(0) as usize;
        let hi = (self.w as isize - ix0).clamp(0, self.k as isize) as usize;
        (ix0, lo, hi)
    }
}

/// Output size of `d` on an `h x w` input.
pub fn out_size(d: &Depthwise, h: usize, w: usize) -> (usize, usize) {
    (same_pad(h, d.k, d.stride).0, same_pad(w, d.k, d.stride).0)
}

/// Output rows `oys` of `d` applied to `x[h, w, c]`, written to `out`
/// (`[oys.len(), wo, c]`, the first row being `oys.start`).
pub fn depthwise(
    isa: Isa,
    d: &Depthwise,
    x: &[f32],
    h: usize,
    w: usize,
    out: &mut [f32],
    oys: std::ops::Range<usize>,
) {
    let g = Geo::new(d, h, w);
    let (c, wc) = (d.c, w * d.c);
    assert!(x.len() >= h * wc, "depthwise input too short");
    assert!(
        out.len() >= oys.len() * g.wo * c,
        "depthwise output too short"
    );
    let mut rows: [&[f32]; MAX_K] = [&[]; MAX_K];
    for (i, oy) in oys.enumerate() {
        let (iy0, lo, hi) = g.rows(oy);
        for (ky, r) in rows.iter_mut().enumerate().take(d.k) {
            *r = if (lo..hi).contains(&ky) {
                let iy = (iy0 + ky as isize) as usize;
                &x[iy * wc..(iy + 1) * wc]
            } else {
                &[]
            };
        }
        dw_row(
            isa,
            d,
            &g,
            &rows[..d.k],
            &mut out[i * g.wo * c..(i + 1) * g.wo * c],
            oy,
        );
    }
}

/// Largest kernel side the engine runs.
pub const MAX_K: usize = 7;

/// Geometry of `d` on an `h x w` input.
pub(super) fn geo(d: &Depthwise, h: usize, w: usize) -> Geo {
    Geo::new(d, h, w)
}

/// Output row `oy` of `d` into `out[wo, c]`, from `rows[ky]`: input row
/// `oy * s - pad_top + ky` (`[w, c]`), empty where it lies outside the image.
pub(super) fn dw_row(
    isa: Isa,
    d: &Depthwise,
    g: &Geo,
    rows: &[&[f32]],
    out: &mut [f32],
    oy: usize,
) {
    assert!(d.k <= MAX_K && rows.len() == d.k, "depthwise kernel size");
    assert_eq!(d.taps.len(), d.k * d.k * d.c, "depthwise taps");
    assert_eq!(d.bias.len(), d.c, "depthwise bias");
    assert!(out.len() >= g.wo * g.c, "depthwise output row too short");
    let (_, lo, hi) = g.rows(oy);
    for (ky, r) in rows.iter().enumerate() {
        let want = if (lo..hi).contains(&ky) { g.w * g.c } else { 0 };
        assert!(r.len() >= want, "depthwise input row {ky} too short");
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::row_avx512(g, d, rows, out, oy),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::row_avx2(g, d, rows, out, oy, 0),
        _ => row_portable(g, d, rows, out, oy, 0),
    }
}

/// One output row, channels `c_lo..`, in plain Rust: blocks of 8 channels
/// (auto-vectorised), then single channels.
pub(super) fn row_portable(
    g: &Geo,
    d: &Depthwise,
    rows: &[&[f32]],
    row: &mut [f32],
    oy: usize,
    c_lo: usize,
) {
    const L: usize = 8;
    let c = g.c;
    let (_, ky_lo, ky_hi) = g.rows(oy);
    for ox in 0..g.wo {
        let (ix0, kx_lo, kx_hi) = g.cols(ox);
        let mut cb = c_lo;
        while cb < c {
            let n = (c - cb).min(L);
            let mut acc = [0f32; L];
            acc[..n].copy_from_slice(&d.bias[cb..cb + n]);
            for (ky, xrow) in rows.iter().enumerate().take(ky_hi).skip(ky_lo) {
                for kx in kx_lo..kx_hi {
                    let ix = (ix0 + kx as isize) as usize;
                    let xs = &xrow[ix * c + cb..][..n];
                    let ws = &d.taps[(ky * g.k + kx) * c + cb..][..n];
                    for ((a, &xv), &wv) in acc.iter_mut().zip(xs).zip(ws) {
                        *a += xv * wv;
                    }
                }
            }
            for (o, a) in row[ox * c + cb..][..n].iter_mut().zip(acc) {
                *o = a.clamp(0.0, 6.0);
            }
            cb += n;
        }
    }
}

/// Plain NHWC loops with explicit zero padding, the reference for tests.
#[cfg(test)]
pub fn depthwise_naive(d: &Depthwise, x: &[f32], h: usize, w: usize) -> Vec<f32> {
    let (ho, wo) = out_size(d, h, w);
    let (_, pt) = same_pad(h, d.k, d.stride);
    let (_, pl) = same_pad(w, d.k, d.stride);
    let c = d.c;
    let mut out = vec![0f32; ho * wo * c];
    for oy in 0..ho {
        for ox in 0..wo {
            for ch in 0..c {
                let mut s = f64::from(d.bias[ch]);
                for ky in 0..d.k {
                    for kx in 0..d.k {
                        let iy = (oy * d.stride + ky) as isize - pt as isize;
                        let ix = (ox * d.stride + kx) as isize - pl as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        let xv = x[((iy as usize) * w + ix as usize) * c + ch];
                        s += f64::from(xv) * f64::from(d.taps[(ky * d.k + kx) * c + ch]);
                    }
                }
                out[(oy * wo + ox) * c + ch] = (s as f32).clamp(0.0, 6.0);
            }
        }
    }
    out
}
