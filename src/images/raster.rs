//! Stage 1 (images), what the readers share: the decode options (and the
//! cache tag naming them), the decoded raster before resizing, the one
//! decode error type, and the grayscale expansion. `decode` (the
//! dispatcher), `jpeg` (reduced DCT scale) and `resize` (the square input)
//! all build on it; `decode` re-exports it.

use crate::util::choice::Choice;
use image::RgbImage;

use super::orient::Orientation;
use super::params::{ResizeFilter, ResizeMode, DEFAULT_MAX_PIXELS};

/// Why an image could not be used (reported with its path, never fatal).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read file")]
    Read(#[from] std::io::Error),
    #[error("not a decodable image")]
    Decode(#[from] image::ImageError),
    #[error("not a decodable JPEG")]
    Jpeg(#[from] jpeg_decoder::Error),
    #[error("image has zero size")]
    Empty,
    #[error("raw image of {width}x{height} does not fit its buffer")]
    BadRaw { width: usize, height: usize },
    #[error(
        "image of {width}x{height} ({:.1} MP) would hold {:.1} MP decoded ({why}), over the \
         budget extract.max_pixels = {max_pixels} ({:.1} MP); raise it or downscale the file",
        mp(*width as u64 * *height as u64), mp(*held), mp(*max_pixels)
    )]
    TooLarge {
        width: usize,
        height: usize,
        held: u64,
        max_pixels: u64,
        why: &'static str,
    },
    #[error(
        "file of {bytes} bytes is larger than any image within extract.max_pixels = {max_pixels} \
         could be ({limit} bytes)"
    )]
    FileTooLarge {
        bytes: u64,
        limit: u64,
        max_pixels: u64,
    },
    #[error("resize failed: {from} -> {to}")]
    Resize {
        from: String,
        to: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("decode pipeline: {0}")]
    Pipeline(String),
}

fn mp(pixels: u64) -> f64 {
    pixels as f64 / 1e6
}

/// Identifies the decode/resize method in cache keys: bump it whenever the
/// pixels a given file becomes can change (v1: full decode, f32 triangle;
/// v2: reduced-scale JPEGs by jpeg-decoder, resize on 8-bit pixels; v3:
/// reduced-scale baseline JPEGs by ovr's own decoder, whose colour
/// conversion rounds up to a level apart from jpeg-decoder's SIMD one).
pub const PREPROCESSING_VERSION: &str = "pre3";

/// Everything about decoding that the pipeline needs besides the input size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeOptions {
    pub resize: ResizeMode,
    pub filter: ResizeFilter,
    pub exif_orientation: bool,
    pub jpeg_dct_scaling: bool,
    pub max_pixels: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            resize: ResizeMode::CenterCrop,
            filter: ResizeFilter::Bilinear,
            exif_orientation: true,
            jpeg_dct_scaling: true,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

impl DecodeOptions {
    /// The preprocessing in the feature cache key, e.g.
    /// `center-crop-pre3-bilinear-dct-exif`. `max_pixels` is not in it: it
    /// only decides which images are refused, never their pixels.
    pub fn cache_tag(&self) -> String {
        format!(
            "{}-{PREPROCESSING_VERSION}-{}-{}-{}",
            self.resize.name(),
            self.filter.name(),
            if self.jpeg_dct_scaling { "dct" } else { "full" },
            if self.exif_orientation {
                "exif"
            } else {
                "noexif"
            }
        )
    }

    /// Largest file read into memory: an uncompressed 16-bit RGBA image of
    /// `max_pixels` (8 bytes a pixel) plus 16 MiB of headers and metadata.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_pixels.saturating_mul(8).saturating_add(16 << 20)
    }
}

/// A decoded image before resizing: pixels as stored (not yet oriented).
#[derive(Debug, Clone)]
pub struct Decoded {
    pub rgb: RgbImage,
    /// What the display transform is (`NoTransforms` when EXIF is off).
    pub orientation: Orientation,
    /// The file's own width and height.
    pub stored: (usize, usize),
    /// The JPEG DCT scale used: `rgb` is `1/denom` of the stored size.
    pub denom: usize,
}

/// Expands a grayscale raster (row-major) to RGB.
pub fn gray_to_rgb(pixels: &[u8], width: usize, height: usize) -> Result<RgbImage, DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::Empty);
    }
    if pixels.len() != width * height {
        return Err(DecodeError::BadRaw { width, height });
    }
    let data: Vec<u8> = pixels.iter().flat_map(|&v| [v, v, v]).collect();
    RgbImage::from_raw(width as u32, height as u32, data)
        .ok_or(DecodeError::BadRaw { width, height })
}
