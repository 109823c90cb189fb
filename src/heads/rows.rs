//! Heads stage (cached features -> trained linear heads): where the linear
//! heads read their standardized training rows, and the one evaluation
//! skeleton the binary and softmax fits share.
//!
//! A [`RowBlocks`] hands out the `[N, D]` training matrix in row blocks:
//! [`TensorRows`] a matrix already on a candle device (by default one block,
//! the whole matrix: exactly the in-memory path), [`MappedRows`] a
//! memory-mapped split file (`features::mapped`, f32 or f16), decoded and
//! standardized one block at a time, so a fit holds one block, not N rows.
//!
//! `blocked_pass` is one evaluation of a linear objective at a `[D, width]`
//! weight matrix: per block `Z = X_b . W` on the device, the problem's
//! per-row loss and residual on the host (fixed `ROW_CHUNK`-row chunks, in
//! row order over all blocks), `G += X_b^T . R_b`. Blocks are whole numbers
//! of chunks, so the host sums are the same for every block size; only the
//! sum of `G` over blocks rounds differently from one matmul over all rows.

use candle_core::{DType, Device, Tensor, WithDType};
use rayon::prelude::*;

use super::{HeadError, Standardizer};
use crate::features::mapped::MappedFeatures;

/// Rows per host chunk: fixed, so that summation order never depends on how
/// many columns are fused or how rows are blocked.
pub(crate) const ROW_CHUNK: usize = 256;

/// Default rows per block of a streamed fit: 65536 rows of 1280 f32
/// features are 335 MB; every split of the datasets in `configs/` (at most
/// 54,000 training rows) is then one block, i.e. the in-memory evaluation.
pub const DEFAULT_BLOCK_ROWS: usize = 65536;

/// Standardized training rows, block by block.
pub trait RowBlocks: Sync {
    /// N.
    fn rows(&self) -> usize;
    /// D.
    fn dim(&self) -> usize;
    /// The dtype of the blocks (f32, or f64 for exact checks).
    fn dtype(&self) -> DType;
    fn device(&self) -> &Device;
    /// Rows per block: a multiple of `ROW_CHUNK`, or at least [`Self::rows`].
    fn block_rows(&self) -> usize;
    /// Rows `start..start + len` as a `[len, D]` tensor.
    fn block(&self, start: usize, len: usize) -> Result<Tensor, HeadError>;
}

/// `block_rows` rounded up to whole chunks (at least one): the block size
/// a [`MappedRows`] or [`TensorRows::with_block_rows`] actually uses.
pub fn whole_chunks(block_rows: usize) -> usize {
    block_rows.max(1).next_multiple_of(ROW_CHUNK)
}

/// A matrix already on a device.
pub struct TensorRows<'a> {
    x: &'a Tensor,
    n: usize,
    d: usize,
    block_rows: usize,
}

impl<'a> TensorRows<'a> {
    /// The whole matrix as one block. `x` must be contiguous `[N, D]`.
    pub fn new(x: &'a Tensor) -> Result<Self, HeadError> {
        let (n, d) = x.dims2().map_err(|_| HeadError::Shape {
            field: "x",
            expected: "a rank-2 [N, D] tensor".into(),
            got: format!("shape {:?}", x.dims()),
        })?;
        Ok(TensorRows {
            x,
            n,
            d,
            block_rows: n.max(1),
        })
    }

    /// The same matrix in blocks of `block_rows` (rounded up to whole
    /// `ROW_CHUNK`s): the blocked evaluation without a file.
    pub fn with_block_rows(mut self, block_rows: usize) -> Self {
        self.block_rows = whole_chunks(block_rows);
        self
    }
}

impl RowBlocks for TensorRows<'_> {
    fn rows(&self) -> usize {
        self.n
    }
    fn dim(&self) -> usize {
        self.d
    }
    fn dtype(&self) -> DType {
        self.x.dtype()
    }
    fn device(&self) -> &Device {
        self.x.device()
    }
    fn block_rows(&self) -> usize {
        self.block_rows
    }
    fn block(&self, start: usize, len: usize) -> Result<Tensor, HeadError> {
        self.x
            .narrow(0, start, len)
            .map_err(HeadError::candle("x: row block"))
    }
}

/// A mapped split file, standardized block by block on the CPU.
pub struct MappedRows<'a> {
    map: &'a MappedFeatures,
    standardizer: &'a Standardizer,
    block_rows: usize,
}

