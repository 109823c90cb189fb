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

use super::{Fit, Job, Runner};
use crate::heads::{
    fit_binary, fit_mlp_binary, fit_mlp_softmax, fit_softmax, ClassWeighting, FitOptions,
};

/// Row-major `[n, d]` rows and their labels.
pub struct Rows<'a> {
    pub x: &'a [f32],
    pub n: usize,
    pub d: usize,
    pub labels: &'a [u32],
}

/// One execution context with its copy of the features.
pub struct Lane {
    pub id: usize,
    x: Tensor,
    x_val: Tensor,
    labels_val: Vec<u32>,
    weighting: ClassWeighting,
}

impl Lane {
    /// A CPU lane over standardized training and validation rows.
    pub fn cpu(
        id: usize,
        train: &Rows,
        val: &Rows,
        weighting: ClassWeighting,
    ) -> Result<Lane, String> {
        Lane::on_device(id, &Device::Cpu, train, val, weighting)
    }

    /// A lane whose copies of the training and validation matrices are
    /// uploaded to `device` (for CUDA, one device per lane made with its own
    /// stream, see `crate::device::DeviceSpec::open_stream`).
    pub fn on_device(
        id: usize,
        device: &Device,
        train: &Rows,
        val: &Rows,
        weighting: ClassWeighting,
    ) -> Result<Lane, String> {
        let t = |r: &Rows, what: &str| {
            if r.x.len() != r.n * r.d {
                return Err(format!(
                    "lane {id}: {what} rows hold {} values, expected {} x {}",
                    r.x.len(),
                    r.n,
                    r.d
                ));
            }
            Tensor::from_slice(r.x, (r.n, r.d), device)
                .map_err(|e| format!("lane {id}: uploading the {what} rows to {device:?}: {e}"))
        };
        Ok(Lane {
            id,
            x: t(train, "training")?,
            x_val: t(val, "validation")?,
            labels_val: val.labels.to_vec(),
            weighting,
        })
    }

    pub fn device(&self) -> &Device {
        self.x.device()
    }
}

impl Runner for Lane {
    /// Trains the heads of one job on this lane.
    fn run(
        &self,
        job: &Job,
        labels: &[u32],
        k: usize,
        opts: &FitOptions,
    ) -> Result<Vec<Fit>, String> {
        let (x, xv, yv, w) = (
            &self.x,
            &self.x_val,
            self.labels_val.as_slice(),
            self.weighting,
        );
        let r = match job {
            Job::Binary(units) => {
                fit_binary(x, labels, units, opts).map(|v| v.into_iter().map(Fit::Linear).collect())
            }
            Job::Softmax { c } => {
                fit_softmax(x, labels, k, *c, w, opts).map(|f| vec![Fit::Linear(f)])
            }
            Job::MlpBinary { class, spec, seed } => {
                fit_mlp_binary(x, labels, xv, yv, *class, w, spec, *seed).map(|f| vec![Fit::Mlp(f)])
            }
            Job::MlpSoftmax { spec, seed } => {
                fit_mlp_softmax(x, labels, xv, yv, k, w, spec, *seed).map(|f| vec![Fit::Mlp(f)])
            }
        };
        r.map_err(|e| e.to_string())
    }
}
