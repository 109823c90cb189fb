//! Scheduler lanes: one execution context each, holding its own copy of the
//! standardized training (and validation, for MLP early stopping) matrices
//! on its device. A CPU lane is a worker thread on `Device::Cpu`
//! ([`Lane::cpu`]); a CUDA lane (cargo feature `cuda`) is built by
//! [`Lane::on_device`] on a device from `DeviceSpec::open_stream`
//! (`crate::device`), so each lane has its own stream and cuBLAS handle and
//! lanes run concurrently on one GPU. Labels stay on the host. Everything the
//! lane computes goes through the heads stage, so results do not depend on
//! the lane.

use candle_core::{Device, Tensor};

use super::BinaryColumn;
use super::{Job, JobError, Runner};
use crate::heads::{
    fit_binary_from, fit_mlp_binary, fit_mlp_softmax, fit_softmax_from, BinaryJob, ClassWeighting,
    FitOptions, HeadError, HeadParams, LinearFit,
};

/// Row-major `[n, d]` rows and their labels.
pub struct Rows<'a> {
    pub x: &'a [f32],
    pub n: usize,
    pub d: usize,
    pub labels: &'a [u32],
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
    x: Tensor,
    x_val: Tensor,
    labels_val: Vec<u32>,
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
        let t = |r: &Rows, what: &'static str| {
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
        };
        Ok(Lane {
            id,
            x: t(train, "training")?,
            x_val: t(val, "validation")?,
            labels_val: val.labels.to_vec(),
        })
    }

    pub fn device(&self) -> &Device {
        self.x.device()
    }
}

/// The columns of a fused path, step by step, each warm-started from its
/// own previous step when `warm`; fits step-major.
fn binary_path(
    x: &Tensor,
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
        let fits = fit_binary_from(x, labels, &units, &starts, opts)?;
        out.extend(fits);
    }
    Ok(out)
}

/// The softmax head along its C path (see [`binary_path`]).
#[allow(clippy::too_many_arguments)]
fn softmax_path(
    x: &Tensor,
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
        let fit = fit_softmax_from(x, labels, k, c, weighting, from, opts)?;
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
        let (x, xv, yv) = (&self.x, &self.x_val, self.labels_val.as_slice());
        let linear = |v: Vec<LinearFit>| v.into_iter().map(HeadParams::Linear).collect();
        let r = match job {
            Job::BinaryPath { columns, warm } => {
                binary_path(x, labels, columns, *warm, opts).map(linear)
            }
            Job::SoftmaxPath {
                cs,
                weighting,
                start,
                warm,
            } => {
                softmax_path(x, labels, k, cs, *weighting, start.as_ref(), *warm, opts).map(linear)
            }
            Job::MlpBinary {
                class,
                spec,
                seed,
                weighting,
            } => fit_mlp_binary(x, labels, xv, yv, *class, *weighting, spec, *seed)
                .map(|f| vec![HeadParams::Mlp(f)]),
            Job::MlpSoftmax {
                spec,
                seed,
                weighting,
            } => fit_mlp_softmax(x, labels, xv, yv, k, *weighting, spec, *seed)
                .map(|f| vec![HeadParams::Mlp(f)]),
        };
        Ok(r?)
    }
}
