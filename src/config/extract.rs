//! Config, checked layer for `[extract]`: batch size, decode threads and the
//! image preprocessing (resize geometry and filter, JPEG DCT scaling, EXIF
//! orientation, the per-image pixel budget). Every preprocessing choice that
//! changes the pixels is part of the feature cache key
//! ([`crate::images::decode::DecodeOptions::cache_tag`]).

use super::choice::choice;
use super::raw::RawExtract;
use super::{invalid, positive, ConfigError};
pub use crate::features::params::ExtractParams;
pub use crate::images::params::{ResizeFilter, ResizeMode, DEFAULT_MAX_PIXELS};

/// Checks `[extract]` and fills in defaults (`cuda`: the run is on a GPU).
pub fn resolve_extract(e: RawExtract, cuda: bool) -> Result<ExtractParams, ConfigError> {
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
    let dtype = super::choice::choice(
        "extract.dtype",
        e.dtype.as_deref(),
        crate::features::feature_set::FeatureDtype::F32,
        None,
    )?;
    Ok(ExtractParams {
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