impl<'a> MappedRows<'a> {
    /// Blocks of `block_rows` (rounded up to whole `ROW_CHUNK`s) of `map`,
    /// each standardized by `standardizer` (of `map.dim` features).
    pub fn new(
        map: &'a MappedFeatures,
        standardizer: &'a Standardizer,
        block_rows: usize,
    ) -> Result<Self, HeadError> {
        if standardizer.dim() != map.dim {
            return Err(HeadError::Shape {
                field: "standardizer",
                expected: format!("{} features (as the file)", map.dim),
                got: format!("{} features", standardizer.dim()),
            });
        }
        Ok(MappedRows {
            map,
            standardizer,
            block_rows: whole_chunks(block_rows),
        })
    }

    /// Raw (unstandardized) rows `start..start + len`, their pages released.
    pub fn raw(map: &MappedFeatures, start: usize, len: usize) -> Result<Vec<f32>, HeadError> {
        let mut buf = vec![0f32; len * map.dim];
        map.read_rows(start, len, &mut buf)
            .map_err(|source| HeadError::Features { source })?;
        map.release(start, len);
        Ok(buf)
    }

    /// The training statistics of a mapped file, in two passes of
    /// `block_rows` rows: bitwise the [`Standardizer::fit`] of its rows.
    pub fn fit_standardizer(
        map: &MappedFeatures,
        block_rows: usize,
    ) -> Result<Standardizer, HeadError> {
        if map.n == 0 {
            return Err(HeadError::Empty { field: "x" });
        }
        let block = whole_chunks(block_rows);
        Standardizer::fit_blocks(map.n, map.dim, |visit| {
            for start in (0..map.n).step_by(block) {
                let len = block.min(map.n - start);
                visit(&Self::raw(map, start, len)?);
            }
            Ok(())
        })
    }
}

impl RowBlocks for MappedRows<'_> {
    fn rows(&self) -> usize {
        self.map.n
    }
    fn dim(&self) -> usize {
        self.map.dim
    }
    fn dtype(&self) -> DType {
        DType::F32
    }
    fn device(&self) -> &Device {
        &Device::Cpu
    }
    fn block_rows(&self) -> usize {
        self.block_rows
    }
    fn block(&self, start: usize, len: usize) -> Result<Tensor, HeadError> {
        let d = self.map.dim;
        let mut buf = Self::raw(self.map, start, len)?;
        buf.par_chunks_mut(ROW_CHUNK * d.max(1))
            .try_for_each(|c| self.standardizer.apply_in_place(c))?;
        Tensor::from_vec(buf, (len, d), &Device::Cpu).map_err(HeadError::candle("x: row block"))
    }
}

/// Checks `rows` against `labels` (one per row, N and D at least 1);
/// returns `(n, d)`.
pub(crate) fn check_rows(
    rows: &dyn RowBlocks,
    labels: &[u32],
) -> Result<(usize, usize), HeadError> {
    let (n, d) = (rows.rows(), rows.dim());
    if !matches!(rows.dtype(), DType::F32 | DType::F64) {
        return Err(HeadError::Dtype {
            dtype: rows.dtype(),
        });
    }
    if labels.len() != n {
        return Err(HeadError::Shape {
            field: "labels",
            expected: format!("{n} (one per row of x)"),
            got: labels.len().to_string(),
        });
    }
    if n == 0 {
        return Err(HeadError::Empty { field: "x" });
    }
    if d == 0 {
        return Err(HeadError::Shape {
            field: "x",
            expected: "at least one feature column".into(),
            got: "0 columns".into(),
        });
    }
    Ok((n, d))
}

/// Relative rounding noise allowed on `f` for the dtype of `x`: 16 epsilons
/// (about 1.9e-6 for f32, Hager-Zhang's 1e-6 order; 3.6e-15 for f64).
pub(crate) fn noise_for(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 16.0 * f64::EPSILON,
        _ => 16.0 * f64::from(f32::EPSILON),
    }
}

/// Uploads a host f64 buffer as a `[rows, cols]` tensor of dtype `T`.
pub(crate) fn upload<T: WithDType>(
    v: &[f64],
    rows: usize,
    cols: usize,
    device: &Device,
    context: &'static str,
) -> Result<Tensor, HeadError> {
    let host: Vec<T> = v.iter().map(|&a| T::from_f64(a)).collect();
    Tensor::from_vec(host, (rows, cols), device).map_err(HeadError::candle(context))
}

/// Downloads a tensor of dtype `T` as a flat host vector.
pub(crate) fn download<T: WithDType>(
    t: &Tensor,
    context: &'static str,
) -> Result<Vec<T>, HeadError> {
    t.flatten_all()
        .and_then(|f| f.to_vec1::<T>())
        .map_err(HeadError::candle(context))
}

