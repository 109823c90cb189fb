//! Stage 2 (features), native Lite engine: one image through the network.
//! Blocks on large maps (the early, high-resolution ones) run per output
//! row: the expanded input rows a row needs are computed into a ring of `k`
//! rows, the depthwise row and its projection follow at once, so the
//! expanded map (up to 112 x 112 x 96) never leaves L1/L2; several workers on
//! one image take bands of output rows (recomputing the few expanded rows
//! at band edges). Blocks on small maps run layer by layer, reusing each
//! weight panel over all pixels; several workers split each layer's rows
//! between barriers.

use super::dw::{self, out_size, MAX_K};
use super::gemm::{gemm, Out};
use super::par::{split, Shared};
use super::{Block, LiteEngine};

/// Input maps larger than this run block by block per output row (the
/// expanded map would not stay in L2); smaller ones layer by layer.
pub(super) const FUSE_BYTES: usize = 1 << 20;

/// Per-worker scratch: stem patches, the ring of expanded rows, one
/// depthwise output row.
pub(super) struct Scratch {
    pub patch: Vec<f32>,
    pub ring: Vec<f32>,
    pub drow: Vec<f32>,
}

impl LiteEngine {
    /// One image `px[3, S, S]` as worker `t` of `nt` (all `nt` call this with
    /// the same `bufs`; `sync` is their barrier). The worker given `out`
    /// writes the pooled features there.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn image(
        &self,
        px: &[f32],
        bufs: &Bufs<'_>,
        sc: &mut Scratch,
        out: Option<&mut [f32]>,
        t: usize,
        nt: usize,
        sync: &(dyn Fn() + Sync),
    ) {
        let s = self.input;
        let side = self.stem.out_side(s);
        let (mut h, mut w) = (side, side);
        let mut c = self.stem.dense.n;
        // SAFETY (every `part`/`all` below): between two `sync()` calls each
        // worker writes only its own rows (`split` gives disjoint ranges) of
        // one buffer and reads only other buffers written before the last
        // barrier; `nt == 1` is a single worker.
        let r = split(side, nt, t, 1);
        self.stem.rows(
            px,
            s,
            &mut sc.patch,
            unsafe { bufs.x.part(r.start * w * c..r.end * w * c) },
            r,
        );
        sync();
        let (mut cur, mut nxt) = (&bufs.x, &bufs.y);
        for b in &self.blocks {
            let (ho, wo) = out_size(&b.dw, h, w);
            let n = b.project.n;
            if h * w * b.dw.c * 4 > self.fuse_bytes {
                // Large maps: each worker runs the whole block over its band
                // of output rows, row by row, in cache.
                let band = split(ho, nt, t, 1);
                let x = unsafe { &cur.all()[..h * w * c] };
                let o = unsafe { nxt.part(band.start * wo * n..band.end * wo * n) };
                self.block_rows(b, x, (h, w, c), sc, o, band);
                sync();
            } else {
                // Small maps (they fit in L2): layer by layer, which reuses
                // each weight panel over all pixels.
                self.block_split(b, (cur, nxt), bufs, (h, w, c), t, nt, sync);
            }
            std::mem::swap(&mut cur, &mut nxt);
            (h, w, c) = (ho, wo, n);
        }
        let p = split(self.head.panel_count(), nt, t, 1);
        let cols = self.head.padded_cols(p.clone());
        let pool = unsafe { bufs.pool.part(cols) };
        pool.fill(0.0);
        gemm(
            unsafe { cur.all() },
            h * w,
            &self.head,
            true,
            Out::Pool { pool },
            p,
        );
        sync();
        if let Some(out) = out {
            let pool = unsafe { bufs.pool.all() };
            let scale = 1.0 / (h * w) as f32;
            for (o, &v) in out.iter_mut().zip(pool) {
                *o = v * scale;
            }
        }
        // The next image's stem must not start before the pool is read.
        sync();
    }

    /// Output rows `oys` of block `b` on `x[h, w, c]` into `out` (those rows
    /// of `[ho, wo, n]`), one output row at a time.
    fn block_rows(
        &self,
        b: &Block,
        x: &[f32],
        (h, w, cin): (usize, usize, usize),
        sc: &mut Scratch,
        out: &mut [f32],
        oys: std::ops::Range<usize>,
    ) {
        let d = &b.dw;
        let g = dw::geo(d, h, w);
        let (ho, wo) = out_size(d, h, w);
        let (ce, n, k) = (d.c, b.project.n, d.k);
        let row_len = w * ce;
        let Scratch { ring, drow, .. } = sc;
        let _ = ho;
        let mut next_in = if oys.is_empty() {
            0
        } else {
            let (iy0, lo, _) = g.rows(oys.start);
            (iy0 + lo as isize) as usize
        };
        for oy in oys.clone() {
            let (iy0, lo, hi) = g.rows(oy);
            if let Some(e) = &b.expand {
                let need = (iy0 + hi as isize) as usize;
                while next_in < need {
                    let slot = next_in % k;
                    let o = &mut ring[slot * row_len..(slot + 1) * row_len];
                    gemm(
                        &x[next_in * w * cin..],
                        w,
                        e,
                        true,
                        Out::Store { c: o, res: None },
                        0..e.panel_count(),
                    );
                    next_in += 1;
                }
            }
            let mut rows: [&[f32]; MAX_K] = [&[]; MAX_K];
            for (ky, r) in rows.iter_mut().enumerate().take(hi).skip(lo) {
                let iy = (iy0 + ky as isize) as usize;
                *r = match b.expand {
                    Some(_) => &ring[(iy % k) * row_len..][..row_len],
                    None => &x[iy * row_len..][..row_len],
                };
            }
            dw::dw_row(self.isa, d, &g, &rows[..k], &mut drow[..wo * ce], oy);
            let i = oy - oys.start;
            let o = &mut out[i * wo * n..(i + 1) * wo * n];
            let res = b.residual.then(|| &x[oy * wo * n..(oy + 1) * wo * n]);
            gemm(
                drow,
                wo,
                &b.project,
                false,
                Out::Store { c: o, res },
                0..b.project.panel_count(),
            );
        }
    }

    /// Block `b` as worker `t` of `nt`: each layer split into row ranges.
    #[allow(clippy::too_many_arguments)]
    fn block_split(
        &self,
        b: &Block,
        (cur, nxt): (&Shared<'_>, &Shared<'_>),
        bufs: &Bufs<'_>,
        (h, w, c): (usize, usize, usize),
        t: usize,
        nt: usize,
        sync: &(dyn Fn() + Sync),
    ) {
        let mr = self.isa.tile_rows();
        // SAFETY: as in `image`: disjoint writes between barriers.
        let src = match &b.expand {
            Some(e) => {
                let r = split(h * w, nt, t, mr);
                let a = unsafe { &cur.all()[r.start * c..] };
                let o = unsafe { bufs.e.part(r.start * e.n..r.end * e.n) };
                gemm(
                    a,
                    r.len(),
                    e,
                    true,
                    Out::Store { c: o, res: None },
                    0..e.panel_count(),
                );
                sync();
                &bufs.e
            }
            None => cur,
        };
        let ce = b.dw.c;
        let (ho, wo) = out_size(&b.dw, h, w);
        let r = split(ho, nt, t, 1);
        let o = unsafe { bufs.d.part(r.start * wo * ce..r.end * wo * ce) };
        dw::depthwise(
            self.isa,
            &b.dw,
            unsafe { &src.all()[..h * w * ce] },
            h,
            w,
            o,
            r,
        );
        sync();
        let n = b.project.n;
        let r = split(ho * wo, nt, t, mr);
        let a = unsafe { &bufs.d.all()[r.start * ce..] };
        let o = unsafe { nxt.part(r.start * n..r.end * n) };
        let res = b
            .residual
            .then(|| unsafe { &cur.all()[r.start * n..r.end * n] });
        gemm(
            a,
            r.len(),
            &b.project,
            false,
            Out::Store { c: o, res },
            0..b.project.panel_count(),
        );
        sync();
    }
}

/// The activation buffers one image runs through.
pub(super) struct Bufs<'a> {
    pub x: Shared<'a>,
    pub y: Shared<'a>,
    pub e: Shared<'a>,
    pub d: Shared<'a>,
    pub pool: Shared<'a>,
}

impl<'a> Bufs<'a> {
    pub(super) fn new(
        x: &'a mut [f32],
        y: &'a mut [f32],
        e: &'a mut [f32],
        d: &'a mut [f32],
        pool: &'a mut [f32],
    ) -> Bufs<'a> {
        Bufs {
            x: Shared::new(x),
            y: Shared::new(y),
            e: Shared::new(e),
            d: Shared::new(d),
            pool: Shared::new(pool),
        }
    }
}
