//! Stage 1 (images): JPEG decoding at reduced DCT scale (1/2, 1/4), the
//! photo fast path. An 8x8 block's reduced inverse DCT gives a 4x4 or 2x2
//! block directly, so a 12 MP photo is decoded at 1000x750 without ever
//! holding its 12 M pixels.
//!
//! Scale rule ([`dct_scale`]): the largest reduction, at most 1/4, whose
//! result is still at least `2 x size` on both sides (the resize then
//! downsamples by 2x or more, with its antialiasing filter doing the rest).
//! Up to 1/4 this is what Pillow's `draft("RGB", (2*size, 2*size))` does.
//! Baseline Huffman JPEGs (1 or 3 components, the usual samplings) take
//! ovr's own scaled decoder (`headers` -> `scan` -> `colour`), which skips
//! the coefficients the reduced transform never reads; everything else
//! (progressive, arithmetic, 12-bit, CMYK, a damaged stream) goes to
//! jpeg-decoder at the same scale, as do full-size (1/1) decodes.
//!
//! 1/8 is never used: jpeg-decoder 0.3's 1x1 inverse DCT truncates instead
//! of rounding, which shifts red and blue by about -1 level (measured
//! against a full decode, box-averaged), enough to move Lite0 features by
//! 6 % (relative L2) on smooth photos; and as entropy decoding is most of
//! the time, 1/8 would only be about 10 % faster than 1/4.

mod bits;
mod colour;
mod error;
mod headers;
mod scan;
#[cfg(test)]
mod tests;

use image::RgbImage;
use jpeg_decoder::{CodingProcess, Decoder, PixelFormat};

use headers::Parsed;

use super::orient::{self, Orientation};
use super::raster::{DecodeError, DecodeOptions, Decoded};

/// How much larger than the input side the decoded image must stay.
pub const SAFETY_FACTOR: usize = 2;

/// True when the bytes start like a JPEG (SOI marker).
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Side after decoding at `1/denom`: `ceil(side / denom)`, as libjpeg does.
pub fn scaled(side: usize, denom: usize) -> usize {
    side.div_ceil(denom)
}

/// Largest reduction used (see the module docs for why not 8).
pub const MAX_DENOM: usize = 4;

/// The largest reduction `denom` in {4, 2, 1} such that both scaled sides
/// are at least `SAFETY_FACTOR * size`.
pub fn dct_scale(width: usize, height: usize, size: usize) -> usize {
    let need = SAFETY_FACTOR * size;
    [4, 2]
        .into_iter()
        .find(|&d| scaled(width, d) >= need && scaled(height, d) >= need)
        .unwrap_or(1)
}

/// Decodes a JPEG for an input of `size`, at reduced scale when
/// `opts.jpeg_dct_scaling`. `Ok(None)`: a pixel format this path does not
/// handle (CMYK, 16-bit), to be decoded by the generic path.
pub fn decode_jpeg(
    bytes: &[u8],
    size: usize,
    opts: &DecodeOptions,
) -> Result<Option<Decoded>, DecodeError> {
    if opts.jpeg_dct_scaling {
        if let Some(d) = decode_scaled(bytes, size, opts)? {
            return Ok(Some(d));
        }
    }
    let mut d = Decoder::new(std::io::Cursor::new(bytes));
    d.read_info()?;
    let info = d.info().ok_or(DecodeError::Empty)?;
    if !matches!(info.pixel_format, PixelFormat::RGB24 | PixelFormat::L8) {
        return Ok(None);
    }
    let (w, h) = (info.width as usize, info.height as usize);
    if w == 0 || h == 0 {
        return Err(DecodeError::Empty);
    }
    let denom = if opts.jpeg_dct_scaling {
        dct_scale(w, h, size)
    } else {
        1
    };
    let (sw, sh) = (scaled(w, denom), scaled(h, denom));
    // A progressive JPEG keeps every DCT coefficient of the full image until
    // its last scan: its memory is that of the full size, whatever the scale.
    if info.coding_process == CodingProcess::DctProgressive {
        within_budget(
            (w, h),
            (w, h),
            "progressive JPEG, decoded at full size",
            opts,
        )?;
    } else {
        within_budget((w, h), (sw, sh), SCALED, opts)?;
    }
    // Second guard on the output buffer (3 bytes a pixel).
    d.set_max_decoding_buffer_size((opts.max_pixels as usize).saturating_mul(3));
    if denom > 1 {
        let (gw, gh) = d.scale(sw as u16, sh as u16)?;
        if (gw as usize, gh as usize) != (sw, sh) {
            return Err(DecodeError::Pipeline(format!(
                "JPEG scaled to {gw}x{gh}, expected {sw}x{sh}"
            )));
        }
    }
    let px = d.decode()?;
    let orientation = orientation(d.exif_data(), opts);
    let rgb = match info.pixel_format {
        PixelFormat::L8 => super::raster::gray_to_rgb(&px, sw, sh)?,
        _ => RgbImage::from_raw(sw as u32, sh as u32, px).ok_or(DecodeError::BadRaw {
            width: sw,
            height: sh,
        })?,
    };
    Ok(Some(Decoded {
        rgb,
        orientation,
        stored: (w, h),
        denom,
    }))
}