/// One evaluation over every block (see the module docs): `w` is the
/// row-major `[D, width]` weight matrix; `chunk(z, r, labels)` gets a chunk
/// of rows' `Z` (`width` values a row, bias not added), fills their residual
/// `R` and returns its partial sums. Returns the partials of every chunk in
/// row order and `G = X^T . R` (row-major `[D, width]`, f64).
pub(crate) fn blocked_pass<T: WithDType, A: Send>(
    rows: &dyn RowBlocks,
    labels: &[u32],
    w: &[f64],
    width: usize,
    chunk: impl Fn(&[T], &mut [T], &[u32]) -> A + Sync,
) -> Result<(Vec<A>, Vec<f64>), HeadError> {
    let (n, d, device) = (rows.rows(), rows.dim(), rows.device());
    let w = upload::<T>(w, d, width, device, "linear heads: upload W")?;
    let block = rows.block_rows().max(1);
    let mut partials = Vec::with_capacity(n.div_ceil(ROW_CHUNK));
    let mut g_sum: Vec<f64> = Vec::new();
    for start in (0..n).step_by(block) {
        let len = block.min(n - start);
        let xb = rows.block(start, len)?;
        let z = xb
            .matmul(&w)
            .map_err(HeadError::candle("linear heads: X . W"))?;
        let z = download::<T>(&z, "linear heads: download X . W")?;
        let mut r = vec![T::from_f64(0.0); len * width];
        let part: Vec<A> = z
            .par_chunks(ROW_CHUNK * width)
            .zip(r.par_chunks_mut(ROW_CHUNK * width))
            .zip(labels[start..start + len].par_chunks(ROW_CHUNK))
            .map(|((zc, rc), lc)| chunk(zc, rc, lc))
            .collect();
        partials.extend(part);
        let r = Tensor::from_vec(r, (len, width), device)
            .map_err(HeadError::candle("linear heads: upload R"))?;
        let g = xb
            .t()
            .and_then(|xt| xt.matmul(&r))
            .map_err(HeadError::candle("linear heads: X^T . R"))?;
        let g = download::<T>(&g, "linear heads: download X^T . R")?;
        if g_sum.is_empty() {
            g_sum = g.iter().map(|v| v.to_f64()).collect();
        } else {
            for (a, v) in g_sum.iter_mut().zip(&g) {
                *a += v.to_f64();
            }
        }
    }
    Ok((partials, g_sum))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::features::feature_set::{FeatureDtype, FeatureSet};
    use crate::features::synthetic::Planted;
    use crate::heads::{
        fit_binary_from, fit_binary_rows, fit_softmax_from, fit_softmax_rows, BinaryJob,
        ClassWeighting, FitOptions, LinearFit,
    };

    const N: usize = 3000;
    const D: usize = 24;
    const K: usize = 3;

    fn data() -> FeatureSet {
        let p = Planted::new(K, D, 2.5, 11);
        let labels = p.labels(N);
        FeatureSet {
            dataset: "planted".into(),
            split: "train".into(),
            backbone: "none".into(),
            weights_sha256: String::new(),
            classes: (0..K).map(|c| c.to_string()).collect(),
            keys: (0..N).map(|i| i.to_string()).collect(),
            features: p
                .rows(&labels, 0, N, 0)
                .iter()
                .map(|v| v * 2.0 + 1.0)
                .collect(),
            labels,
            dim: D,
        }
    }

    fn jobs() -> Vec<BinaryJob> {
        (0..K as u32)
            .map(|class| BinaryJob {
                class,
                c: 0.5,
                weighting: if class == 1 {
                    ClassWeighting::Balanced
                } else {
                    ClassWeighting::None
                },
            })
            .collect()
    }

    fn fits(rows: &dyn RowBlocks, labels: &[u32]) -> (Vec<LinearFit>, LinearFit) {
        let opts = FitOptions::default();
        let ovr = fit_binary_rows(rows, labels, &jobs(), &[None; K], &opts).unwrap();
        let soft =
            fit_softmax_rows(rows, labels, K, 0.5, ClassWeighting::None, None, &opts).unwrap();
        (ovr, soft)
    }

    /// `max |a - b| / max |b|` over weights and biases.
    fn rel(a: &LinearFit, b: &LinearFit) -> f64 {
        let scale =
            b.w.iter()
                .chain(&b.b)
                .fold(0f64, |m, &v| m.max(f64::from(v).abs()));
        let diff = a.w.iter().chain(&a.b).zip(b.w.iter().chain(&b.b));
        diff.fold(0f64, |m, (&x, &y)| m.max(f64::from(x - y).abs())) / scale
    }

    /// Counts the blocks asked for and the largest.
    struct Counting<'a>(TensorRows<'a>, AtomicUsize, AtomicUsize);

    impl RowBlocks for Counting<'_> {
        fn rows(&self) -> usize {
            self.0.rows()
        }
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn dtype(&self) -> DType {
            self.0.dtype()
        }
        fn device(&self) -> &Device {
            self.0.device()
        }
        fn block_rows(&self) -> usize {
            self.0.block_rows()
        }
        fn block(&self, start: usize, len: usize) -> Result<Tensor, HeadError> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.2.fetch_max(len, Ordering::Relaxed);
            self.0.block(start, len)
        }
    }

    #[test]
    fn blocked_fits_match_the_in_memory_fits() {
        let set = data();
        let s = Standardizer::fit(&set.features, N, D);
        let x = Tensor::from_vec(s.apply(&set.features), (N, D), &Device::Cpu).unwrap();
        let opts = FitOptions::default();
        let ovr = fit_binary_from(&x, &set.labels, &jobs(), &[None; K], &opts).unwrap();
        let soft =
            fit_softmax_from(&x, &set.labels, K, 0.5, ClassWeighting::None, None, &opts).unwrap();
        assert!(ovr.iter().chain([&soft]).all(|f| f.converged));
        // One block: the in-memory path itself, bitwise.
        assert_eq!(
            fits(&TensorRows::new(&x).unwrap(), &set.labels),
            (ovr.clone(), soft.clone())
        );
        // 700 rows a block -> 768 (whole chunks): 4 blocks per evaluation,
        // never more than 768 rows at once; the fits differ only by the
        // rounding of G summed over blocks.
        let counting = Counting(
            TensorRows::new(&x).unwrap().with_block_rows(700),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        let (bo, bs) = fits(&counting, &set.labels);
        assert_eq!(counting.2.load(Ordering::Relaxed), 768);
        assert!(counting.1.load(Ordering::Relaxed) >= 4 * 10);
        assert_ne!((bo.clone(), bs.clone()), (ovr.clone(), soft.clone()));
        for (a, b) in bo.iter().chain([&bs]).zip(ovr.iter().chain([&soft])) {
            assert!(rel(a, b) < 1e-6, "relative difference {}", rel(a, b));
            assert!((a.objective - b.objective).abs() <= 1e-6 * b.objective);
        }
        // In f64 the blocked sums agree to rounding.
        let x64 = x.to_dtype(DType::F64).unwrap();
        let (o64, s64) = fits(&TensorRows::new(&x64).unwrap(), &set.labels);
        let (b64, t64) = fits(
            &TensorRows::new(&x64).unwrap().with_block_rows(256),
            &set.labels,
        );
        for (a, b) in b64.iter().chain([&t64]).zip(o64.iter().chain([&s64])) {
            assert!(rel(a, b) < 1e-9, "f64 relative difference {}", rel(a, b));
        }
    }

    #[test]
    fn mapped_files_train_like_the_loaded_sets() {
        let dir = tempfile::tempdir().unwrap();
        let set = data();
        for dtype in [FeatureDtype::F32, FeatureDtype::F16] {
            let path = dir.path().join(format!("{dtype}.safetensors"));
            set.save_as(&path, dtype).unwrap();
            let loaded = FeatureSet::load(&path).unwrap();
            let s = Standardizer::fit(&loaded.features, N, D);
            let x = Tensor::from_vec(s.apply(&loaded.features), (N, D), &Device::Cpu).unwrap();
            let in_memory = fits(&TensorRows::new(&x).unwrap(), &loaded.labels);
            let map = MappedFeatures::open(&path).unwrap();
            // Fitted in blocks of 512 rows: bitwise the in-memory statistics.
            let sm = MappedRows::fit_standardizer(&map, 512).unwrap();
            assert_eq!(sm, s);
            let one_block = MappedRows::new(&map, &sm, N).unwrap();
            assert_eq!(fits(&one_block, &map.labels), in_memory, "{dtype}");
            let blocked = MappedRows::new(&map, &sm, 1000).unwrap();
            assert_eq!(blocked.block_rows(), 1024);
            let (bo, bs) = fits(&blocked, &map.labels);
            for (a, b) in bo
                .iter()
                .chain([&bs])
                .zip(in_memory.0.iter().chain([&in_memory.1]))
            {
                assert!(
                    rel(a, b) < 1e-6,
                    "{dtype}: relative difference {}",
                    rel(a, b)
                );
            }
        }
        let wrong = Standardizer::fit(&[0.0; 4], 1, 4);
        let map = MappedFeatures::open(&dir.path().join("f32.safetensors")).unwrap();
        let e = MappedRows::new(&map, &wrong, 10).err().unwrap();
        assert!(e.to_string().starts_with("standardizer"), "{e}");
    }
}
