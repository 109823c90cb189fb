//! The extraction pipeline on photo-like inputs: an image over the pixel
//! budget is named with its size and skipped while the run goes on, TIFFs
//! are read, HEIC/AVIF files are listed as unsupported, a different
//! preprocessing never reuses cached features, and the EXIF orientation
//! reaches the backbone's input.

use candle_core::{Device, Tensor};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use ovr::assets::cache::Cache;
use ovr::config::{Config, ResizeFilter, ResizeMode};
use ovr::features::backbone::{Backbone, BackboneError, Normalization};
use ovr::features::extract::extract;
use ovr::features::store::FeatureSet;
use ovr::images::dataset::scan_image_folder;
use ovr::images::decode::DecodeOptions;

use super::common::small_tree;
use super::extract::{opts, MeanColour};

fn save(img: RgbImage, path: &std::path::Path, format: ImageFormat) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    DynamicImage::ImageRgb8(img)
        .save_with_format(path, format)
        .unwrap();
}

#[test]
fn an_image_over_the_pixel_budget_is_named_with_its_size_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 4);
    save(
        RgbImage::new(400, 300),
        &root.join("circle/panorama.png"),
        ImageFormat::Png,
    );
    let ds = scan_image_folder("shapes", &root, 0.0, 0.0, 1).unwrap();
    let mut o = opts(4, 2);
    o.decode.max_pixels = 100_000; // 400 x 300 = 120000
    let cache = Cache::new(dir.path().join("cache"));
    let r = extract(&ds, &MeanColour::new(usize::MAX), &cache, &o).unwrap();
    assert_eq!(r.computed, 8, "the run goes on");
    assert_eq!(r.failed.len(), 1, "{:?}", r.failed);
    let (key, why) = &r.failed[0];
    assert!(key.ends_with("circle/panorama.png"), "{key}");
    assert!(
        why.contains("400x300") && why.contains("extract.max_pixels"),
        "{why}"
    );
}

#[test]
fn tiff_files_are_extracted_and_heic_is_listed_as_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("scans");
    for (i, ext) in ["tif", "tiff"].iter().enumerate() {
        save(
            RgbImage::from_pixel(30, 20, Rgb([200, 10 * i as u8, 40])),
            &root.join(format!("a/{i}.{ext}")),
            ImageFormat::Tiff,
        );
    }
    save(RgbImage::new(9, 9), &root.join("b/0.png"), ImageFormat::Png);
    std::fs::write(root.join("b/phone.heic"), b"ftypheic").unwrap();
    let ds = scan_image_folder("scans", &root, 0.0, 0.0, 1).unwrap();
    assert_eq!(ds.items.len(), 3);
    let (p, why) = &ds.ignored[0];
    assert!(p.ends_with("phone.heic") && why.contains("HEIC"), "{why}");
    let cache = Cache::new(dir.path().join("cache"));
    let r = extract(&ds, &MeanColour::new(usize::MAX), &cache, &opts(4, 1)).unwrap();
    assert_eq!((r.computed, r.failed.len()), (3, 0), "{:?}", r.failed);
    let set = FeatureSet::load(&r.outputs[0].1).unwrap();
    let i = set.keys.iter().position(|k| k.ends_with("0.tif")).unwrap();
    // Mean colour of a constant TIFF is its colour.
    assert_eq!(&set.features[3 * i..3 * i + 3], &[200.0, 0.0, 40.0]);
}

#[test]
fn another_preprocessing_never_reuses_cached_features() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 3);
    let ds = scan_image_folder("shapes", &root, 0.0, 0.0, 1).unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let net = MeanColour::new(usize::MAX);
    let base = opts(4, 1);
    assert_eq!(extract(&ds, &net, &cache, &base).unwrap().computed, 6);
    assert_eq!(extract(&ds, &net, &cache, &base).unwrap().reused, 6);
    let mut o = base;
    o.decode.filter = ResizeFilter::Bicubic;
    assert_eq!(extract(&ds, &net, &cache, &o).unwrap().computed, 6);
    let mut o = base;
    o.decode.exif_orientation = false;
    assert_eq!(extract(&ds, &net, &cache, &o).unwrap().computed, 6);
    let mut o = base;
    o.decode.jpeg_dct_scaling = false;
    assert_eq!(extract(&ds, &net, &cache, &o).unwrap().computed, 6);
    let mut o = base;
    o.decode.max_pixels = 10_000;
    assert_eq!(
        extract(&ds, &net, &cache, &o).unwrap().reused,
        6,
        "the budget does not change pixels"
    );
}

