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
//! weight matrix. It reads the rows block by block and computes unit by
//! unit: per `REDUCE_ROWS`-row unit `Z = X_u . W` on the device, the
//! problem's per-row loss and residual on the host (fixed `ROW_CHUNK`-row
//! chunks), `G_u = X_u^T . R_u`, and `G` is the sum of the units' `G_u` in
//! row order, in f64. Blocks are whole numbers of units, so every
//! evaluation, and with it every fit, is bitwise the same whatever the
//! block size: streaming a mapped file in blocks trains exactly the heads
//! the in-memory matrix trains (a split of at most `REDUCE_ROWS` rows, as
//! every dataset in `configs/`, is one unit: one matmul, as before blocks).

use candle_core::{DType, Device, Tensor, WithDType};
use rayon::prelude::*;

use super::{HeadError, Standardizer};
use crate::features::mapped::MappedFeatures;

/// Rows per host chunk: fixed, so that summation order never depends on how
/// many columns are fused or how rows are blocked.
pub(crate) const ROW_CHUNK: usize = 256;

/// Rows per reduction unit of [`blocked_pass`]: 4096 rows of 1280 f32
/// features are 21 MB. Every block is a whole number of units.
pub(crate) const REDUCE_ROWS: usize = 4096;

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
    /// Rows per block: a multiple of `REDUCE_ROWS`, or at least [`Self::rows`].
    fn block_rows(&self) -> usize;
    /// Rows `start..start + len` as a `[len, D]` tensor.
    fn block(&self, start: usize, len: usize) -> Result<Tensor, HeadError>;
}

/// `block_rows` rounded up to whole reduction units (at least one, 4096
/// rows each): the block size a [`MappedRows`] or
/// [`TensorRows::with_block_rows`] actually uses.
pub fn whole_units(block_rows: usize) -> usize {
    block_rows.max(1).next_multiple_of(REDUCE_ROWS)
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
    /// reduction units): the blocked evaluation without a file.
    pub fn with_block_rows(mut self, block_rows: usize) -> Self {
        self.block_rows = whole_units(block_rows);
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

/// A mapped split file, decoded and standardized block by block on the
/// CPU; each block then goes to the rows' device (the CPU unless
/// [`MappedRows::on_device`]).
pub struct MappedRows<'a> {
    map: &'a MappedFeatures,
    standardizer: &'a Standardizer,
    block_rows: usize,
    device: Device,
}

impl<'a> MappedRows<'a> {
    /// Blocks of `block_rows` (rounded up to whole reduction units) of `map`,
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
            block_rows: whole_units(block_rows),
            device: Device::Cpu,
        })
    }

    /// The same blocks, each uploaded to `device` once standardized (a
    /// CUDA lane's own stream, say).
    pub fn on_device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
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
    /// `block_rows` rows: bitwise the [`Standardizer::try_fit`] of its rows.
    pub fn fit_standardizer(
        map: &MappedFeatures,
        block_rows: usize,
    ) -> Result<Standardizer, HeadError> {
        if map.n == 0 {
            return Err(HeadError::Empty { field: "x" });
        }
        let block = whole_units(block_rows);
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
        &self.device
    }
    fn block_rows(&self) -> usize {
        self.block_rows
    }
    fn block(&self, start: usize, len: usize) -> Result<Tensor, HeadError> {
        let d = self.map.dim;
        let mut buf = Self::raw(self.map, start, len)?;
        buf.par_chunks_mut(ROW_CHUNK * d.max(1))
            .try_for_each(|c| self.standardizer.apply_in_place(c))?;
        let host = Tensor::from_vec(buf, (len, d), &Device::Cpu)
            .map_err(HeadError::candle("x: row block"))?;
        if self.device.is_cpu() {
            return Ok(host);
        }
        host.to_device(&self.device)
            .map_err(HeadError::candle("x: row block to the lane's device"))
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
    let mut g_sum = vec![0f64; d * width];
    for start in (0..n).step_by(block) {
        let len = block.min(n - start);
        let xb = rows.block(start, len)?;
        for off in (0..len).step_by(REDUCE_ROWS) {
            let ulen = REDUCE_ROWS.min(len - off);
            let xu = xb
                .narrow(0, off, ulen)
                .map_err(HeadError::candle("x: reduction unit"))?;
            let lu = &labels[start + off..start + off + ulen];
            let (part, g) = unit_pass(&xu, lu, &w, width, &chunk)?;
            partials.extend(part);
            for (a, v) in g_sum.iter_mut().zip(&g) {
                *a += v.to_f64();
            }
        }
    }
    Ok((partials, g_sum))
}

/// One reduction unit of [`blocked_pass`]: its chunks' partials and its
/// `G_u = X_u^T . R_u` (`[D, width]`, dtype `T`).
fn unit_pass<T: WithDType, A: Send>(
    xu: &Tensor,
    labels: &[u32],
    w: &Tensor,
    width: usize,
    chunk: &(impl Fn(&[T], &mut [T], &[u32]) -> A + Sync),
) -> Result<(Vec<A>, Vec<T>), HeadError> {
    let len = labels.len();
    let z = xu
        .matmul(w)
        .map_err(HeadError::candle("linear heads: X . W"))?;
    let z = download::<T>(&z, "linear heads: download X . W")?;
    let mut r = vec![T::from_f64(0.0); len * width];
    let part: Vec<A> = z
        .par_chunks(ROW_CHUNK * width)
        .zip(r.par_chunks_mut(ROW_CHUNK * width))
        .zip(labels.par_chunks(ROW_CHUNK))
        .map(|((zc, rc), lc)| chunk(zc, rc, lc))
        .collect();
    let r = Tensor::from_vec(r, (len, width), xu.device())
        .map_err(HeadError::candle("linear heads: upload R"))?;
    let g = xu
        .t()
        .and_then(|xt| xt.matmul(&r))
        .map_err(HeadError::candle("linear heads: X^T . R"))?;
    Ok((part, download::<T>(&g, "linear heads: download X^T . R")?))
}

#[cfg(test)]
mod tests;
