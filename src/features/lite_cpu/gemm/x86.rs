//! Stage 2 (features), native Lite engine: the x86 GEMM micro-tiles behind
//! [`super::gemm`]. AVX-512: up to 8 rows x 2 vectors of 16 columns
//! (16 accumulators); AVX2+FMA: up to 6 rows x 2 vectors of 8 (12
//! accumulators). Each tile starts from the bias, runs the whole `k` loop in
//! registers and applies the epilogue (ReLU6, residual add, masked store of a
//! partial panel, or pool accumulation) before anything leaves them.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::Tile;

/// Runs one AVX-512 tile of `rows` rows on a panel `width` columns wide.
pub(super) fn tile_avx512(t: &Tile, rows: usize, width: usize) {
    macro_rules! go {
        ($v:literal) => {
            // SAFETY: the engine only packs panels for `Isa::Avx512` after
            // checking the CPU has AVX-512F; `gemm` checked the bounds of `t`.
            unsafe {
                match rows {
                    1 => k512::<1, $v>(t),
                    2 => k512::<2, $v>(t),
                    3 => k512::<3, $v>(t),
                    4 => k512::<4, $v>(t),
                    5 => k512::<5, $v>(t),
                    6 => k512::<6, $v>(t),
                    7 => k512::<7, $v>(t),
                    _ => k512::<8, $v>(t),
                }
            }
        };
    }
    if width == 16 {
        go!(1)
    } else {
        go!(2)
    }
}

/// Runs one AVX2 tile of `rows` rows on a panel `width` columns wide.
pub(super) fn tile_avx2(t: &Tile, rows: usize, width: usize) {
    macro_rules! go {
        ($v:literal) => {
            // SAFETY: as in `tile_avx512`, with AVX2 and FMA checked.
            unsafe {
                match rows {
                    1 => k256::<1, $v>(t),
                    2 => k256::<2, $v>(t),
                    3 => k256::<3, $v>(t),
                    4 => k256::<4, $v>(t),
                    5 => k256::<5, $v>(t),
                    _ => k256::<6, $v>(t),
                }
            }
        };
    }
    if width == 8 {
        go!(1)
    } else {
        go!(2)
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn k512<const R: usize, const V: usize>(t: &Tile) {
    const L: usize = 16;
    let w = V * L;
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    for v in 0..V {
        let b = _mm512_loadu_ps(t.bias.add(v * L));
        for row in acc.iter_mut() {
            row[v] = b;
        }
    }
    for kk in 0..t.k {
        let mut b = [_mm512_setzero_ps(); V];
        for (v, bv) in b.iter_mut().enumerate() {
            *bv = _mm512_loadu_ps(t.b.add(kk * w + v * L));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(*t.a.add(r * t.lda + kk));
            for v in 0..V {
                row[v] = _mm512_fmadd_ps(x, b[v], row[v]);
            }
        }
    }
    let (zero, six) = (_mm512_setzero_ps(), _mm512_set1_ps(6.0));
    if t.relu6 {
        for row in acc.iter_mut() {
            for x in row.iter_mut() {
                *x = _mm512_min_ps(_mm512_max_ps(*x, zero), six);
            }
        }
    }
    if !t.pool.is_null() {
        for v in 0..V {
            let mut s = _mm512_loadu_ps(t.pool.add(v * L));
            for row in acc.iter() {
                s = _mm512_add_ps(s, row[v]);
            }
            _mm512_storeu_ps(t.pool.add(v * L), s);
        }
        return;
    }
    for v in 0..V {
        let left = t.cols.saturating_sub(v * L).min(L);
        if left == 0 {
            break;
        }
        let mask: __mmask16 = if left == L {
            0xffff
        } else {
            (1u16 << left) - 1
        };
        for (r, row) in acc.iter().enumerate() {
            let off = r * t.ldc + v * L;
            let mut y = row[v];
            if !t.res.is_null() {
                y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, t.res.add(off)));
            }
            _mm512_mask_storeu_ps(t.c.add(off), mask, y);
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn k256<const R: usize, const V: usize>(t: &Tile) {
    const L: usize = 8;
    let w = V * L;
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    for v in 0..V {
        let b = _mm256_loadu_ps(t.bias.add(v * L));
        for row in acc.iter_mut() {
            row[v] = b;
        }
    }
    for kk in 0..t.k {
        let mut b = [_mm256_setzero_ps(); V];
        for (v, bv) in b.iter_mut().enumerate() {
            *bv = _mm256_loadu_ps(t.b.add(kk * w + v * L));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let x = _mm256_broadcast_ss(&*t.a.add(r * t.lda + kk));
            for v in 0..V {
                row[v] = _mm256_fmadd_ps(x, b[v], row[v]);
            }
        }
    }
    let (zero, six) = (_mm256_setzero_ps(), _mm256_set1_ps(6.0));
    if t.relu6 {
        for row in acc.iter_mut() {
            for x in row.iter_mut() {
                *x = _mm256_min_ps(_mm256_max_ps(*x, zero), six);
            }
        }
    }
    if !t.pool.is_null() {
        for v in 0..V {
            let mut s = _mm256_loadu_ps(t.pool.add(v * L));
            for row in acc.iter() {
                s = _mm256_add_ps(s, row[v]);
            }
            _mm256_storeu_ps(t.pool.add(v * L), s);
        }
        return;
    }
    for v in 0..V {
        let left = t.cols.saturating_sub(v * L).min(L);
        if left == 0 {
            break;
        }
        if left == L {
            for (r, row) in acc.iter().enumerate() {
                let off = r * t.ldc + v * L;
                let mut y = row[v];
                if !t.res.is_null() {
                    y = _mm256_add_ps(y, _mm256_loadu_ps(t.res.add(off)));
                }
                _mm256_storeu_ps(t.c.add(off), y);
            }
            continue;
        }
        let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left as i32), idx);
        for (r, row) in acc.iter().enumerate() {
            let off = r * t.ldc + v * L;
            let mut y = row[v];
            if !t.res.is_null() {
                y = _mm256_add_ps(y, _mm256_maskload_ps(t.res.add(off), mask));
            }
            _mm256_maskstore_ps(t.c.add(off), mask, y);
        }
    }
}
