//! Stage 2 (features): the native CPU engine for EfficientNet-Lite0/1/2, the
//! default for extraction on the CPU (candle keeps loading, CUDA and
//! fine-tuning). Pixels `[B, 3, S, S]` (0..=255) in, pooled features
//! `[B, D]` out; everything in between is NHWC in per-worker arenas reused
//! across batches. Weights are packed once at load for the chosen [`Isa`]:
//! the stem with the input normalisation folded in ([`stem`]), the
//! pointwise convolutions as GEMM panels with fused bias / ReLU6 / residual
//! and, for the head, the global average pool ([`gemm`]), the depthwise
//! convolutions as tap-major vectors ([`dw`]).
//!
//! Parallelism is one level, one fork/join per batch on workers parked
//! between batches ([`par::Workers`]): with
//! at least as many images as workers each worker takes whole images from a
//! shared counter; otherwise all workers run each image together, splitting
//! every layer's rows (the head: its output panels) between barriers.

pub mod dw;
mod forward;
pub mod gemm;
pub mod par;
pub mod simd;
pub mod stem;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use dw::{out_size, Depthwise};
use forward::{Bufs, Scratch};
use gemm::Dense;
use par::{Shared, SpinBarrier, Workers};
pub use simd::Isa;
use stem::Stem;

/// A pointwise layer as plain host arrays: row-major `w[k, n]`, `b[n]`.
#[derive(Debug, Clone)]
pub struct DenseSpec {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub k: usize,
    pub n: usize,
}

/// One MBConv block (BN folded): optional expand (ReLU6), depthwise
/// (tap-major `[k * k, c]`, ReLU6), project (no activation), residual.
#[derive(Debug, Clone)]
pub struct BlockSpec {
    pub expand: Option<DenseSpec>,
    pub dw_taps: Vec<f32>,
    pub dw_bias: Vec<f32>,
    pub kernel: usize,
    pub stride: usize,
    pub project: DenseSpec,
    pub residual: bool,
}

/// The whole network below the classifier, as host arrays.
#[derive(Debug, Clone)]
pub struct LiteSpec {
    /// Input side in pixels (224, 240, 260).
    pub input: usize,
    /// `[cout, 3, 3, 3]` (PyTorch layout), BN folded, for normalised input.
    pub stem_w: Vec<f32>,
    pub stem_b: Vec<f32>,
    pub blocks: Vec<BlockSpec>,
    /// The head convolution (ReLU6, then the pool).
    pub head: DenseSpec,
}

struct Block {
    expand: Option<Dense>,
    dw: Depthwise,
    project: Dense,
    residual: bool,
}

/// One worker's buffers, sized for the largest layer, kept between batches.
struct Arena {
    x: Vec<f32>,
    y: Vec<f32>,
    e: Vec<f32>,
    d: Vec<f32>,
    scratch: Scratch,
    pool: Vec<f32>,
}

/// Largest buffer of each kind the network needs.
#[derive(Debug, Clone, Copy, Default)]
struct Sizes {
    act: usize,
    exp: usize,
    dw: usize,
    patch: usize,
    ring: usize,
    drow: usize,
    pool: usize,
}

/// EfficientNet-Lite packed for one [`Isa`], ready to run on the CPU.
pub struct LiteEngine {
    isa: Isa,
    workers: Workers,
    input: usize,
    stem: Stem,
    blocks: Vec<Block>,
    head: Dense,
    sizes: Sizes,
    arenas: Mutex<Vec<Arena>>,
    /// Maps of more bytes than this run per output row ([`forward`]).
    fuse_bytes: usize,
}

impl LiteEngine {
    /// Packs `spec` for `isa` (or the best level the CPU has, if it lacks
    /// `isa`), to run on `threads` workers (at least one).
    pub fn new(spec: &LiteSpec, isa: Isa, threads: usize) -> LiteEngine {
        let isa = Isa::or_supported(isa);
        let pack = |d: &DenseSpec| Dense::pack(isa, &d.w, &d.b, d.k, d.n);
        let stem = Stem::pack(isa, &spec.stem_w, &spec.stem_b, 3, 2);
        let blocks: Vec<Block> = spec
            .blocks
            .iter()
            .map(|b| Block {
                expand: b.expand.as_ref().map(pack),
                dw: Depthwise {
                    c: b.dw_bias.len(),
                    k: b.kernel,
                    stride: b.stride,
                    taps: b.dw_taps.clone(),
                    bias: b.dw_bias.clone(),
                },
                project: pack(&b.project),
                residual: b.residual,
            })
            .collect();
        let head = pack(&spec.head);
        let mut engine = LiteEngine {
            isa,
            workers: Workers::new(threads),
            input: spec.input,
            stem,
            blocks,
            head,
            sizes: Sizes::default(),
            arenas: Mutex::new(Vec::new()),
            fuse_bytes: forward::FUSE_BYTES,
        };
        engine.sizes = engine.plan();
        engine
    }

