//! Tests of decoding: alpha, grayscale, corrupt input, the pixel budget and
//! decompression bombs, JPEG DCT scaling, EXIF orientation (all 8 tags, JPEG
//! and PNG) and every supported format.

use super::*;
use crate::images::params::{ResizeFilter, ResizeMode};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, ImageFormat, Rgb, Rgba, RgbaImage};

fn encoded(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

fn png_bytes(img: DynamicImage) -> Vec<u8> {
    encoded(img, ImageFormat::Png)
}

/// A minimal little-endian EXIF chunk (TIFF header + one IFD entry) with
/// the Orientation tag (0x0112, SHORT) set to `tag`.
fn exif_orientation_chunk(tag: u8) -> Vec<u8> {
    let mut v = b"II*\0".to_vec();
    v.extend_from_slice(&8u32.to_le_bytes()); // first IFD at offset 8
    v.extend_from_slice(&1u16.to_le_bytes()); // one entry
    v.extend_from_slice(&0x0112u16.to_le_bytes());
    v.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    v.extend_from_slice(&1u32.to_le_bytes()); // count
    v.extend_from_slice(&(tag as u16).to_le_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    v
}

pub(crate) fn jpeg_with_exif(img: &RgbImage, tag: Option<u8>) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut enc = JpegEncoder::new_with_quality(&mut buf, 95);
    if let Some(t) = tag {
        enc.set_exif_metadata(exif_orientation_chunk(t)).unwrap();
    }
    enc.write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        ExtendedColorType::Rgb8,
    )
    .unwrap();
    buf
}

/// The displayed image of the orientation tests: 96x64, quadrants red,
/// green (top) / blue, white (bottom).
fn quadrants() -> RgbImage {
    RgbImage::from_fn(96, 64, |x, y| match (x < 48, y < 32) {
        (true, true) => Rgb([255, 0, 0]),
        (false, true) => Rgb([0, 255, 0]),
        (true, false) => Rgb([0, 0, 255]),
        (false, false) => Rgb([255, 255, 255]),
    })
}

/// What a camera stores so that applying `o` displays `shown`.
fn stored_for(shown: &RgbImage, o: Orientation) -> RgbImage {
    let inverse = match o {
        Orientation::Rotate90 => Orientation::Rotate270,
        Orientation::Rotate270 => Orientation::Rotate90,
        other => other, // flips, 180, transpose and transverse undo themselves
    };
    let mut img = DynamicImage::ImageRgb8(shown.clone());
    img.apply_orientation(inverse);
    img.to_rgb8()
}

/// Colour of input pixel (x, y), 16x16 input.
fn px(v: &[f32], x: usize, y: usize) -> [f32; 3] {
    let i = y * 16 + x;
    [v[i], v[256 + i], v[512 + i]]
}

fn near(a: [f32; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y as f32).abs() < 40.0)
}

fn squash() -> DecodeOptions {
    DecodeOptions {
        resize: ResizeMode::Squash,
        ..DecodeOptions::default()
    }
}

#[test]
fn alpha_is_composited_on_white() {
    let mut img = RgbaImage::new(2, 1);
    img.put_pixel(0, 0, Rgba([0, 0, 0, 0])); // transparent -> white
    img.put_pixel(1, 0, Rgba([100, 0, 200, 128])); // half -> mix
    let rgb = decode_rgb(&png_bytes(DynamicImage::ImageRgba8(img))).unwrap();
    assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
    // 100*128/255 + 255*127/255 = 50.2 + 127 = 177.2 -> 177
    assert_eq!(rgb.get_pixel(1, 0).0, [177, 127, 227]);
}

#[test]
fn gray_expands_to_three_equal_channels() {
    let rgb = gray_to_rgb(&[0, 128, 255, 7], 2, 2).unwrap();
    assert_eq!(rgb.get_pixel(1, 0).0, [128, 128, 128]);
    assert!(gray_to_rgb(&[1, 2, 3], 2, 2).is_err());
}

