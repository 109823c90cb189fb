//! Stage 1 (images): 8-bit RGB -> the backbone's square input. The resize
//! runs on 8-bit pixels with SIMD (`fast_image_resize`: AVX2 / SSE4.1 / NEON
//! picked at run time, fixed-point weights like Pillow), its crop box doing the
//! centre crop, then one pass writes the channel-first f32 input (values
//! 0..=255; the backbone normalises), applying the EXIF orientation as it goes.

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

use super::orient::{source, Orientation};
use super::params::{ResizeFilter, ResizeMode};
use super::raster::DecodeError;

thread_local! {
    /// One resizer per decoder thread: it keeps its scratch buffers.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

fn filter_type(f: ResizeFilter) -> FilterType {
    match f {
        ResizeFilter::Bicubic => FilterType::CatmullRom,
        ResizeFilter::Bilinear => FilterType::Bilinear,
    }
}

/// The source rectangle `(left, top, width, height)` that becomes the square.
pub fn crop_box(width: usize, height: usize, mode: ResizeMode) -> (f64, f64, f64, f64) {
    let (w, h) = (width as f64, height as f64);
    match mode {
        ResizeMode::Squash => (0.0, 0.0, w, h),
        ResizeMode::CenterCrop => {
            let s = w.min(h);
            ((w - s) / 2.0, (h - s) / 2.0, s, s)
        }
    }
}

/// Resizes to `size x size` (8-bit RGB, row-major).
pub fn resize_square(
    img: &RgbImage,
    size: usize,
    mode: ResizeMode,
    filter: ResizeFilter,
) -> Result<Vec<u8>, DecodeError> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(DecodeError::Empty);
    }
    if (w, h) == (size, size) {
        return Ok(img.as_raw().clone());
    }
    let resize_err = |e: Box<dyn std::error::Error + Send + Sync>| DecodeError::Resize {
        from: format!("{w}x{h}"),
        to: format!("{size}x{size}"),
        source: e,
    };
    let src = ImageRef::new(w as u32, h as u32, img.as_raw(), PixelType::U8x3)
        .map_err(|e| resize_err(Box::new(e)))?;
    let mut dst = Image::new(size as u32, size as u32, PixelType::U8x3);
    let (l, t, cw, ch) = crop_box(w, h, mode);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(filter_type(filter)))
        .crop(l, t, cw, ch);
    RESIZER
        .with(|r| r.borrow_mut().resize(&src, &mut dst, &options))
        .map_err(|e| resize_err(Box::new(e)))?;
    Ok(dst.into_vec())
}

/// Square 8-bit RGB -> `[3, size, size]` f32 in 0..=255, oriented for display.
pub fn to_planes(square: &[u8], size: usize, orientation: Orientation) -> Vec<f32> {
    let plane = size * size;
    let mut out = vec![0f32; 3 * plane];
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    if orientation == Orientation::NoTransforms {
        for (i, p) in square.chunks_exact(3).enumerate() {
            r[i] = p[0] as f32;
            g[i] = p[1] as f32;
            b[i] = p[2] as f32;
        }
        return out;
    }
    for y in 0..size {
        for x in 0..size {
            let (sx, sy) = source(orientation, x, y, size);
            let s = 3 * (sy * size + sx);
            let i = y * size + x;
            r[i] = square[s] as f32;
            g[i] = square[s + 1] as f32;
            b[i] = square[s + 2] as f32;
        }
    }
    out
}

/// Resizes and lays out the backbone input: `[3, size, size]`, 0..=255.
pub fn to_input(
    img: &RgbImage,
    size: usize,
    mode: ResizeMode,
    filter: ResizeFilter,
    orientation: Orientation,
) -> Result<Vec<f32>, DecodeError> {
    Ok(to_planes(
        &resize_square(img, size, mode, filter)?,
        size,
        orientation,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    const FILTERS: [ResizeFilter; 2] = [ResizeFilter::Bicubic, ResizeFilter::Bilinear];

    #[test]
    fn constant_image_stays_constant_and_channel_first() {
        let img = RgbImage::from_pixel(30, 50, Rgb([10, 20, 30]));
        for mode in [ResizeMode::Squash, ResizeMode::CenterCrop] {
            for f in FILTERS {
                let v = to_input(&img, 16, mode, f, Orientation::NoTransforms).unwrap();
                assert_eq!(v.len(), 3 * 256);
                for (c, want) in [10.0f32, 20.0, 30.0].iter().enumerate() {
                    assert!(
                        v[c * 256..(c + 1) * 256].iter().all(|x| x == want),
                        "{mode:?} {f:?} channel {c}"
                    );
                }
            }
        }
    }

    #[test]
    fn input_sized_images_are_copied_exactly() {
        let img = RgbImage::from_fn(8, 8, |x, y| Rgb([x as u8 * 30, y as u8 * 30, 7]));
        let v = to_input(
            &img,
            8,
            ResizeMode::CenterCrop,
            ResizeFilter::Bicubic,
            Orientation::NoTransforms,
        )
        .unwrap();
        assert_eq!(v[3 * 8 + 5], 150.0, "red of (5, 3)");
        assert_eq!(v[64 + 3 * 8 + 5], 90.0, "green of (5, 3)");
    }

    #[test]
    fn center_crop_keeps_the_middle() {
        // Left third red, middle third green, right third blue; a centre crop
        // of a 3:1 image sees only green.
        let img = RgbImage::from_fn(96, 32, |x, _| match x / 32 {
            0 => Rgb([255, 0, 0]),
            1 => Rgb([0, 255, 0]),
            _ => Rgb([0, 0, 255]),
        });
        for f in FILTERS {
            let v = to_input(
                &img,
                8,
                ResizeMode::CenterCrop,
                f,
                Orientation::NoTransforms,
            )
            .unwrap();
            let plane = 64;
            let mean = |c: usize| v[c * plane..(c + 1) * plane].iter().sum::<f32>() / 64.0;
            assert!(
                mean(1) > 200.0 && mean(0) < 30.0 && mean(2) < 30.0,
                "{f:?}: {} {} {}",
                mean(0),
                mean(1),
                mean(2)
            );
            for y in 0..8 {
                for x in 2..6 {
                    assert_eq!(v[plane + y * 8 + x], 255.0, "{f:?}: ({x}, {y}) is green");
                }
            }
            let sq = to_input(&img, 8, ResizeMode::Squash, f, Orientation::NoTransforms).unwrap();
            assert!(sq[0] > 200.0, "squash keeps the red left edge");
        }
    }

    #[test]
    fn crop_box_is_the_centred_square_of_the_short_side() {
        assert_eq!(
            crop_box(400, 300, ResizeMode::CenterCrop),
            (50.0, 0.0, 300.0, 300.0)
        );
        assert_eq!(
            crop_box(301, 400, ResizeMode::CenterCrop),
            (0.0, 49.5, 301.0, 301.0)
        );
        assert_eq!(
            crop_box(400, 300, ResizeMode::Squash),
            (0.0, 0.0, 400.0, 300.0)
        );
    }

    #[test]
    fn bicubic_and_bilinear_differ_on_detail() {
        let img = RgbImage::from_fn(64, 64, |x, y| Rgb([((x * 37 + y * 11) % 256) as u8, 0, 0]));
        let a = to_input(
            &img,
            24,
            ResizeMode::Squash,
            ResizeFilter::Bicubic,
            Orientation::NoTransforms,
        )
        .unwrap();
        let b = to_input(
            &img,
            24,
            ResizeMode::Squash,
            ResizeFilter::Bilinear,
            Orientation::NoTransforms,
        )
        .unwrap();
        assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 2.0));
    }
}
