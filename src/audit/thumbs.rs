//! Audit stage, the pictures of the report: an image of the dataset (a file
//! under the dataset root, or a raster of Fashion-MNIST's IDX arrays) -> a
//! small PNG thumbnail -> a base64 `data:` URI, so the audit page stays one
//! self-contained file. An image that cannot be read gets no thumbnail (the
//! page shows its path alone); nothing here fails the audit.

use std::io::Cursor;

use image::{DynamicImage, GrayImage, ImageFormat};

use crate::images::dataset::ImageSource;
use crate::images::decode::flatten_on_white;

/// Longest side of a thumbnail, pixels.
pub const THUMB_SIDE: u32 = 96;
/// Files larger than this are not read for a thumbnail.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let v = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if i <= c.len() {
                s.push(A[((v >> shift) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn png_uri(img: &DynamicImage) -> Option<String> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, ImageFormat::Png).ok()?;
    Some(format!("data:image/png;base64,{}", base64(buf.get_ref())))
}

/// The thumbnail of one image as a `data:image/png;base64,...` URI.
pub fn thumbnail(source: &ImageSource) -> Option<String> {
    let img = match source {
        ImageSource::File(path) => {
            if std::fs::metadata(path).ok()?.len() > MAX_FILE_BYTES {
                return None;
            }
            let bytes = std::fs::read(path).ok()?;
            let img = image::load_from_memory(&bytes).ok()?;
            DynamicImage::ImageRgb8(flatten_on_white(img))
        }
        ImageSource::Gray {
            pixels,
            offset,
            width,
            height,
        } => {
            let end = offset.checked_add(width.checked_mul(*height)?)?;
            let raw = pixels.get(*offset..end)?.to_vec();
            let g = GrayImage::from_raw(*width as u32, *height as u32, raw)?;
            DynamicImage::ImageLuma8(g)
        }
    };
    let (w, h) = (img.width(), img.height());
    let scaled = if w.max(h) > THUMB_SIDE {
        img.thumbnail(THUMB_SIDE, THUMB_SIDE)
    } else {
        // Small images (Fashion-MNIST's 28 px) are enlarged with whole pixels.
        let f = (THUMB_SIDE / w.max(h).max(1)).max(1);
        img.resize(w * f, h * f, image::imageops::FilterType::Nearest)
    };
    png_uri(&scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn a_gray_raster_becomes_an_enlarged_png_and_a_missing_file_none() {
        let pixels = std::sync::Arc::new((0..28 * 28).map(|i| (i % 256) as u8).collect());
        let src = ImageSource::Gray {
            pixels,
            offset: 0,
            width: 28,
            height: 28,
        };
        let uri = thumbnail(&src).expect("thumbnail");
        assert!(
            uri.starts_with("data:image/png;base64,iVBORw0KGgo"),
            "{uri:.40}"
        );
        let missing = ImageSource::File("/nonexistent/ovr-audit.png".into());
        assert_eq!(thumbnail(&missing), None);
    }
}
