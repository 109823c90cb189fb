//! Crate-wide error type: each stage has its own `thiserror` enum with context;
//! this one only gathers them so commands can use `?` across stages.
//!
//! Convention (as ripgrep and anyhow): an error's `Display` is its own layer's
//! context only; the error it wraps is reached through `source()`, never also
//! written into the text. `main` prints the chain, one cause a line;
//! [`crate::util::chain`] joins it into one line where an error is reported
//! as text (a skipped image, a quarantined shard).

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Asset(#[from] crate::assets::cache::AssetError),
    #[error(transparent)]
    Weights(#[from] crate::assets::weights::WeightsError),
    #[error(transparent)]
    Dataset(#[from] crate::images::OpenDatasetError),
    #[error(transparent)]
    Backbone(#[from] crate::features::backbone::BackboneError),
    #[error(transparent)]
    Extract(#[from] crate::features::extract::ExtractError),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Variant(#[from] crate::features::variant::VariantError),
    #[error(transparent)]
    Head(#[from] crate::heads::HeadError),
    #[error(transparent)]
    Metric(#[from] crate::metrics::MetricError),
    #[error(transparent)]
    Calibration(#[from] crate::calibration::CalibrationError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("cannot write {what} as JSON")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Ensemble(#[from] crate::ensemble::EnsembleError),
    #[error(transparent)]
    Train(#[from] crate::ensemble::build::TrainError),
    #[error(transparent)]
    Curves(#[from] crate::curves::CurvesError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error("cannot read image {path}")]
    Image {
        path: std::path::PathBuf,
        #[source]
        source: Box<ImageError>,
    },
    #[error("cannot read {path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`ovr {command}` is not implemented yet ({issue})")]
    NotImplemented {
        command: &'static str,
        issue: &'static str,
    },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Stdout(#[from] crate::output::StdoutError),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error(transparent)]
    Study(#[from] crate::study::StudyError),
}

/// Why one image given on the command line could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Decode(#[from] crate::images::decode::DecodeError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl Error {
    /// The reader of stdout went away (`ovr score | head`): the run ends
    /// quietly with exit code 0.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Stdout(e) if e.is_broken_pipe())
    }

    /// Process exit code: 2 for usage/config problems, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => 2,
            Error::Device(e) if e.is_usage() => 2,
            Error::Train(e) if e.is_usage() => 2,
            _ => 1,
        }
    }
}
