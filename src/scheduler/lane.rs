//! Scheduler lanes: one execution context each, holding its own copy of the
//! standardized training matrix on its device. A CPU lane is a worker
//! thread on `Device::Cpu`; a CUDA lane (cargo feature `cuda`, later) will
//! own a device made with its own stream. Everything the lane computes goes
//! through the heads stage, so results do not depend on the lane.

use candle_core::{Device, Tensor};

use super::{Job, Runner};
use crate::heads::{fit_binary, fit_softmax, ClassWeighting, FitOptions, LinearFit};

/// One execution context with its copy of the training features.
pub struct Lane {
    pub id: usize,
    x: Tensor,
    weighting: ClassWeighting,
}

impl Lane {
    /// A CPU lane over the row-major `[n, d]` standardized training matrix.
    pub fn cpu(
        id: usize,
        x: &[f32],
        n: usize,
        d: usize,
        weighting: ClassWeighting,
    ) -> Result<Lane, String> {
        let x = Tensor::from_slice(x, (n, d), &Device::Cpu).map_err(|e| e.to_string())?;
        Ok(Lane { id, x, weighting })
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
    ) -> Result<Vec<LinearFit>, String> {
        match job {
            Job::Binary(units) => {
                fit_binary(&self.x, labels, units, opts).map_err(|e| e.to_string())
            }
            Job::Softmax { c } => fit_softmax(&self.x, labels, k, *c, self.weighting, opts)
                .map(|f| vec![f])
                .map_err(|e| e.to_string()),
        }
    }
}