    fn plan(&self) -> Sizes {
        let s = self.input;
        let side = self.stem.out_side(s);
        let (mut h, mut w) = (side, side);
        let mut z = Sizes {
            act: h * w * self.stem.dense.n,
            patch: self.stem.patch_len(s),
            pool: self.head.padded_n(),
            ..Sizes::default()
        };
        for b in &self.blocks {
            let (ho, wo) = out_size(&b.dw, h, w);
            if h * w * b.dw.c * 4 > self.fuse_bytes {
                // Run per output row: a ring of `k` expanded rows, one row out.
                z.ring = z.ring.max(b.dw.k * w * b.dw.c);
                z.drow = z.drow.max(wo * b.dw.c);
            } else {
                if let Some(e) = &b.expand {
                    z.exp = z.exp.max(h * w * e.n);
                }
                z.dw = z.dw.max(ho * wo * b.dw.c);
            }
            z.act = z.act.max(ho * wo * b.project.n);
            (h, w) = (ho, wo);
        }
        z
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Worker threads one batch runs on.
    pub fn threads(&self) -> usize {
        self.workers.count()
    }

    pub fn set_threads(&mut self, threads: usize) {
        if threads.max(1) != self.workers.count() {
            self.workers = Workers::new(threads);
        }
    }

    /// Run blocks whose input map exceeds `bytes` per output row (the rest
    /// layer by layer); for tests of both paths.
    pub fn set_fuse_bytes(&mut self, bytes: usize) {
        self.fuse_bytes = bytes;
        self.sizes = self.plan();
        self.arenas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn input_size(&self) -> usize {
        self.input
    }

    pub fn feature_dim(&self) -> usize {
        self.head.n
    }

    fn arena(&self) -> Arena {
        let z = self.sizes;
        Arena {
            x: vec![0.0; z.act],
            y: vec![0.0; z.act],
            e: vec![0.0; z.exp],
            d: vec![0.0; z.dw],
            scratch: Scratch {
                patch: vec![0.0; z.patch],
                ring: vec![0.0; z.ring],
                drow: vec![0.0; z.drow],
            },
            pool: vec![0.0; z.pool],
        }
    }

    fn take_arenas(&self, n: usize) -> Vec<Arena> {
        let mut held = self.arenas.lock().unwrap_or_else(|e| e.into_inner());
        (0..n)
            .map(|_| held.pop().unwrap_or_else(|| self.arena()))
            .collect()
    }

    fn give_back(&self, arenas: Vec<Arena>) {
        self.arenas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(arenas);
    }

    /// Pooled features `out[batch, D]` for `pixels[batch, 3, S, S]` (0..=255).
    pub fn features(&self, pixels: &[f32], batch: usize, out: &mut [f32]) {
        let (s, dim) = (self.input, self.feature_dim());
        let img = 3 * s * s;
        assert!(pixels.len() >= batch * img, "engine input too short");
        assert!(out.len() >= batch * dim, "engine output too short");
        if batch == 0 {
            return;
        }
        let workers = self.workers.count();
        let mut arenas = self.take_arenas(workers);
        let feats = Shared::new(&mut out[..batch * dim]);
        let px = |i: usize| &pixels[i * img..(i + 1) * img];
        if workers == 1 || batch >= workers {
            // Whole images per worker, from one shared counter.
            let next = AtomicUsize::new(0);
            let cells: Vec<Mutex<&mut Arena>> = arenas.iter_mut().map(Mutex::new).collect();
            self.workers.run(&|t| {
                let mut a = cells[t].lock().unwrap_or_else(|e| e.into_inner());
                let Arena {
                    x,
                    y,
                    e,
                    d,
                    scratch,
                    pool,
                } = &mut **a;
                let bufs = Bufs::new(x, y, e, d, pool);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= batch {
                        break;
                    }
                    // SAFETY: image `i` was taken by this worker alone, so
                    // nobody else writes its feature row.
                    let row = unsafe { feats.part(i * dim..(i + 1) * dim) };
                    self.image(px(i), &bufs, scratch, Some(row), 0, 1, &|| {});
                }
            });
        } else {
            // Fewer images than workers: all workers run each image together
            // on the first arena's buffers, each with its own patch scratch.
            let barrier = SpinBarrier::new(workers);
            let sync = || barrier.wait();
            let (first, rest) = arenas.split_at_mut(1);
            let Arena {
                x,
                y,
                e,
                d,
                scratch,
                pool,
            } = &mut first[0];
            let bufs = Bufs::new(x, y, e, d, pool);
            let mut scratches: Vec<&mut Scratch> = vec![scratch];
            scratches.extend(rest.iter_mut().map(|a| &mut a.scratch));
            let cells: Vec<Mutex<&mut Scratch>> = scratches.into_iter().map(Mutex::new).collect();
            self.workers.run(&|t| {
                let mut sc = cells[t].lock().unwrap_or_else(|e| e.into_inner());
                for i in 0..batch {
                    // SAFETY: only worker 0 writes feature rows.
                    let row = (t == 0).then(|| unsafe { feats.part(i * dim..(i + 1) * dim) });
                    self.image(px(i), &bufs, &mut sc, row, t, workers, &sync);
                }
            });
        }
        self.give_back(arenas);
    }
}
