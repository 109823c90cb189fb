//! Scheduler lanes: one execution context each, holding its own copy of the
//! standardized validation rows (MLP early stopping) and its training rows
//! on its device: the whole standardized matrix ([`TrainRows::Loaded`], the
//! in-memory path), or the mapped training split read block by block
//! ([`TrainRows::Streamed`], `train.block_rows`: every lane shares the map
//! and the standardizer, each block is decoded, standardized and sent to the
//! lane's device while a fit evaluates, so a lane holds one block, not N
//! rows). A CPU lane is a worker thread on `Device::Cpu` ([`Lane::cpu`]); a
//! CUDA lane (cargo feature `cuda`) is built by [`Lane::on_device`] or
//! [`Lane::streaming`] on a device from `DeviceSpec::open_stream`
//! (`crate::device`), so each lane has its own stream and cuBLAS handle and
//! lanes run concurrently on one GPU. Labels stay on the host. Everything the
//! lane computes goes through the heads stage, so results do not depend on
//! the lane.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::BinaryColumn;
use super::{Job, JobError, Runner};
use crate::features::mapped::MappedFeatures;
use crate::heads::{
    fit_binary_rows, fit_mlp_binary, fit_mlp_softmax, fit_softmax_rows, BinaryJob, ClassWeighting,
    FitOptions, HeadError, HeadParams, LinearFit, MappedRows, RowBlocks, Standardizer, TensorRows,
};

/// Row-major `[n, d]` rows and their labels.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub x: &'a [f32],
    pub n: usize,
    pub d: usize,
    pub labels: &'a [u32],
}

/// The mapped training split and its training statistics, shared by every
/// lane of a streamed run; blocks of `block_rows` rows (rounded up to whole
/// 256-row chunks).
#[derive(Debug, Clone)]
pub struct Streamed {
    pub map: Arc<MappedFeatures>,
    pub standardizer: Arc<Standardizer>,
    pub block_rows: usize,
}

/// Where the lanes' training rows come from.
pub enum TrainRows<'a> {
    /// Standardized rows in memory, uploaded whole to each lane's device.
    Loaded(Rows<'a>),
    /// The mapped split, read block by block (`train.block_rows`).
    Streamed(Streamed),
}

/// A lane's training rows.
enum LaneRows {
    Tensor(Tensor),
    Streamed(Streamed),
}

/// Why a lane could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    #[error("lane {lane}: {what} rows hold {values} values, expected {n} x {d}")]
    Shape {
        lane: usize,
        what: &'static str,
        values: usize,
        n: usize,
        d: usize,
    },
    #[error("lane {lane}: uploading the {what} rows to {device}")]
    Upload {
        lane: usize,
        what: &'static str,
        device: String,
        #[source]
        source: Box<candle_core::Error>,
    },
}

/// One execution context with its copy of the features.
pub struct Lane {
    pub id: usize,
    x: LaneRows,
    x_val: Tensor,
    labels_val: Vec<u32>,
}

/// Uploads `r` to `device` as a `[n, d]` tensor.
fn upload(id: usize, device: &Device, r: &Rows, what: &'static str) -> Result<Tensor, LaneError> {
    if r.x.len() != r.n * r.d {
        return Err(LaneError::Shape {
            lane: id,
            what,
            values: r.x.len(),
            n: r.n,
            d: r.d,
        });
    }
    Tensor::from_slice(r.x, (r.n, r.d), device).map_err(|source| LaneError::Upload {
        lane: id,
        what,
        device: format!("{device:?}"),
        source: Box::new(source),
    })
}

impl Lane {
    /// A CPU lane over standardized training and validation rows.
    pub fn cpu(id: usize, train: &Rows, val: &Rows) -> Result<Lane, LaneError> {
        Lane::on_device(id, &Device::Cpu, train, val)
    }

    /// A lane whose copies of the training and validation matrices are
    /// uploaded to `device` (for CUDA, one device per lane made with its own
    /// stream, see `crate::device::DeviceSpec::open_stream`).
    pub fn on_device(
        id: usize,
        device: &Device,
        train: &Rows,
        val: &Rows,
    ) -> Result<Lane, LaneError> {
        Lane::with_rows(id, device, &TrainRows::Loaded(*train), val)
    }

    /// A lane that streams its training rows from the mapped split (blocks
    /// go to `device`); its validation rows are uploaded whole.
    pub fn streaming(
        id: usize,
        device: &Device,
        train: &Streamed,
        val: &Rows,
    ) -> Result<Lane, LaneError> {
        Lane::with_rows(id, device, &TrainRows::Streamed(train.clone()), val)
    }

    /// A lane over either kind of training rows.
    pub fn with_rows(
        id: usize,
        device: &Device,
        train: &TrainRows,
        val: &Rows,
    ) -> Result<Lane, LaneError> {
        let x = match train {
            TrainRows::Loaded(r) => LaneRows::Tensor(upload(id, device, r, "training")?),
            TrainRows::Streamed(s) => LaneRows::Streamed(s.clone()),
        };
        Ok(Lane {
            id,
            x,
            x_val: upload(id, device, val, "validation")?,
            labels_val: val.labels.to_vec(),
        })
    }

