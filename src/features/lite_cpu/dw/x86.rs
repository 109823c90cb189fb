//! Stage 2 (features), native Lite engine: the x86 depthwise row kernels
//! behind [`super::dw_row`]. One output row at a time; within it,
//! interior pixels in blocks of eight FMA chains (AVX-512: 4 pixels x 2
//! channel vectors, AVX2: 8 pixels x 1), kernel size and stride known at
//! compile time, each kernel row's taps in registers and each input column
//! loaded once for all the pixels it feeds. Border pixels (and
//! the last interior ones) run one at a time with the window clipped to the
//! image, over four channel vectors (four chains). Channels left after the last whole vector go to the narrower
//! kernel, then to the portable one.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::{row_portable, Depthwise, Geo, MAX_K};

/// Pointers the kernels read: the input row of every kernel row (null
/// outside the image), the taps, the bias and the output row.
struct Args {
    rows: [*const f32; MAX_K],
    taps: *const f32,
    bias: *const f32,
    out: *mut f32,
    ky: (usize, usize),
}

/// What columns outside the image read: zeros, enough for two vectors.
#[repr(align(64))]
struct Zeros([f32; 64]);
static ZEROS: Zeros = Zeros([0.0; 64]);

macro_rules! dw_kernels {
    ($row:ident, $pix:ident, $int:ident, $iblock:ident, $blocks:ident, $pi:literal, $gi:literal, $feat:literal, $lanes:literal, $load:ident, $store:ident, $fma:ident, $set1:ident, $min:ident, $max:ident) => {
        /// `P` interior output pixels from `ox` (whole window inside the
        /// row) by `G` channel vectors from `cb`, for a `K x K` kernel at
        /// stride `S` known at compile time: per kernel row, the `K` tap
        /// vectors stay in registers and each input column is loaded once and
        /// used by every pixel whose window covers it.
        ///
        /// # Safety
        /// As for the pixel kernel, with `ox .. ox + P` interior.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn $int<
            const K: usize,
            const S: usize,
            const P: usize,
            const G: usize,
            const CHECK: bool,
        >(
            g: &Geo,
            a: &Args,
            ox: usize,
            cb: usize,
        ) {
            const L: usize = $lanes;
            let c = g.c;
            let zero = $set1(0.0);
            let ix0 = (ox * S) as isize - g.pad_left as isize;
            let mut acc = [[zero; G]; P];
            for gg in 0..G {
                let b = $load(a.bias.add(cb + gg * L));
                for row in acc.iter_mut() {
                    row[gg] = b;
                }
            }
            for ky in a.ky.0..a.ky.1 {
                let mut wv = [[zero; G]; K];
                for (kx, wk) in wv.iter_mut().enumerate() {
                    for (gg, w) in wk.iter_mut().enumerate() {
                        *w = $load(a.taps.add((ky * K + kx) * c + cb + gg * L));
                    }
                }
                let xr = a.rows[ky];
                for i in 0..(P - 1) * S + K {
                    let col = ix0 + i as isize;
                    // Columns outside the image read a zero vector instead.
                    let p = if !CHECK || (col >= 0 && (col as usize) < g.w) {
                        xr.add(col as usize * c + cb)
                    } else {
                        ZEROS.0.as_ptr()
                    };
                    let mut xv = [zero; G];
                    for (gg, x) in xv.iter_mut().enumerate() {
                        *x = $load(p.add(gg * L));
                    }
                    for (j, row) in acc.iter_mut().enumerate() {
                        if i >= j * S && i - j * S < K {
                            let kx = i - j * S;
                            for gg in 0..G {
                                row[gg] = $fma(xv[gg], wv[kx][gg], row[gg]);
                            }
                        }
                    }
                }
            }
            let six = $set1(6.0);
            for (j, row) in acc.iter().enumerate() {
                for (gg, &v) in row.iter().enumerate() {
                    $store(
                        a.out.add((ox + j) * c + cb + gg * L),
                        $min($max(v, zero), six),
                    );
                }
            }
        }

        /// The interior block kernel for this geometry.
        ///
        /// # Safety
        /// As for the interior kernel.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn $iblock<const P: usize, const G: usize, const CHECK: bool>(
            g: &Geo,
            a: &Args,
            ox: usize,
            cb: usize,
        ) {
            match (g.k, g.s) {
                (3, 1) => $int::<3, 1, P, G, CHECK>(g, a, ox, cb),
                (3, 2) => $int::<3, 2, P, G, CHECK>(g, a, ox, cb),
                (5, 1) => $int::<5, 1, P, G, CHECK>(g, a, ox, cb),
                _ => $int::<5, 2, P, G, CHECK>(g, a, ox, cb),
            }
        }

        /// `P`-pixel blocks over the whole row (the last one shifted left to
        /// end at the row's end, recomputing a few pixels), interior blocks
        /// unchecked, border ones with out-of-image columns read as zeros.
        ///
        /// # Safety
        /// As for the interior kernel; `g.k` and `g.s` in {3, 5} x {1, 2},
        /// `g.wo >= P`.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn $blocks<const P: usize>(g: &Geo, a: &Args, cb: usize, vectors: usize) {
            const L: usize = $lanes;
            let (ilo, ihi) = g.interior;
            let mut ox = 0;
            while ox < g.wo {
                let o = ox.min(g.wo - P);
                let inside = o >= ilo && o + P <= ihi;
                let mut v = 0;
                while v < vectors {
                    let two = $gi == 2 && v + 2 <= vectors;
                    match (two, inside) {
                        (true, true) => $iblock::<P, 2, false>(g, a, o, cb + v * L),
                        (true, false) => $iblock::<P, 2, true>(g, a, o, cb + v * L),
                        (false, true) => $iblock::<P, 1, false>(g, a, o, cb + v * L),
                        (false, false) => $iblock::<P, 1, true>(g, a, o, cb + v * L),
                    }
                    v += if two { 2 } else { 1 };
                }
                ox = o + P;
            }
        }

        /// `P` output pixels from `ox` by `G` channel vectors from `cb`, kernel
        /// columns `kx_lo..kx_hi` (the same for all `P` pixels).
        ///
        /// # Safety
        /// The CPU must support the target features and `a` must point into
        /// buffers holding what [`Args`] describes for this geometry.
        #[target_feature(enable = $feat)]
        #[inline]
        unsafe fn $pix<const P: usize, const G: usize>(
            g: &Geo,
            a: &Args,
            ox: usize,
            kx: (usize, usize),
            cb: usize,
        ) {
            const L: usize = $lanes;
            let (c, k) = (g.c, g.k);
            let step = g.s * c;
            let zero = $set1(0.0);
            let ix0 = (ox * g.s) as isize - g.pad_left as isize;
            let first = (ix0 + kx.0 as isize) as usize;
            let taps = kx.1 - kx.0;
            let mut acc = [[zero; G]; P];
            for gg in 0..G {
                let b = $load(a.bias.add(cb + gg * L));
                for row in acc.iter_mut() {
                    row[gg] = b;
                }
            }
            for ky in a.ky.0..a.ky.1 {
                let mut xp = a.rows[ky].add(first * c + cb);
                let mut wp = a.taps.add((ky * k + kx.0) * c + cb);
                for _ in 0..taps {
                    let mut wv = [zero; G];
                    for (gg, w) in wv.iter_mut().enumerate() {
                        *w = $load(wp.add(gg * L));
                    }
                    for (j, row) in acc.iter_mut().enumerate() {
                        let p = xp.add(j * step);
                        for gg in 0..G {
                            row[gg] = $fma($load(p.add(gg * L)), wv[gg], row[gg]);
                        }
                    }
                    xp = xp.add(c);
                    wp = wp.add(c);
                }
            }
            let six = $set1(6.0);
            for (j, row) in acc.iter().enumerate() {
                for (gg, &v) in row.iter().enumerate() {
                    $store(
                        a.out.add((ox + j) * c + cb + gg * L),
                        $min($max(v, zero), six),
                    );
                }
            }
        }

        /// Channels `c_lo..c_hi` (whole vectors) of one output row: chunks of
        /// four vectors (then two, then one); within a chunk, interior pixels
        /// four at a time (two vectors per call), the others one at a time
        /// with all the chunk's vectors (independent chains either way).
        ///
        /// # Safety
        /// As for the pixel kernel; `c_hi <= c`.
        #[target_feature(enable = $feat)]
        unsafe fn $row(g: &Geo, a: &Args, c_lo: usize, c_hi: usize) {
            const L: usize = $lanes;
            let (ilo, ihi) = g.interior;
            let mut cb = c_lo;
            while cb + L <= c_hi {
                let vectors = ((c_hi - cb) / L).min(4);
                let vectors = if vectors == 3 { 2 } else { vectors };
                let fast = matches!((g.k, g.s), (3, 1) | (3, 2) | (5, 1) | (5, 2));
                if fast && g.wo >= $pi {
                    $blocks::<$pi>(g, a, cb, vectors);
                    cb += vectors * L;
                    continue;
                }
                if fast && g.wo >= 4 {
                    $blocks::<4>(g, a, cb, vectors);
                    cb += vectors * L;
                    continue;
                }
                let mut ox = 0;
                while ox < g.wo {
                    if ox >= ilo && ox + $pi <= ihi {
                        let mut v = 0;
                        while v < vectors {
                            if $gi == 2 && v + 2 <= vectors {
                                $pix::<$pi, 2>(g, a, ox, (0, g.k), cb + v * L);
                                v += 2;
                            } else {
                                $pix::<$pi, 1>(g, a, ox, (0, g.k), cb + v * L);
                                v += 1;
                            }
                        }
                        ox += $pi;
                        continue;
                    }
                    let (_, kx_lo, kx_hi) = g.cols(ox);
                    match vectors {
                        4 => $pix::<1, 4>(g, a, ox, (kx_lo, kx_hi), cb),
                        2 => $pix::<1, 2>(g, a, ox, (kx_lo, kx_hi), cb),
                        _ => $pix::<1, 1>(g, a, ox, (kx_lo, kx_hi), cb),
                    }
                    ox += 1;
                }
                cb += vectors * L;
            }
        }
    };
}

