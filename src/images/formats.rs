//! Stage 1 (images): which files are images. JPEG, PNG, WebP, GIF, BMP and
//! TIFF are decoded; HEIC/HEIF and AVIF are not (no well-kept pure-Rust
//! decoder: HEIC needs libheif with an HEVC decoder, AVIF's `image` support
//! needs the C dav1d library), nor camera raw (DNG); such files are listed
//! as ignored with a reason that says so.

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"];

/// Extensions of formats `ovr` does not decode (no well-kept pure-Rust
/// decoder): listed as ignored with this reason instead of a generic one.
pub const UNSUPPORTED_EXTENSIONS: [&str; 4] = ["heic", "heif", "avif", "dng"];

/// Why a file with this (lowercase) extension is ignored.
pub fn ignored_reason(ext: Option<&str>) -> String {
    match ext {
        Some(e) if UNSUPPORTED_EXTENSIONS.contains(&e) => format!(
            "{} images are not supported (convert them to JPEG or PNG)",
            e.to_ascii_uppercase()
        ),
        _ => "not an image file extension".into(),
    }
}
