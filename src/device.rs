//! Device selection: config (`device = "cpu" | "cuda" | "cuda:N"`) ->
//! [`DeviceSpec`] -> `candle_core::Device`, for the features stage
//! (extraction runs on [`DeviceSpec::open`]) and the scheduler (each lane
//! gets its own [`DeviceSpec::open_stream`], so CUDA lanes train concurrently
//! on separate streams). CUDA exists only in builds with the cargo feature
//! `cuda` (tests/cuda/build.sh, docs/gpu.md); everything CUDA-specific here
//! sits behind `#[cfg(feature = "cuda")]`, and a CPU build answers a CUDA
//! request with an error saying how to rebuild.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

/// Where tensors live: the CPU or one CUDA device by ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    Cuda(usize),
}

/// The spellings [`DeviceSpec::parse`] accepts, for error messages.
pub const ALLOWED: &str = "cpu, cuda (= cuda:0), cuda:N (N = 0, 1, ...)";

/// The command that makes a CUDA build.
pub const REBUILD_HINT: &str =
    "rebuild with `cargo build --release --features cuda` (see tests/cuda/build.sh)";

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{spelling}`; allowed: {ALLOWED}")]
    Unknown { spelling: String },
    #[error("device `{spec}` needs CUDA, but this `ovr` was built without it: {REBUILD_HINT}")]
    CudaNotBuilt { spec: DeviceSpec },
    /// The source is the driver's own error (only a CUDA build has that
    /// type, hence the box).
    #[error("device `{spec}`: no CUDA driver or GPU found; check `nvidia-smi`")]
    NoDriver {
        spec: DeviceSpec,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("device `{spec}` does not exist: {}", ordinals(*.count))]
    NoSuchDevice { spec: DeviceSpec, count: usize },
    #[error("cannot open device `{spec}`")]
    Open {
        spec: DeviceSpec,
        #[source]
        source: Box<candle_core::Error>,
    },
}

/// "this machine has no CUDA device" / "this machine has cuda:0 to cuda:3".
fn ordinals(count: usize) -> String {
    match count {
        0 => "this machine has no CUDA device".to_string(),
        1 => "this machine has only cuda:0".to_string(),
        n => format!("this machine has cuda:0 to cuda:{}", n - 1),
    }
}

impl DeviceError {
    /// A usage problem (exit code 2): a device spelled wrong, or CUDA asked
    /// of a build without it.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DeviceError::Unknown { .. } | DeviceError::CudaNotBuilt { .. }
        )
    }
}

impl DeviceSpec {
    /// Parses `cpu`, `cuda` (ordinal 0) or `cuda:N` (case and surrounding
    /// blanks ignored). Parsing succeeds in every build; whether CUDA can be
    /// used is [`DeviceSpec::open`]'s question.
    pub fn parse(s: &str) -> Result<DeviceSpec, DeviceError> {
        let t = s.trim().to_ascii_lowercase();
        let unknown = || DeviceError::Unknown {
            spelling: s.to_string(),
        };
        match t.as_str() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => {
                let n = t.strip_prefix("cuda:").ok_or_else(unknown)?;
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(unknown());
                }
                n.parse::<usize>()
                    .map(DeviceSpec::Cuda)
                    .map_err(|_| unknown())
            }
        }
    }

    pub fn is_cuda(&self) -> bool {
        matches!(self, DeviceSpec::Cuda(_))
    }

    /// Whether this binary was built with the `cuda` feature.
    pub fn cuda_built() -> bool {
        cfg!(feature = "cuda")
    }

    /// The device for extraction: `Device::Cpu`, or the CUDA device on its
    /// default (per-thread) stream.
    pub fn open(&self) -> Result<Device, DeviceError> {
        match *self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(ordinal) => self.open_cuda(ordinal, false),
        }
    }

    /// A device for one scheduler lane: on CUDA each call makes a new stream
    /// (with its own cuBLAS handle); tensors of two such devices do not mix
    /// without `to_device`. On the CPU, `Device::Cpu`.
    pub fn open_stream(&self) -> Result<Device, DeviceError> {
        match *self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(ordinal) => self.open_cuda(ordinal, true),
        }
    }

    /// One [`DeviceSpec::open_stream`] device per lane.
    pub fn open_lanes(&self, lanes: usize) -> Result<Vec<Device>, DeviceError> {
        (0..lanes).map(|_| self.open_stream()).collect()
    }

    #[cfg(not(feature = "cuda"))]
    fn open_cuda(&self, _ordinal: usize, _own_stream: bool) -> Result<Device, DeviceError> {
        Err(DeviceError::CudaNotBuilt { spec: *self })
    }

    #[cfg(feature = "cuda")]
    fn open_cuda(&self, ordinal: usize, own_stream: bool) -> Result<Device, DeviceError> {
        let count = cuda::device_count().map_err(|source| DeviceError::NoDriver {
            spec: *self,
            source,
        })?;
        if ordinal >= count {
            return Err(DeviceError::NoSuchDevice { spec: *self, count });
        }
        let device = if own_stream {
            Device::new_cuda_with_stream(ordinal)
        } else {
            Device::new_cuda(ordinal)
        };
        device.map_err(|source| DeviceError::Open {
            spec: *self,
            source: Box::new(source),
        })
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use candle_core::cuda_backend::cudarc::driver::CudaContext;

    /// Number of CUDA devices; `Err` when the driver cannot be initialized
    /// (no GPU, no or too old a driver, the build's stub library).
    pub fn device_count() -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
        let n = CudaContext::device_count()?;
        usize::try_from(n).map_err(|_| format!("the driver reported {n} devices").into())
    }
}

/// `(free, total)` bytes of a CUDA device's memory; `None` on the CPU or
/// when the driver cannot tell.
#[cfg(feature = "cuda")]
pub fn memory_info(device: &Device) -> Option<(usize, usize)> {
    match device {
        Device::Cuda(d) => d.cuda_stream().context().mem_get_info().ok(),
        _ => None,
    }
}

/// `(free, total)` bytes of a CUDA device's memory; always `None` in a CPU build.
#[cfg(not(feature = "cuda"))]
pub fn memory_info(_device: &Device) -> Option<(usize, usize)> {
    None
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceSpec::parse(s)
    }
}

#[cfg(test)]
mod tests;
