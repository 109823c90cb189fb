//! Config, checked layer for `[extract]`: batch size, decode threads and the
//! image preprocessing (resize geometry and filter, JPEG DCT scaling, EXIF
//! orientation, the per-image pixel budget). Every preprocessing choice that
//! changes the pixels is part of the feature cache key
//! ([`crate::images::decode::DecodeOptions::cache_tag`]).

use super::choice::{choice, choice_serde, Choice};
use super::raw::RawExtract;
use super::{invalid, positive, ConfigError};

/// How an image is brought to the backbone's square input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeMode {
    /// Shorter side to the input size, then a centred square crop.
    CenterCrop,
    /// Both sides to the input size (aspect ratio not kept).
    Squash,
}

impl Choice for ResizeMode {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("center-crop", ResizeMode::CenterCrop),
        ("squash", ResizeMode::Squash),
    ];
    const UNKNOWN: &'static str = "unknown resize mode";
}
choice_serde!(ResizeMode);

impl ResizeMode {
    pub fn as_str(self) -> &'static str {
        self.name()
    }
}

/// The convolution filter of the resize (antialiased when downscaling: the
/// kernel is widened by the scale factor, as Pillow does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeFilter {
    /// Catmull-Rom cubic (a = -0.5, Pillow's bicubic): timm's choice for
    /// these weights, sharper than an antialiased triangle when shrinking
    /// photos (TensorFlow's resize, used to evaluate the weights, does not
    /// antialias).
    Bicubic,
    /// Triangle (bilinear), the default: exactly TensorFlow's bilinear
    /// resize when enlarging (emoji, Fashion-MNIST); `ovr`'s filter before
    /// preprocessing v2.
    Bilinear,
}

impl Choice for ResizeFilter {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("bicubic", ResizeFilter::Bicubic),
        ("bilinear", ResizeFilter::Bilinear),
    ];
    const UNKNOWN: &'static str = "unknown resize filter";
}
choice_serde!(ResizeFilter);

impl ResizeFilter {
    pub fn as_str(self) -> &'static str {
        self.name()
    }
}

/// Default per-image pixel budget: 40 MP (decoded pixels held at once).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ExtractConfig {
    pub batch_size: usize,
    /// Decoder threads. Default: the number of cores, also the most that
    /// are started; decoders and the network share one pool of core tokens,
    /// so running threads never exceed the cores (see `features::cpu_gate`).
    pub decode_threads: usize,
    pub resize: ResizeMode,
    pub filter: ResizeFilter,
    /// Apply the EXIF orientation tag (JPEG, PNG, WebP, TIFF) before resizing.
    pub exif_orientation: bool,
    /// Decode JPEGs at 1/2 or 1/4 scale in the DCT domain when the
    /// result is still at least twice the input size on both sides.
    pub jpeg_dct_scaling: bool,
    /// Largest decoded image (width x height, after any DCT scaling) an
    /// image may need; larger ones are refused and skipped.
    pub max_pixels: u64,
    /// How the per-split feature files store features: f32 (default) or
    /// f16 (half the bytes; for matrices read memory-mapped, `heads::rows`).
    pub dtype: crate::features::feature_set::FeatureDtype,
}

/// Checks `[extract]` and fills in defaults (`cuda`: the run is on a GPU).
pub fn resolve_extract(e: RawExtract, cuda: bool) -> Result<ExtractConfig, ConfigError> {
    let resize = choice(
        "extract.resize",
        e.resize.as_deref(),
        ResizeMode::CenterCrop,
        None,
    )?;
    let filter = choice(
        "extract.filter",
        e.filter.as_deref(),
        ResizeFilter::Bilinear,
        None,
    )?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let max_pixels = match e.max_pixels {
        None => DEFAULT_MAX_PIXELS,
        // 64 x 64 up to a 65535 x 65535 JPEG.
        Some(v) if (4096..=(1i64 << 32)).contains(&v) => v as u64,
        Some(v) => {
            return Err(invalid(
                "extract.max_pixels",
                v,
                "out of range",
                "an integer in 4096..=4294967296 (pixels, e.g. 40000000 for 40 MP)",
            ))
        }
    };
    let dtype = match e.dtype.as_deref().unwrap_or("f32") {
        "f32" => crate::features::feature_set::FeatureDtype::F32,
        "f16" => crate::features::feature_set::FeatureDtype::F16,
        other => {
            return Err(invalid(
                "extract.dtype",
                other,
                "unknown feature dtype",
                "f32, f16",
            ))
        }
    };
    Ok(ExtractConfig {
        // On a GPU the default batch is large enough to keep it busy.
        batch_size: positive(
            "extract.batch_size",
            e.batch_size,
            if cuda { 256 } else { 32 },
            4096,
        )?,
        decode_threads: positive("extract.decode_threads", e.decode_threads, cores, 256)?,
        resize,
        filter,
        exif_orientation: e.exif_orientation.unwrap_or(true),
        jpeg_dct_scaling: e.jpeg_dct_scaling.unwrap_or(true),
        max_pixels,
        dtype,
    })
}