/// Features = the input's top-left pixel (orientation-sensitive).
struct TopLeft(Device);

impl Backbone for TopLeft {
    fn id(&self) -> &str {
        "top-left"
    }
    fn input_size(&self) -> usize {
        16
    }
    fn feature_dim(&self) -> usize {
        3
    }
    fn normalization(&self) -> Normalization {
        Normalization::Scalar {
            mean: 0.0,
            std: 1.0,
        }
    }
    fn weights_hash(&self) -> &str {
        "11111111111111111111"
    }
    fn features(&self, x: &Tensor) -> Result<Tensor, BackboneError> {
        let f = |e: candle_core::Error| BackboneError::Forward {
            name: "top-left".into(),
            source: Box::new(e),
        };
        x.narrow(2, 2, 1)
            .and_then(|t| t.narrow(3, 2, 1))
            .and_then(|t| t.flatten_from(1))
            .map_err(f)
    }
    fn logits(&self, _: &Tensor) -> Result<Option<Tensor>, BackboneError> {
        Ok(None)
    }
    fn classify_features(&self, _: &Tensor) -> Result<Option<Tensor>, BackboneError> {
        Ok(None)
    }
    fn device(&self) -> &Device {
        &self.0
    }
}

#[test]
fn exif_orientation_reaches_the_backbone_and_can_be_turned_off() {
    use image::codecs::jpeg::JpegEncoder;
    use image::{ExtendedColorType, ImageEncoder};
    // Stored: top half green, bottom half red; EXIF 6 (turn a quarter
    // clockwise to display): the displayed top-left is red.
    let stored = RgbImage::from_fn(64, 64, |_, y| {
        if y < 32 {
            Rgb([0, 255, 0])
        } else {
            Rgb([255, 0, 0])
        }
    });
    let mut exif = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
    exif.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("phone");
    std::fs::create_dir_all(root.join("a")).unwrap();
    let mut buf = Vec::new();
    let mut enc = JpegEncoder::new_with_quality(&mut buf, 95);
    enc.set_exif_metadata(exif).unwrap();
    enc.write_image(stored.as_raw(), 64, 64, ExtendedColorType::Rgb8)
        .unwrap();
    std::fs::write(root.join("a/portrait.jpg"), &buf).unwrap();
    save(RgbImage::new(9, 9), &root.join("b/0.png"), ImageFormat::Png);
    let ds = scan_image_folder("phone", &root, 0.0, 0.0, 1).unwrap();
    let net = TopLeft(Device::Cpu);
    let top_left = |exif_orientation: bool| {
        let mut o = opts(1, 1);
        o.decode = DecodeOptions {
            resize: ResizeMode::Squash,
            exif_orientation,
            ..DecodeOptions::default()
        };
        let cache = Cache::new(dir.path().join(format!("cache-{exif_orientation}")));
        let r = extract(&ds, &net, &cache, &o).unwrap();
        let set = FeatureSet::load(&r.outputs[0].1).unwrap();
        let i = set
            .keys
            .iter()
            .position(|k| k.ends_with("portrait.jpg"))
            .unwrap();
        set.features[3 * i..3 * i + 3].to_vec()
    };
    let on = top_left(true);
    assert!(
        on[0] > 200.0 && on[1] < 50.0,
        "displayed top-left is red: {on:?}"
    );
    let off = top_left(false);
    assert!(
        off[1] > 200.0 && off[0] < 50.0,
        "stored top-left is green: {off:?}"
    );
}

#[test]
fn extract_options_come_from_the_config_with_non_default_values() {
    let sets: Vec<String> = [
        "extract.filter=bicubic",
        "extract.exif_orientation=false",
        "extract.jpeg_dct_scaling=false",
        "extract.max_pixels=1000000",
        "extract.resize=squash",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let c = Config::load(None, &sets).unwrap();
    let d = c.extract.decode_options();
    assert_eq!(d.max_pixels, 1_000_000);
    assert_eq!(d.cache_tag(), "squash-pre3-bicubic-full-noexif");
    let d = Config::load(None, &[]).unwrap().extract.decode_options();
    assert_eq!(d, DecodeOptions::default());
}
