//! Stage 2 (features), native Lite engine: pointwise (1x1) convolutions as a
//! GEMM on NHWC activations. `out[M, N] = act[M, K] . w[K, N] + bias`, where
//! M is pixels, K input channels and N output channels. Weights are packed
//! once at load into column panels sized for the micro-kernel (two vectors
//! wide, the last one possibly one vector, zero padded), bias padded with
//! them. The epilogue is fused into the micro-tile: bias, optional ReLU6,
//! then either a store (with an optional residual add) or, for the head
//! convolution, a running column sum for the global average pool, so the
//! head's activation map is never stored.

use super::simd::Isa;

mod x86;

/// A pointwise layer packed for one [`Isa`].
#[derive(Debug, Clone)]
pub struct Dense {
    pub k: usize,
    pub n: usize,
    isa: Isa,
    /// Per panel: (first column, padded width, offset into `data`).
    panels: Vec<(usize, usize, usize)>,
    /// Panel after panel, each `[k, width]` row-major.
    data: Vec<f32>,
    /// `[padded_n]`: bias in panel order, zeros in the padding.
    bias: Vec<f32>,
    padded_n: usize,
}

impl Dense {
    /// Packs row-major `w[k, n]` and `bias[n]`.
    pub fn pack(isa: Isa, w: &[f32], bias: &[f32], k: usize, n: usize) -> Dense {
        assert_eq!(w.len(), k * n, "dense weight shape");
        assert_eq!(bias.len(), n, "dense bias shape");
        let lanes = isa.lanes();
        let mut panels = Vec::new();
        let mut data = Vec::new();
        let mut padded_bias = Vec::new();
        let mut c0 = 0;
        while c0 < n {
            let left = n - c0;
            let width = if left <= lanes { lanes } else { 2 * lanes };
            panels.push((c0, width, data.len()));
            for kk in 0..k {
                for j in 0..width {
                    let c = c0 + j;
                    data.push(if c < n { w[kk * n + c] } else { 0.0 });
                }
            }
            for j in 0..width {
                padded_bias.push(
                    bias.get(c0 + j)
                        .copied()
                        .filter(|_| c0 + j < n)
                        .unwrap_or(0.0),
                );
            }
            c0 += width;
        }
        let padded_n = padded_bias.len();
        Dense {
            k,
            n,
            isa,
            panels,
            data,
            bias: padded_bias,
            padded_n,
        }
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    pub fn panel_count(&self) -> usize {
        self.panels.len()
    }

    /// Padded columns `panels` cover (where their pool sums go).
    pub fn padded_cols(&self, panels: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let start = self.panels.get(panels.start).map_or(self.padded_n, |p| p.0);
        let end = self.panels.get(panels.end).map_or(self.padded_n, |p| p.0);
        start..end.max(start)
    }

    /// Length a pool buffer for this layer must have.
    pub fn padded_n(&self) -> usize {
        self.padded_n
    }
}

/// Where a GEMM's results go.
pub enum Out<'a> {
    /// `c[rows, n]` row-major, plus `res[rows, n]` added after the activation
    /// when given (the MBConv residual; that layer has no activation).
    Store {
        c: &'a mut [f32],
        res: Option<&'a [f32]>,
    },
    /// Column sums over all rows added into `pool[padded_n]` (head + GAP).
    Pool { pool: &'a mut [f32] },
}

/// One micro-tile's operands, as raw pointers for the SIMD kernels. The
/// driver [`gemm`] checks every bound before building one.
pub(super) struct Tile {
    pub a: *const f32,
    pub lda: usize,
    /// Start of the panel, `[k, width]`.
    pub b: *const f32,
    pub k: usize,
    /// `[width]`, the panel's slice of the padded bias.
    pub bias: *const f32,
    /// First output element of the tile (row stride `ldc`); null when pooling.
    pub c: *mut f32,
    pub ldc: usize,
    /// Residual, same layout as `c`; null when none.
    pub res: *const f32,
    /// `[width]` pool accumulators for this panel; null when storing.
    pub pool: *mut f32,
    /// Valid output columns of this panel (<= width).
    pub cols: usize,
    pub relu6: bool,
}

/// Rows of `a` processed per pass over the panels, so that block of `a`
/// stays in L2 while every panel streams past it.
fn row_block(k: usize, mr: usize) -> usize {
    let rows = (64 * 1024 / k.max(1)).max(mr);
    rows / mr * mr
}

/// `a[rows, k]` . `w` over the panels `panels` (all columns: `0..panel_count`)
/// with the fused epilogue `out`.
pub fn gemm(
    a: &[f32],
    rows: usize,
    w: &Dense,
    relu6: bool,
    out: Out<'_>,
    panels: std::ops::Range<usize>,
) {
    let (k, n) = (w.k, w.n);
    assert!(a.len() >= rows * k, "gemm input too short");
    assert!(panels.end <= w.panels.len(), "gemm panel range");
    let (c, res, pool) = match out {
        Out::Store { c, res } => {
            assert!(c.len() >= rows * n, "gemm output too short");
            if let Some(r) = res {
                assert!(r.len() >= rows * n, "gemm residual too short");
            }
            (
                c.as_mut_ptr(),
                res.map_or(std::ptr::null(), |r| r.as_ptr()),
                std::ptr::null_mut(),
            )
        }
        Out::Pool { pool } => {
            let cols = w.padded_cols(panels.clone());
            assert!(pool.len() >= cols.len(), "gemm pool too short");
            (std::ptr::null_mut(), std::ptr::null(), pool.as_mut_ptr())
        }
    };
    // Pool slices start at the first column of the panel range.
    let pool_c0 = w.padded_cols(panels.clone()).start;
    let mr = w.isa.tile_rows();
    let mc = row_block(k, mr);
    let mut m0 = 0;
    while m0 < rows {
        let m1 = (m0 + mc).min(rows);
        for &(c0, width, off) in &w.panels[panels.clone()] {
            let cols = width.min(n - c0);
            let mut r = m0;
            let mut tile = 0;
            while r < m1 {
                let rr = tile_height(m1 - m0, mr, tile);
                tile += 1;
                // SAFETY (pointer arithmetic): rows r..r+rr < rows and columns
                // c0..c0+cols <= n are inside `a`, `c` and `res` (lengths
                // asserted above); the panel and its bias are inside `w`.
                let t = Tile {
                    a: a[r * k..].as_ptr(),
                    lda: k,
                    b: w.data[off..].as_ptr(),
                    k,
                    bias: w.bias[c0..].as_ptr(),
                    c: if c.is_null() {
                        c
                    } else {
                        c.wrapping_add(r * n + c0)
                    },
                    ldc: n,
                    res: if res.is_null() {
                        res
                    } else {
                        res.wrapping_add(r * n + c0)
                    },
                    pool: if pool.is_null() {
                        pool
                    } else {
                        pool.wrapping_add(c0 - pool_c0)
                    },
                    cols,
                    relu6,
                };
                run_tile(w.isa, &t, rr, width);
                r += rr;
            }
        }
        m0 = m1;
    }
}

/// Height of micro-tile `i` when `span` rows are cut into the fewest tiles
/// of at most `mr` rows, all within one row of each other (49 rows at
/// `mr = 8`: seven tiles of 7, not six of 8 and one of 1). A tile's time is
/// about proportional to its rows only from 4 rows up (below that its FMA
/// chains wait on latency), so a 1-row remainder costs half a full tile.
pub(super) fn tile_height(span: usize, mr: usize, i: usize) -> usize {
    let tiles = span.div_ceil(mr).max(1);
    let (base, extra) = (span / tiles, span % tiles);
    base + usize::from(i < extra)
}

fn run_tile(isa: Isa, t: &Tile, rows: usize, width: usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::tile_avx512(t, rows, width),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::tile_avx2(t, rows, width),
        _ => tile_portable_dispatch(t, rows, width),
    }
}

