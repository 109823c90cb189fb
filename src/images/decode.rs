//! Stage 1 (images): bytes -> RGB pixels at the backbone's input size.
//! PNG alpha is composited on white, grayscale is expanded to RGB, then the
//! image is resized (antialiased bilinear, in f32) to a square `size x size`
//! and laid out channel-first (`[3, size, size]`, values 0..=255).

use image::{imageops, DynamicImage, ImageReader, Rgb32FImage, RgbImage};

use crate::config::ResizeMode;

/// Why an image could not be used (reported with its path, never fatal).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read file: {0}")]
    Read(#[from] std::io::Error),
    #[error("not a decodable image: {0}")]
    Decode(#[from] image::ImageError),
    #[error("image has zero size")]
    Empty,
    #[error("raw image of {width}x{height} does not fit its buffer")]
    BadRaw { width: usize, height: usize },
}

/// Decodes encoded bytes (format guessed from the content, not the file name).
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    let img = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()?
        .decode()?;
    if img.width() == 0 || img.height() == 0 {
        return Err(DecodeError::Empty);
    }
    Ok(flatten_on_white(img))
}

/// Alpha-composites on white and converts to 8-bit RGB.
pub fn flatten_on_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
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

/// Resizes to `size x size` and returns `[3, size, size]` channel-first f32 pixels in 0..=255.
pub fn to_input(img: &RgbImage, size: usize, mode: ResizeMode) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let f: Rgb32FImage = DynamicImage::ImageRgb8(img.clone()).to_rgb32f();
    let s = size as u32;
    let resized = match mode {
        ResizeMode::Squash => resize(&f, s, s),
        ResizeMode::CenterCrop => {
            let (nw, nh) = if w <= h {
                (
                    size,
                    ((h * size) as f64 / w as f64).round().max(size as f64) as usize,
                )
            } else {
                (
                    ((w * size) as f64 / h as f64).round().max(size as f64) as usize,
                    size,
                )
            };
            let r = resize(&f, nw as u32, nh as u32);
            let (left, top) = ((nw - size) / 2, (nh - size) / 2);
            imageops::crop_imm(&r, left as u32, top as u32, s, s).to_image()
        }
    };
    let plane = size * size;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in resized.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (p[c] * 255.0).clamp(0.0, 255.0);
        }
    }
    out
}

fn resize(img: &Rgb32FImage, w: u32, h: u32) -> Rgb32FImage {
    if img.width() == w && img.height() == h {
        return img.clone();
    }
    imageops::resize(img, w, h, imageops::FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgba, RgbaImage};

    fn png_bytes(img: DynamicImage) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, ImageFormat::Png).unwrap();
        buf.into_inner()
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
    }

    #[test]
    fn truncated_png_is_an_error() {
        let img = RgbImage::from_fn(40, 40, |x, y| image::Rgb([x as u8, y as u8, 9]));
        let bytes = png_bytes(DynamicImage::ImageRgb8(img));
        assert!(decode_rgb(&bytes[..bytes.len() / 2]).is_err());
    }

    #[test]
    fn constant_image_stays_constant_and_channel_first() {
        let img = RgbImage::from_pixel(30, 50, image::Rgb([10, 20, 30]));
        for mode in [ResizeMode::Squash, ResizeMode::CenterCrop] {
            let v = to_input(&img, 16, mode);
            assert_eq!(v.len(), 3 * 256);
            for (c, want) in [10.0f32, 20.0, 30.0].iter().enumerate() {
                assert!(
                    v[c * 256..(c + 1) * 256]
                        .iter()
                        .all(|x| (x - want).abs() < 1e-3),
                    "{mode:?} channel {c}"
                );
            }
        }
    }

    #[test]
    fn center_crop_keeps_the_middle() {
        // Left third red, middle third green, right third blue; a centre crop of
        // a 3:1 image sees only green.
        let img = RgbImage::from_fn(96, 32, |x, _| match x / 32 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        let v = to_input(&img, 8, ResizeMode::CenterCrop);
        let plane = 64;
        let mean = |c: usize| v[c * plane..(c + 1) * plane].iter().sum::<f32>() / plane as f32;
        // Only the crop's edge columns may blend with the neighbouring thirds.
        assert!(
            mean(1) > 200.0 && mean(0) < 30.0 && mean(2) < 30.0,
            "{} {} {}",
            mean(0),
            mean(1),
            mean(2)
        );
        for y in 0..8 {
            for x in 2..6 {
                assert_eq!(
                    v[plane + y * 8 + x],
                    255.0,
                    "centre pixel ({x}, {y}) is pure green"
                );
            }
        }
        let sq = to_input(&img, 8, ResizeMode::Squash);
        assert!(sq[0] > 200.0, "squash keeps the red left edge");
    }
}
