//! The scaled decoder against jpeg-decoder 0.3 at the same scale (the
//! reference: `tests/reference/make_jpeg_fixtures.py` makes the files),
//! the layouts it leaves to jpeg-decoder, and damaged streams.

use std::path::PathBuf;

use jpeg_decoder::{Decoder, PixelFormat};

use super::headers::{self, Parsed};
use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jpeg")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const DECODED: [&str; 8] = [
    "gray-75x61.jpg",
    "444-64x48.jpg",
    "422-113x70.jpg",
    "420-75x61.jpg",
    "420-restart-200x136.jpg",
    "444-restart-rows-97x65.jpg",
    "420-optimized-q100-90x90.jpg",
    "gray-optimized-41x200.jpg",
];

/// An input size for which the scale rule picks `denom`.
fn size_for(w: usize, h: usize, denom: usize) -> usize {
    (1..w.min(h))
        .find(|&s| dct_scale(w, h, s) == denom)
        .unwrap_or_else(|| panic!("{w}x{h} has no size giving 1/{denom}"))
}

/// jpeg-decoder's RGB at `1/denom`.
fn reference(bytes: &[u8], denom: usize) -> RgbImage {
    let mut d = Decoder::new(bytes);
    d.read_info().unwrap();
    let info = d.info().unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let (sw, sh) = (scaled(w, denom), scaled(h, denom));
    assert_eq!(
        d.scale(sw as u16, sh as u16).unwrap(),
        (sw as u16, sh as u16)
    );
    let px = d.decode().unwrap();
    match info.pixel_format {
        PixelFormat::L8 => crate::images::raster::gray_to_rgb(&px, sw, sh).unwrap(),
        _ => RgbImage::from_raw(sw as u32, sh as u32, px).unwrap(),
    }
}

fn frame(bytes: &[u8]) -> Box<headers::Frame> {
    match headers::parse(bytes).unwrap() {
        Parsed::Frame(f) => f,
        Parsed::Unsupported => panic!("left to jpeg-decoder"),
    }
}

#[test]
fn every_layout_matches_jpeg_decoder_at_both_scales() {
    for name in DECODED {
        let bytes = fixture(name);
        let f = frame(&bytes);
        for denom in [2, 4] {
            let size = size_for(f.width, f.height, denom);
            let ours = decode_scaled(&bytes, size, &DecodeOptions::default())
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: the fast path declined"));
            assert_eq!(ours.denom, denom, "{name}");
            let want = reference(&bytes, denom);
            assert_eq!(ours.rgb.dimensions(), want.dimensions(), "{name} 1/{denom}");
            let diffs: Vec<u8> = ours
                .rgb
                .as_raw()
                .iter()
                .zip(want.as_raw())
                .map(|(&a, &b)| a.abs_diff(b))
                .collect();
            let max = diffs.iter().copied().max().unwrap();
            let off = diffs.iter().filter(|&&d| d > 0).count() as f64 / diffs.len() as f64;
            if f.components.len() == 1 {
                // No colour conversion: the reduced transform is exact.
                assert_eq!(max, 0, "{name} 1/{denom}");
            } else {
                // jpeg-decoder converts colour in 16-bit SIMD where it can,
                // this path in 20-bit fixed point: a level at most apart.
                assert!(max <= 1, "{name} 1/{denom}: max {max}");
                assert!(off < 0.2, "{name} 1/{denom}: {off} of the values differ");
            }
        }
    }
}

#[test]
fn the_fixtures_cover_restarts_and_long_codes() {
    let restarts = frame(&fixture("420-restart-200x136.jpg"));
    assert!(restarts.restart_interval > 0);
    assert!(frame(&fixture("444-restart-rows-97x65.jpg")).restart_interval > 0);
    let opt = frame(&fixture("420-optimized-q100-90x90.jpg"));
    let longest = opt.ac.iter().flatten().map(|t| t.longest()).max().unwrap();
    assert!(
        longest > 9,
        "no code past the first-level lookup: {longest}"
    );
    let layouts: Vec<Vec<(usize, usize)>> = DECODED
        .iter()
        .map(|n| {
            frame(&fixture(n))
                .components
                .iter()
                .map(|c| (c.h, c.v))
                .collect()
        })
        .collect();
    for want in [
        vec![(1, 1)],
        vec![(1, 1); 3],
        vec![(2, 1), (1, 1), (1, 1)],
        vec![(2, 2), (1, 1), (1, 1)],
    ] {
        assert!(layouts.contains(&want), "{want:?}");
    }
}

