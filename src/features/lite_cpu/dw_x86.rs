//! Stage 2 (features), native Lite engine: the x86 depthwise row kernels
//! behind [`super::dw::depthwise`]. One output row at a time, one vector of
//! channels (16 with AVX-512, 8 with AVX2) at a time; the block's k x k tap
//! vectors are loaded once per channel block and kept in registers across
//! the row, interior pixels run the unrolled full window, border pixels the
//! clipped one. Channels left over after the last full vector go to the
//! narrower kernel, then to the portable one.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::dw::{row_portable, Depthwise, Geo};

macro_rules! dw_row {
    ($name:ident, $feat:literal, $v:ty, $lanes:literal, $load:ident, $store:ident, $fma:ident, $set1:ident, $min:ident, $max:ident) => {
        /// Channels `c_lo..c_hi` (whole vectors) of output row `oy`.
        ///
        /// # Safety
        /// The CPU must support the target features; `x` must hold the
        /// `[h, w, c]` input, `out` the `[wo, c]` output row, `taps`
        /// `[K * K, c]` and `bias` `[c]`, with `c_hi <= c`.
        #[target_feature(enable = $feat)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name<const K: usize>(
            g: &Geo,
            x: *const f32,
            taps: *const f32,
            bias: *const f32,
            out: *mut f32,
            oy: usize,
            c_lo: usize,
            c_hi: usize,
        ) {
            let c = g.c;
            let (iy0, ky_lo, ky_hi) = g.rows(oy);
            let full_rows = ky_lo == 0 && ky_hi == K;
            let (zero, six) = ($set1(0.0), $set1(6.0));
            let mut cb = c_lo;
            while cb + $lanes <= c_hi {
                let b = $load(bias.add(cb));
                let mut wv = [[zero; K]; K];
                for (ky, wr) in wv.iter_mut().enumerate() {
                    for (kx, wk) in wr.iter_mut().enumerate() {
                        *wk = $load(taps.add((ky * K + kx) * c + cb));
                    }
                }
                for ox in 0..g.wo {
                    let mut acc = b;
                    if full_rows && ox >= g.interior.0 && ox < g.interior.1 {
                        let ix0 = ox * g.s - g.pad_left;
                        let base = x.add(((iy0 as usize) * g.w + ix0) * c + cb);
                        for (ky, wr) in wv.iter().enumerate() {
                            for (kx, wk) in wr.iter().enumerate() {
                                acc = $fma($load(base.add((ky * g.w + kx) * c)), *wk, acc);
                            }
                        }
                    } else {
                        let (ix0, kx_lo, kx_hi) = g.cols(ox);
                        for ky in ky_lo..ky_hi {
                            let iy = (iy0 + ky as isize) as usize;
                            for kx in kx_lo..kx_hi {
                                let ix = (ix0 + kx as isize) as usize;
                                let xv = $load(x.add((iy * g.w + ix) * c + cb));
                                let wk = $load(taps.add((ky * K + kx) * c + cb));
                                acc = $fma(xv, wk, acc);
                            }
                        }
                    }
                    $store(out.add(ox * c + cb), $min($max(acc, zero), six));
                }
                cb += $lanes;
            }
        }
    };
}

dw_row!(
    r512,
    "avx512f",
    __m512,
    16,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_set1_ps,
    _mm512_min_ps,
    _mm512_max_ps
);
dw_row!(
    r256,
    "avx2,fma",
    __m256,
    8,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_set1_ps,
    _mm256_min_ps,
    _mm256_max_ps
);

fn check(g: &Geo, d: &Depthwise, x: &[f32], row: &[f32]) {
    assert!(x.len() >= g.h * g.w * g.c && row.len() >= g.wo * g.c);
    assert!(d.taps.len() >= d.k * d.k * g.c && d.bias.len() >= g.c);
}

/// Output row `oy`, all channels, with AVX-512 (then AVX2 for a last block
/// of 8 channels, then plain code).
pub(super) fn row_avx512(g: &Geo, d: &Depthwise, x: &[f32], row: &mut [f32], oy: usize) {
    check(g, d, x, row);
    let c16 = g.c / 16 * 16;
    let (xp, tp, bp, op) = (
        x.as_ptr(),
        d.taps.as_ptr(),
        d.bias.as_ptr(),
        row.as_mut_ptr(),
    );
    // SAFETY: `Isa::Avx512` is only chosen on CPUs with AVX-512F (and AVX2,
    // FMA); the slice lengths were checked in `check`.
    unsafe {
        match g.k {
            3 => r512::<3>(g, xp, tp, bp, op, oy, 0, c16),
            5 => r512::<5>(g, xp, tp, bp, op, oy, 0, c16),
            _ => return row_portable(g, d, x, row, oy, 0),
        }
    }
    if c16 < g.c {
        row_avx2(g, d, x, row, oy, c16);
    }
}

/// Output row `oy`, channels `c_lo..`, with AVX2 (then plain code for the
/// last channels if `c` is not a multiple of 8).
pub(super) fn row_avx2(g: &Geo, d: &Depthwise, x: &[f32], row: &mut [f32], oy: usize, c_lo: usize) {
    check(g, d, x, row);
    let c8 = c_lo + (g.c - c_lo) / 8 * 8;
    let (xp, tp, bp, op) = (
        x.as_ptr(),
        d.taps.as_ptr(),
        d.bias.as_ptr(),
        row.as_mut_ptr(),
    );
    // SAFETY: `Isa::Avx2` (or `Avx512`) is only chosen on CPUs with AVX2 and
    // FMA; the slice lengths were checked in `check`.
    unsafe {
        match g.k {
            3 => r256::<3>(g, xp, tp, bp, op, oy, c_lo, c8),
            5 => r256::<5>(g, xp, tp, bp, op, oy, c_lo, c8),
            _ => return row_portable(g, d, x, row, oy, c_lo),
        }
    }
    if c8 < g.c {
        row_portable(g, d, x, row, oy, c8);
    }
}