/// The fast path: `Ok(None)` when it does not apply (not baseline, a
/// layout it leaves to jpeg-decoder, no reduction) or the stream is one it
/// cannot read, so that jpeg-decoder gives the verdict.
fn decode_scaled(
    bytes: &[u8],
    size: usize,
    opts: &DecodeOptions,
) -> Result<Option<Decoded>, DecodeError> {
    let Ok(Parsed::Frame(f)) = headers::parse(bytes) else {
        return Ok(None);
    };
    let denom = dct_scale(f.width, f.height, size);
    if denom == 1 {
        return Ok(None);
    }
    let out = (scaled(f.width, denom), scaled(f.height, denom));
    within_budget((f.width, f.height), out, SCALED, opts)?;
    let Some(rgb) = scaled_rgb(bytes, &f, denom, out) else {
        return Ok(None);
    };
    Ok(Some(Decoded {
        rgb,
        orientation: orientation(f.exif.as_deref(), opts),
        stored: (f.width, f.height),
        denom,
    }))
}

/// The scaled decoder's pixels (`out` = the scaled size), `None` on any
/// stream error.
fn scaled_rgb(
    bytes: &[u8],
    f: &headers::Frame,
    denom: usize,
    (sw, sh): (usize, usize),
) -> Option<RgbImage> {
    let planes = scan::decode_planes(bytes, f, denom).ok()?;
    let sampling: Vec<(usize, usize)> = f.components.iter().map(|c| (c.h, c.v)).collect();
    colour::to_rgb(&planes, &sampling, (f.h_max(), f.v_max()), sw, sh)
}

const SCALED: &str = "JPEG after DCT scaling";

/// Refuses a JPEG of `stored` size that would hold `held` pixels decoded.
fn within_budget(
    (width, height): (usize, usize),
    (hw, hh): (usize, usize),
    why: &'static str,
    opts: &DecodeOptions,
) -> Result<(), DecodeError> {
    let held = (hw * hh) as u64;
    if held > opts.max_pixels {
        return Err(DecodeError::TooLarge {
            width,
            height,
            held,
            max_pixels: opts.max_pixels,
            why,
        });
    }
    Ok(())
}

/// The EXIF orientation when `opts` applies it, else none.
fn orientation(exif: Option<&[u8]>, opts: &DecodeOptions) -> Orientation {
    if opts.exif_orientation {
        orient::from_exif(exif)
    } else {
        Orientation::NoTransforms
    }
}

#[cfg(test)]
mod scale_tests {
    use super::*;

    #[test]
    fn scale_keeps_twice_the_input_on_both_sides() {
        // 12 MP photo: 3000 / 8 = 375 < 448, 3000 / 4 = 750 >= 448.
        assert_eq!(dct_scale(4000, 3000, 224), 4);
        assert_eq!(dct_scale(3000, 4000, 224), 4, "portrait is the same");
        // 100 MP: 1/8 would do (8660 / 8 = 1083), 1/4 is the most used.
        assert_eq!(dct_scale(11547, 8660, 224), MAX_DENOM);
        assert_eq!(dct_scale(60000, 60000, 224), 4);
        // Exactly at the bound, and one pixel below it.
        assert_eq!(dct_scale(1792, 1792, 224), 4);
        assert_eq!(dct_scale(1792, 1788, 224), 2);
        assert_eq!(dct_scale(1792, 1789, 224), 4, "ceil(1789 / 4) = 448");
        assert_eq!(dct_scale(896, 896, 224), 2);
        assert_eq!(dct_scale(894, 2000, 224), 1);
        // Small images and panoramas with a short side are never reduced.
        assert_eq!(dct_scale(64, 64, 224), 1);
        assert_eq!(dct_scale(60000, 500, 224), 1);
        // The input size matters: Lite2 (260) needs 520.
        assert_eq!(dct_scale(4000, 3000, 260), 4);
        assert_eq!(dct_scale(2080, 2080, 260), 4);
        assert_eq!(dct_scale(2076, 2080, 260), 2);
    }

    #[test]
    fn scaled_sides_round_up_like_libjpeg() {
        assert_eq!(scaled(4000, 8), 500);
        assert_eq!(scaled(4001, 8), 501);
        assert_eq!(scaled(7, 8), 1);
        assert_eq!(scaled(10, 1), 10);
    }

    #[test]
    fn only_jpeg_magic_is_jpeg() {
        assert!(is_jpeg(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(!is_jpeg(b"\x89PNG\r\n"));
        assert!(!is_jpeg(&[0xFF, 0xD8]));
    }
}