#[test]
fn other_codings_and_colour_spaces_are_left_to_jpeg_decoder() {
    for name in [
        "fallback-progressive-64x64.jpg",
        "fallback-rgb-64x64.jpg",
        "fallback-cmyk-64x64.jpg",
    ] {
        let bytes = fixture(name);
        assert!(
            matches!(headers::parse(&bytes), Ok(Parsed::Unsupported)),
            "{name}"
        );
        assert!(decode_scaled(&bytes, 8, &DecodeOptions::default())
            .unwrap()
            .is_none());
    }
    // 4:4:0 (luma 1x2): the 4:4:4 file with its luma sampling byte
    // rewritten in the SOF0 segment (FF C0, length, precision, height,
    // width, count, then id and sampling of the first component).
    let mut b = fixture("444-64x48.jpg");
    let sof = b.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    assert_eq!(b[sof + 11], 0x11);
    b[sof + 11] = 0x12;
    assert!(
        matches!(headers::parse(&b), Ok(Parsed::Unsupported)),
        "4:4:0"
    );
    // jpeg-decoder still decodes the progressive one at reduced scale.
    let d = decode_jpeg(
        &fixture("fallback-progressive-64x64.jpg"),
        8,
        &DecodeOptions::default(),
    );
    assert_eq!(d.unwrap().unwrap().denom, 4);
}

#[test]
fn a_full_size_decode_stays_with_jpeg_decoder() {
    let bytes = fixture("420-75x61.jpg");
    assert!(decode_scaled(&bytes, 224, &DecodeOptions::default())
        .unwrap()
        .is_none());
    let off = DecodeOptions {
        jpeg_dct_scaling: false,
        ..DecodeOptions::default()
    };
    let d = decode_jpeg(&bytes, 8, &off).unwrap().unwrap();
    assert_eq!((d.denom, d.rgb.width()), (1, 75));
}

#[test]
fn a_truncated_scan_is_declined_and_damage_never_panics() {
    let bytes = fixture("420-restart-200x136.jpg");
    let f = frame(&bytes);
    let cut = &bytes[..f.scan_start + (bytes.len() - f.scan_start) / 2];
    assert!(scaled_rgb(cut, &f, 4, (50, 34)).is_none(), "half a scan");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..4 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = f.scan_start + (rng as usize) % (b.len() - f.scan_start);
            b[i] ^= (rng >> 40) as u8 | 1;
        }
        let _ = decode_scaled(&b, 16, &DecodeOptions::default());
    }
}

#[test]
fn the_budget_is_checked_before_any_plane_is_allocated() {
    let bytes = fixture("420-restart-200x136.jpg");
    let tight = DecodeOptions {
        max_pixels: 50 * 34 - 1,
        ..DecodeOptions::default()
    };
    // 200x136 at 1/4 is 50x34.
    let e = decode_scaled(&bytes, 16, &tight).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { held: 1700, .. }), "{e}");
}

#[test]
fn exif_orientation_is_read_by_the_fast_path() {
    let img = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let bytes = crate::images::decode::tests::jpeg_with_exif(&img, Some(6));
    let d = decode_scaled(&bytes, 8, &DecodeOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(d.orientation, Orientation::Rotate90);
    let off = DecodeOptions {
        exif_orientation: false,
        ..DecodeOptions::default()
    };
    let d = decode_scaled(&bytes, 8, &off).unwrap().unwrap();
    assert_eq!(d.orientation, Orientation::NoTransforms);
}