    pub fn device(&self) -> &Device {
        self.x_val.device()
    }

    /// Runs `f` on this lane's training rows as [`RowBlocks`].
    fn rows<R>(&self, f: impl FnOnce(&dyn RowBlocks) -> R) -> Result<R, HeadError> {
        Ok(match &self.x {
            LaneRows::Tensor(x) => f(&TensorRows::new(x)?),
            LaneRows::Streamed(s) => {
                let rows = MappedRows::new(&s.map, &s.standardizer, s.block_rows)?;
                f(&rows.on_device(self.device()))
            }
        })
    }

    /// The whole training matrix, for the heads that train on mini-batches
    /// of it (MLP); a streamed lane has none.
    fn matrix(&self, job: &Job) -> Result<&Tensor, JobError> {
        match &self.x {
            LaneRows::Tensor(x) => Ok(x),
            LaneRows::Streamed(_) => Err(JobError::NeedsMatrix {
                job: job.describe(),
            }),
        }
    }
}

/// The columns of a fused path, step by step, each warm-started from its
/// own previous step when `warm`; fits step-major.
fn binary_path(
    x: &dyn RowBlocks,
    labels: &[u32],
    columns: &[BinaryColumn],
    warm: bool,
    opts: &FitOptions,
) -> Result<Vec<LinearFit>, HeadError> {
    let steps = columns.first().map_or(0, |c| c.cs.len());
    if let Some(bad) = columns.iter().find(|c| c.cs.len() != steps) {
        return Err(HeadError::Shape {
            field: "columns",
            expected: format!("{steps} C values per column"),
            got: format!("{} for class {}", bad.cs.len(), bad.class),
        });
    }
    let mut out: Vec<LinearFit> = Vec::with_capacity(steps * columns.len());
    for t in 0..steps {
        let units: Vec<BinaryJob> = columns
            .iter()
            .map(|c| BinaryJob {
                class: c.class,
                c: c.cs[t],
                weighting: c.weighting,
            })
            .collect();
        let prev = t
            .checked_sub(1)
            .map(|p| &out[p * columns.len()..t * columns.len()]);
        let starts: Vec<Option<&LinearFit>> = match prev {
            Some(p) if warm => p.iter().map(Some).collect(),
            Some(_) => vec![None; columns.len()],
            None => columns.iter().map(|c| c.start.as_ref()).collect(),
        };
        let fits = fit_binary_rows(x, labels, &units, &starts, opts)?;
        out.extend(fits);
    }
    Ok(out)
}

/// The softmax head along its C path (see [`binary_path`]).
#[allow(clippy::too_many_arguments)]
fn softmax_path(
    x: &dyn RowBlocks,
    labels: &[u32],
    k: usize,
    cs: &[f64],
    weighting: ClassWeighting,
    start: Option<&LinearFit>,
    warm: bool,
    opts: &FitOptions,
) -> Result<Vec<LinearFit>, HeadError> {
    let mut out: Vec<LinearFit> = Vec::with_capacity(cs.len());
    for (t, &c) in cs.iter().enumerate() {
        let from = match t {
            0 => start,
            _ if warm => out.last(),
            _ => None,
        };
        let fit = fit_softmax_rows(x, labels, k, c, weighting, from, opts)?;
        out.push(fit);
    }
    Ok(out)
}

impl Runner for Lane {
    /// Trains the heads of one job on this lane.
    fn run(
        &self,
        job: &Job,
        labels: &[u32],
        k: usize,
        opts: &FitOptions,
    ) -> Result<Vec<HeadParams>, JobError> {
        let (xv, yv) = (&self.x_val, self.labels_val.as_slice());
        let linear = |v: Vec<LinearFit>| v.into_iter().map(HeadParams::Linear).collect();
        let r = match job {
            Job::BinaryPath { columns, warm } => self
                .rows(|x| binary_path(x, labels, columns, *warm, opts))?
                .map(linear),
            Job::SoftmaxPath {
                cs,
                weighting,
                start,
                warm,
            } => self
                .rows(|x| softmax_path(x, labels, k, cs, *weighting, start.as_ref(), *warm, opts))?
                .map(linear),
            Job::MlpBinary {
                class,
                spec,
                seed,
                weighting,
            } => fit_mlp_binary(
                self.matrix(job)?,
                labels,
                xv,
                yv,
                *class,
                *weighting,
                spec,
                *seed,
            )
            .map(|f| vec![HeadParams::Mlp(f)]),
            Job::MlpSoftmax {
                spec,
                seed,
                weighting,
            } => fit_mlp_softmax(
                self.matrix(job)?,
                labels,
                xv,
                yv,
                k,
                *weighting,
                spec,
                *seed,
            )
            .map(|f| vec![HeadParams::Mlp(f)]),
        };
        Ok(r?)
    }
}
