//! Stage 1 (images): bytes -> RGB pixels -> the backbone's square input.
//!
//! Preprocessing v2 ([`prepare`]): JPEGs are decoded at reduced DCT scale
//! (`super::jpeg`), other formats (PNG, WebP, GIF, BMP, TIFF) by `image` at
//! full size; every decode is checked against a per-image pixel budget
//! before any pixel buffer is allocated. Alpha is composited on white,
//! grayscale expanded to RGB, then `super::resize` makes the square on 8-bit
//! pixels and writes `[3, size, size]` f32 (0..=255), applying the EXIF
//! orientation. Each option that changes the pixels is in
//! [`DecodeOptions::cache_tag`], part of the feature cache key.

use std::io::Read;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

use super::jpeg::{decode_jpeg, is_jpeg};
use super::orient::Orientation;
pub use super::raster::{gray_to_rgb, DecodeError, DecodeOptions, Decoded, PREPROCESSING_VERSION};

/// Reads a file, refusing one larger than any image within the budget.
pub fn read_image_file(path: &Path, opts: &DecodeOptions) -> Result<Vec<u8>, DecodeError> {
    let file = std::fs::File::open(path)?;
    let limit = opts.max_file_bytes();
    let bytes = file.metadata()?.len();
    if bytes > limit {
        return Err(DecodeError::FileTooLarge {
            bytes,
            limit,
            max_pixels: opts.max_pixels,
        });
    }
    let mut buf = Vec::with_capacity(bytes as usize);
    // `take`: a file that grows while read stays within the limit.
    file.take(limit).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Decodes encoded bytes (format from the content, not the file name) for
/// an input of side `size`: JPEGs at reduced scale, others at full size.
pub fn decode(bytes: &[u8], size: usize, opts: &DecodeOptions) -> Result<Decoded, DecodeError> {
    if is_jpeg(bytes) {
        match decode_jpeg(bytes, size, opts) {
            Ok(Some(d)) => return Ok(d),
            Ok(None) => {}
            // A JPEG the scaled decoder rejects may still be one `image`
            // reads (it is more lenient with damaged streams).
            Err(DecodeError::Jpeg(e)) => {
                return decode_generic(bytes, opts).map_err(|_| DecodeError::Jpeg(e))
            }
            Err(e) => return Err(e),
        }
    }
    decode_generic(bytes, opts)
}

/// Decodes and resizes: the backbone input `[3, size, size]`, 0..=255.
pub fn prepare(bytes: &[u8], size: usize, opts: &DecodeOptions) -> Result<Vec<f32>, DecodeError> {
    let d = decode(bytes, size, opts)?;
    super::resize::to_input(&d.rgb, size, opts.resize, opts.filter, d.orientation)
}

/// Full-size decode by `image`, after checking the header's size against
/// the budget (so a decompression bomb allocates nothing).
fn decode_generic(bytes: &[u8], opts: &DecodeOptions) -> Result<Decoded, DecodeError> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = Limits::default();
    // Worst case 16-bit RGBA, 8 bytes a pixel, for the whole budget.
    limits.max_alloc = Some(opts.max_pixels.saturating_mul(8).max(64 << 20));
    reader.limits(limits);
    let mut dec = reader.into_decoder()?;
    let (w, h) = dec.dimensions();
    let (w, h) = (w as usize, h as usize);
    if w == 0 || h == 0 {
        return Err(DecodeError::Empty);
    }
    let held = w as u64 * h as u64;
    if held > opts.max_pixels {
        return Err(DecodeError::TooLarge {
            width: w,
            height: h,
            held,
            max_pixels: opts.max_pixels,
            why: "not a JPEG, decoded at full size",
        });
    }
    let orientation = if opts.exif_orientation {
        dec.orientation().unwrap_or(Orientation::NoTransforms)
    } else {
        Orientation::NoTransforms
    };
    let img = DynamicImage::from_decoder(dec)?;
    Ok(Decoded {
        rgb: flatten_on_white(img),
        orientation,
        stored: (w, h),
        denom: 1,
    })
}

/// Full-size decode to 8-bit RGB (alpha on white), within the default budget.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    Ok(decode_generic(bytes, &DecodeOptions::default())?.rgb)
}

/// Alpha-composites on white and converts to 8-bit RGB.
pub fn flatten_on_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as u32;
        for c in 0..3 {
            // round(v * a / 255 + 255 * (255 - a) / 255)
            o[c] = ((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
