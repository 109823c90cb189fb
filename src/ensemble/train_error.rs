//! Ensemble stage, what can stop training: bad splits, a failed job (its
//! head error or panic kept as the source), lanes that cannot be opened (the
//! device error kept, so a CPU build asked for CUDA still exits 2), a failed
//! calibration, a stop request, or an option a streamed run cannot honour.

use super::plan::FailedJob;
use crate::calibration::CalibrationError;
use crate::device::DeviceError;
use crate::heads::HeadError;
use crate::scheduler::lane::LaneError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("class `{class}` has no {split} examples: every class needs at least one in train and in the calibration split")]
    MissingClass { class: String, split: String },
    #[error("train and {split} features disagree: {detail}")]
    Mismatch { split: String, detail: String },
    #[error(transparent)]
    Job(Box<FailedJob>),
    #[error("scoring the candidates on validation")]
    Selection(#[source] Box<HeadError>),
    #[error("{head} cannot be applied to these rows")]
    Logits {
        head: String,
        #[source]
        source: Box<HeadError>,
    },
    #[error("{head}: calibration failed")]
    Calibration {
        head: String,
        #[source]
        source: CalibrationError,
    },
    #[error("{head}: tensor operation failed")]
    Candle {
        head: String,
        #[source]
        source: Box<candle_core::Error>,
    },
    #[error("training was interrupted before all heads finished")]
    Interrupted,
    #[error("{field} = {value} cannot be used while `ovr train` streams its rows (train.block_rows is set): {reason}")]
    NotStreamable {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("cannot open the training lanes' devices")]
    Device(#[from] DeviceError),
    #[error("cannot set up a training lane")]
    Lane(#[from] LaneError),
}

impl From<FailedJob> for TrainError {
    fn from(e: FailedJob) -> TrainError {
        TrainError::Job(Box::new(e))
    }
}

impl TrainError {
    /// A usage problem (the device named cannot exist in this build, or an
    /// option a streamed run cannot honour).
    pub fn is_usage(&self) -> bool {
        matches!(self, TrainError::Device(d) if d.is_usage())
            || matches!(self, TrainError::NotStreamable { .. })
    }
}