#[test]
fn text_renamed_as_image_is_a_decode_error() {
    assert!(matches!(
        decode_rgb(b"hello, not a jpeg"),
        Err(DecodeError::Decode(_))
    ));
    assert!(prepare(b"\xFF\xD8\xFFnot really a jpeg", 16, &squash()).is_err());
}

#[test]
fn truncated_png_is_an_error() {
    let img = RgbImage::from_fn(40, 40, |x, y| Rgb([x as u8, y as u8, 9]));
    let bytes = png_bytes(DynamicImage::ImageRgb8(img));
    assert!(decode_rgb(&bytes[..bytes.len() / 2]).is_err());
}

#[test]
fn a_non_jpeg_over_the_pixel_budget_is_refused_with_its_size() {
    let bytes = png_bytes(DynamicImage::ImageRgb8(RgbImage::new(300, 200)));
    let opts = DecodeOptions {
        max_pixels: 50_000,
        ..squash()
    };
    let err = prepare(&bytes, 16, &opts).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("300x200") && msg.contains("extract.max_pixels = 50000"),
        "{msg}"
    );
    assert!(prepare(&bytes, 16, &squash()).is_ok(), "within the default");
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn a_decompression_bomb_is_refused_from_its_header() {
    // A valid 1x1 PNG whose IHDR then claims 100000 x 100000 (10 GP).
    let mut b = png_bytes(DynamicImage::ImageRgb8(RgbImage::new(1, 1)));
    b[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    b[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    let err = prepare(&b, 16, &squash()).unwrap_err();
    assert!(
        err.to_string().contains("100000x100000"),
        "refused before decoding: {err}"
    );
}

#[test]
fn jpeg_is_decoded_at_the_smallest_dct_scale_keeping_twice_the_input() {
    let img = RgbImage::from_fn(1000, 900, |x, y| {
        Rgb([(x / 4) as u8, (y / 4) as u8, ((x + y) / 8) as u8])
    });
    let bytes = jpeg_with_exif(&img, None);
    let d = decode(&bytes, 224, &DecodeOptions::default()).unwrap();
    assert_eq!(d.denom, 2, "1000x900 / 2 = 500x450 >= 448");
    assert_eq!((d.rgb.width(), d.rgb.height()), (500, 450));
    assert_eq!(d.stored, (1000, 900));
    let d = decode(&bytes, 100, &DecodeOptions::default()).unwrap();
    assert_eq!((d.denom, d.rgb.width(), d.rgb.height()), (4, 250, 225));
    let full = DecodeOptions {
        jpeg_dct_scaling: false,
        ..DecodeOptions::default()
    };
    let d = decode(&bytes, 100, &full).unwrap();
    assert_eq!((d.denom, d.rgb.width(), d.rgb.height()), (1, 1000, 900));
    // The input from the scaled decode is close to the full decode's.
    let a = prepare(&bytes, 100, &DecodeOptions::default()).unwrap();
    let b = prepare(&bytes, 100, &full).unwrap();
    let mean = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
    assert!(mean < 2.0, "mean |scaled - full| = {mean} levels");
}

#[test]
fn a_jpeg_over_the_budget_after_scaling_is_refused() {
    let img = RgbImage::new(1000, 900);
    let bytes = jpeg_with_exif(&img, None);
    let opts = DecodeOptions {
        max_pixels: 100_000,
        ..DecodeOptions::default()
    };
    // 500x450 = 225000 decoded pixels > 100000.
    let err = prepare(&bytes, 224, &opts).unwrap_err().to_string();
    assert!(err.contains("1000x900") && err.contains("DCT"), "{err}");
    // At input 100 the 1/4 decode (250x225 = 56250) fits.
    assert!(prepare(&bytes, 100, &opts).is_ok());
}

#[test]
fn all_eight_exif_orientations_are_applied_to_jpegs() {
    let shown = quadrants();
    for tag in 1..=8u8 {
        let o = Orientation::from_exif(tag).unwrap();
        let bytes = jpeg_with_exif(&stored_for(&shown, o), Some(tag));
        for mode in [ResizeMode::Squash, ResizeMode::CenterCrop] {
            let opts = DecodeOptions {
                resize: mode,
                ..DecodeOptions::default()
            };
            let v = prepare(&bytes, 16, &opts).unwrap();
            for (x, y, want) in [
                (3, 3, [255, 0, 0]),
                (12, 3, [0, 255, 0]),
                (3, 12, [0, 0, 255]),
                (12, 12, [255, 255, 255]),
            ] {
                assert!(
                    near(px(&v, x, y), want),
                    "orientation {tag} {mode:?}: ({x}, {y}) = {:?}, want {want:?}",
                    px(&v, x, y)
                );
            }
        }
    }
}

#[test]
fn exif_orientation_off_keeps_the_stored_pixels() {
    let o = Orientation::Rotate90;
    let stored = stored_for(&quadrants(), o);
    let bytes = jpeg_with_exif(&stored, Some(6));
    let opts = DecodeOptions {
        exif_orientation: false,
        ..squash()
    };
    let v = prepare(&bytes, 16, &opts).unwrap();
    // Stored = displayed turned back a quarter: its top-left is green.
    assert!(near(px(&v, 3, 3), [0, 255, 0]), "{:?}", px(&v, 3, 3));
    assert_eq!(
        decode(&bytes, 16, &opts).unwrap().orientation,
        Orientation::NoTransforms
    );
}

#[test]
fn png_exif_orientation_is_applied_too() {
    let stored = stored_for(&quadrants(), Orientation::Rotate270);
    let mut bytes = Vec::new();
    let mut enc = PngEncoder::new(&mut bytes);
    enc.set_exif_metadata(exif_orientation_chunk(8)).unwrap();
    enc.write_image(
        stored.as_raw(),
        stored.width(),
        stored.height(),
        ExtendedColorType::Rgb8,
    )
    .unwrap();
    let v = prepare(&bytes, 16, &squash()).unwrap();
    assert!(near(px(&v, 3, 3), [255, 0, 0]) && near(px(&v, 12, 12), [255, 255, 255]));
}

#[test]
fn every_supported_format_decodes() {
    let img = RgbImage::from_fn(40, 30, |x, _| {
        if x < 20 {
            Rgb([200, 30, 30])
        } else {
            Rgb([30, 30, 200])
        }
    });
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::WebP,
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::Tiff,
    ] {
        let bytes = encoded(DynamicImage::ImageRgb8(img.clone()), format);
        let v = prepare(&bytes, 16, &squash()).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert!(
            near(px(&v, 2, 8), [200, 30, 30]),
            "{format:?} left {:?}",
            px(&v, 2, 8)
        );
        assert!(
            near(px(&v, 13, 8), [30, 30, 200]),
            "{format:?} right {:?}",
            px(&v, 13, 8)
        );
    }
}

#[test]
fn the_cache_tag_names_every_pixel_changing_option() {
    let d = DecodeOptions::default();
    assert_eq!(d.cache_tag(), "center-crop-pre3-bilinear-dct-exif");
    let other = DecodeOptions {
        resize: ResizeMode::Squash,
        filter: ResizeFilter::Bilinear,
        exif_orientation: false,
        jpeg_dct_scaling: false,
        max_pixels: 1,
    };
    assert_eq!(other.cache_tag(), "squash-pre3-bilinear-full-noexif");
    let budget_only = DecodeOptions { max_pixels: 1, ..d };
    assert_eq!(budget_only.cache_tag(), d.cache_tag());
}

#[test]
fn a_file_larger_than_the_budget_allows_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.bmp");
    std::fs::write(&p, vec![0u8; 100_000]).unwrap();
    let opts = DecodeOptions {
        max_pixels: 1,
        ..DecodeOptions::default()
    };
    // 1 pixel allows 8 bytes + 16 MiB: this file is within it.
    assert!(read_image_file(&p, &opts).is_ok());
    std::fs::write(&p, vec![0u8; (16 << 20) + 100]).unwrap();
    let err = read_image_file(&p, &opts).unwrap_err().to_string();
    assert!(err.contains("16777316 bytes"), "{err}");
}
