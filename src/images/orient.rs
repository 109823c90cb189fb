//! Stage 1 (images): EXIF orientation, applied while the resized square is
//! copied into the channel-first f32 input (no extra full-size buffer).
//!
//! The square input is taken from the stored (unrotated) pixels with the same
//! geometry the displayed image would get: both resize modes are symmetric
//! in the two axes (squash scales each side to the input size; centre crop
//! takes the centred square of the shorter side), so resizing the stored
//! image then rotating the square equals rotating then resizing.

pub use image::metadata::Orientation;

/// Where pixel `(x, y)` of the displayed `n x n` square comes from in the
/// stored square: `displayed(x, y) = stored(source(o, x, y, n))`.
pub fn source(o: Orientation, x: usize, y: usize, n: usize) -> (usize, usize) {
    let m = n - 1;
    match o {
        Orientation::NoTransforms => (x, y),
        Orientation::FlipHorizontal => (m - x, y),
        Orientation::FlipVertical => (x, m - y),
        Orientation::Rotate180 => (m - x, m - y),
        // Clockwise quarter turn: displayed column x is stored row m - x.
        Orientation::Rotate90 => (y, m - x),
        Orientation::Rotate270 => (m - y, x),
        // Quarter turn then a horizontal flip: a transpose.
        Orientation::Rotate90FlipH => (y, x),
        Orientation::Rotate270FlipH => (m - y, m - x),
    }
}

/// Reads the orientation from a raw EXIF chunk (starting at the TIFF
/// header); a missing or invalid tag means no transform.
pub fn from_exif(chunk: Option<&[u8]>) -> Orientation {
    chunk
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, Rgb, RgbImage};

    #[test]
    fn index_map_matches_the_image_crate_for_all_eight_orientations() {
        let n = 5;
        let img = RgbImage::from_fn(n as u32, n as u32, |x, y| Rgb([x as u8, y as u8, 0]));
        for tag in 1..=8u8 {
            let o = Orientation::from_exif(tag).unwrap();
            let mut want = DynamicImage::ImageRgb8(img.clone());
            want.apply_orientation(o);
            let want = want.to_rgb8();
            for y in 0..n {
                for x in 0..n {
                    let (sx, sy) = source(o, x, y, n);
                    assert_eq!(
                        want.get_pixel(x as u32, y as u32),
                        img.get_pixel(sx as u32, sy as u32),
                        "EXIF orientation {tag} at ({x}, {y})"
                    );
                }
            }
        }
    }

    #[test]
    fn missing_or_garbage_exif_is_no_transform() {
        assert_eq!(from_exif(None), Orientation::NoTransforms);
        assert_eq!(from_exif(Some(b"not exif")), Orientation::NoTransforms);
    }
}