fn tile_portable_dispatch(t: &Tile, rows: usize, width: usize) {
    macro_rules! go {
        ($w:literal) => {
            match rows {
                1 => tile_portable::<1, $w>(t),
                2 => tile_portable::<2, $w>(t),
                3 => tile_portable::<3, $w>(t),
                _ => tile_portable::<4, $w>(t),
            }
        };
    }
    if width == 8 {
        go!(8)
    } else {
        go!(16)
    }
}

/// The portable micro-tile: `R` rows by `W` columns in plain arrays.
fn tile_portable<const R: usize, const W: usize>(t: &Tile) {
    // SAFETY: `gemm` built `t` from slices long enough for R rows of `k`
    // inputs, a `[k, W]` panel, W bias values, and R rows of `cols` outputs
    // (or W pool values).
    unsafe {
        let mut acc = [[0f32; W]; R];
        let bias = std::slice::from_raw_parts(t.bias, W);
        for row in acc.iter_mut() {
            row.copy_from_slice(bias);
        }
        for kk in 0..t.k {
            let b = std::slice::from_raw_parts(t.b.add(kk * W), W);
            for (r, row) in acc.iter_mut().enumerate() {
                let x = *t.a.add(r * t.lda + kk);
                for (o, &wv) in row.iter_mut().zip(b) {
                    *o += x * wv;
                }
            }
        }
        for (r, row) in acc.iter_mut().enumerate() {
            if t.relu6 {
                for v in row.iter_mut() {
                    *v = v.clamp(0.0, 6.0);
                }
            }
            if !t.pool.is_null() {
                let p = std::slice::from_raw_parts_mut(t.pool, W);
                for (o, v) in p.iter_mut().zip(row.iter()) {
                    *o += v;
                }
                continue;
            }
            let c = std::slice::from_raw_parts_mut(t.c.add(r * t.ldc), t.cols);
            if t.res.is_null() {
                c.copy_from_slice(&row[..t.cols]);
            } else {
                let res = std::slice::from_raw_parts(t.res.add(r * t.ldc), t.cols);
                for ((o, v), x) in c.iter_mut().zip(row.iter()).zip(res) {
                    *o = v + x;
                }
            }
        }
    }
}

/// Plain triple loop, the reference for the kernel tests.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub fn gemm_naive(
    a: &[f32],
    w: &[f32],
    bias: &[f32],
    m: usize,
    k: usize,
    n: usize,
    relu6: bool,
    res: Option<&[f32]>,
) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = f64::from(bias[j]);
            for kk in 0..k {
                s += f64::from(a[i * k + kk]) * f64::from(w[kk * n + j]);
            }
            let mut v = s as f32;
            if relu6 {
                v = v.clamp(0.0, 6.0);
            }
            if let Some(r) = res {
                v += r[i * n + j];
            }
            out[i * n + j] = v;
        }
    }
    out
}