dw_kernels!(
    r512,
    p512,
    i512,
    b512,
    k512,
    4,
    2,
    "avx512f,avx2,fma",
    16,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_set1_ps,
    _mm512_min_ps,
    _mm512_max_ps
);
dw_kernels!(
    r256,
    p256,
    i256,
    b256,
    k256,
    8,
    1,
    "avx2,fma",
    8,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_set1_ps,
    _mm256_min_ps,
    _mm256_max_ps
);

/// Raw pointers for the kernels; `dw_row` checked every slice length.
fn args(g: &Geo, d: &Depthwise, rows: &[&[f32]], out: &mut [f32], oy: usize) -> Args {
    let (_, lo, hi) = g.rows(oy);
    let mut ptrs = [std::ptr::null(); MAX_K];
    for (p, r) in ptrs.iter_mut().zip(rows) {
        *p = r.as_ptr();
    }
    Args {
        rows: ptrs,
        taps: d.taps.as_ptr(),
        bias: d.bias.as_ptr(),
        out: out.as_mut_ptr(),
        ky: (lo, hi),
    }
}

/// Output row `oy`, all channels, with AVX-512 (then AVX2 for a last block
/// of 8 channels, then plain code).
pub(super) fn row_avx512(g: &Geo, d: &Depthwise, rows: &[&[f32]], out: &mut [f32], oy: usize) {
    let c16 = g.c / 16 * 16;
    let a = args(g, d, rows, out, oy);
    // SAFETY: `Isa::Avx512` is only chosen on CPUs with AVX-512F, AVX2 and
    // FMA; `dw_row` checked the lengths of every row, the taps, the bias and
    // the output against the geometry.
    unsafe { r512(g, &a, 0, c16) };
    if c16 < g.c {
        row_avx2(g, d, rows, out, oy, c16);
    }
}

/// Output row `oy`, channels `c_lo..`, with AVX2 (then plain code for the
/// last channels if `c` is not a multiple of 8).
pub(super) fn row_avx2(
    g: &Geo,
    d: &Depthwise,
    rows: &[&[f32]],
    out: &mut [f32],
    oy: usize,
    c_lo: usize,
) {
    let c8 = c_lo + (g.c - c_lo) / 8 * 8;
    let a = args(g, d, rows, out, oy);
    // SAFETY: `Isa::Avx2` (or `Avx512`) is only chosen on CPUs with AVX2 and
    // FMA; lengths checked by `dw_row`.
    unsafe { r256(g, &a, c_lo, c8) };
    if c8 < g.c {
        row_portable(g, d, rows, out, oy, c8);
    }
}
