//! The pretrained port against the independent numpy reference
//! (tests/reference/efficientnet_lite_reference.py, fixtures in
//! tests/fixtures/efficientnet_lite/): logits and features to 1e-4 relative,
//! and the right ImageNet class for real photos through ovr's own decoding.

use candle_core::{Device, Tensor};
use ovr::assets::cache::sha256_file;
use ovr::config::ResizeFilter;
use ovr::config::ResizeMode;
use ovr::features::backbone::Backbone;
use ovr::features::efficientnet_lite::{DepthwiseImpl, EfficientNetLite, LiteVariant};
use ovr::images::decode::{decode_rgb, prepare, DecodeOptions};
use ovr::images::orient::Orientation;
use ovr::images::resize::to_input;
use serde_json::Value;

use super::common::{fixture, lite_weights, sample_photo};

fn load(variant: LiteVariant, dw: DepthwiseImpl) -> EfficientNetLite {
    let p = lite_weights(variant.id());
    EfficientNetLite::load(variant, &p, sha256_file(&p).unwrap(), dw).unwrap()
}

fn reference(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(&format!("efficientnet_lite/{name}"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// max |a - b| / max(max |b|, 1): error relative to the scale of the output.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1f32, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
        / scale
}

fn png_input(rel: &str, size: usize) -> Tensor {
    let bytes = std::fs::read(fixture(rel)).unwrap();
    let img = decode_rgb(&bytes).unwrap();
    assert_eq!(
        (img.width() as usize, img.height() as usize),
        (size, size),
        "fixture already at input size"
    );
    Tensor::from_vec(
        to_input(
            &img,
            size,
            ResizeMode::Squash,
            ResizeFilter::Bicubic,
            Orientation::NoTransforms,
        )
        .unwrap(),
        (1, 3, size, size),
        &Device::Cpu,
    )
    .unwrap()
}

fn synthetic(size: usize) -> Tensor {
    let mut v = vec![0f32; 3 * size * size];
    for c in 0..3 {
        for y in 0..size {
            for x in 0..size {
                v[(c * size + y) * size + x] = ((x * 7 + y * 13 + c * 29) % 256) as f32;
            }
        }
    }
    Tensor::from_vec(v, (1, 3, size, size), &Device::Cpu).unwrap()
}

fn row(t: &Tensor) -> Vec<f32> {
    t.squeeze(0).unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn lite0_matches_numpy_reference_on_photos_and_synthetic_input() {
    let r = reference("lite0_reference.json");
    // Portable = plain candle ops, the path CUDA runs.
    for dw in [
        DepthwiseImpl::Direct,
        DepthwiseImpl::CandleGrouped,
        DepthwiseImpl::Portable,
    ] {
        let net = load(LiteVariant::Lite0, dw);
        for case in r["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let x = match case["png"].as_str() {
                Some(png) => png_input(&format!("efficientnet_lite/{png}"), 224),
                None => synthetic(224),
            };
            let pixel_sum: f64 = x.sum_all().unwrap().to_scalar::<f32>().unwrap() as f64;
            let want = case["pixel_sum"].as_f64().unwrap();
            assert!(
                (pixel_sum - want).abs() / want < 1e-6,
                "{name}: input differs ({pixel_sum} vs {want})"
            );
            let (f, logits) = net.forward_both(&x).unwrap();
            let el = rel_err(&row(&logits), &floats(&case["logits"]));
            let ef = rel_err(&row(&f), &floats(&case["features"]));
            assert!(el < 1e-4, "{name} {dw:?}: logits relative error {el}");
            assert!(ef < 1e-4, "{name} {dw:?}: features relative error {ef}");
            let top1 = case["top5"][0][0].as_u64().unwrap() as usize;
            let got = row(&logits);
            let argmax = (0..got.len())
                .max_by(|&a, &b| got[a].total_cmp(&got[b]))
                .unwrap();
            assert_eq!(argmax, top1, "{name}: top-1");
        }
    }
}

#[test]
fn lite0_stem_matches_reference_trace() {
    let r = reference("lite0_reference.json");
    let case = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "synthetic")
        .unwrap();
    let net = load(LiteVariant::Lite0, DepthwiseImpl::Direct);
    let x = Backbone::normalization(&net)
        .apply(&synthetic(224))
        .unwrap();
    let stem = net.stem_output(&x).unwrap();
    assert_eq!(stem.dims(), &[1, 32, 112, 112]);
    let sum = stem.sum_all().unwrap().to_scalar::<f32>().unwrap() as f64;
    let want = case["stem"]["sum"].as_f64().unwrap();
    assert!(
        (sum - want).abs() / want.abs() < 1e-4,
        "stem sum {sum} vs {want}"
    );
    let b1 = net.blocks_output(stem, 2).unwrap();
    let sum = b1.sum_all().unwrap().to_scalar::<f32>().unwrap() as f64;
    let want = case["block1"]["sum"].as_f64().unwrap();
    assert!(
        (sum - want).abs() / want.abs() < 1e-4,
        "block 1 sum {sum} vs {want}"
    );
}

#[test]
fn lite1_and_lite2_match_reference_logits() {
    for (variant, file, png, size) in [
        (
            LiteVariant::Lite1,
            "lite1_reference.json",
            "china_240.png",
            240,
        ),
        (
            LiteVariant::Lite2,
            "lite2_reference.json",
            "china_260.png",
            260,
        ),
    ] {
        let r = reference(file);
        let case = &r["cases"][0];
        assert_eq!(case["png"].as_str(), Some(png));
        let net = load(variant, DepthwiseImpl::Direct);
        let (_, logits) = net
            .forward_both(&png_input(&format!("efficientnet_lite/{png}"), size))
            .unwrap();
        let e = rel_err(&row(&logits), &floats(&case["logits"]));
        assert!(e < 1e-4, "{variant:?}: logits relative error {e}");
    }
}

#[test]
fn real_photos_get_the_right_imagenet_class_through_ovr_decoding() {
    let net = load(LiteVariant::Lite0, DepthwiseImpl::Direct);
    for (stem, class) in [("china", 698usize), ("flower", 985usize)] {
        let bytes = std::fs::read(sample_photo(stem)).unwrap();
        let x = Tensor::from_vec(
            prepare(&bytes, 224, &DecodeOptions::default()).unwrap(),
            (1, 3, 224, 224),
            &Device::Cpu,
        )
        .unwrap();
        let got = row(&net.forward_both(&x).unwrap().1);
        let argmax = (0..got.len())
            .max_by(|&a, &b| got[a].total_cmp(&got[b]))
            .unwrap();
        assert_eq!(argmax, class, "{stem}.jpg: expected ImageNet class {class}");
    }
}

#[test]
fn logits_from_cached_features_equal_the_full_forward_pass() {
    let net = load(LiteVariant::Lite0, DepthwiseImpl::Direct);
    let x = png_input("efficientnet_lite/flower_224.png", 224);
    let (features, logits) = net.forward_both(&x).unwrap();
    let from_features = net.classify_features(&features).unwrap().unwrap();
    let a: Vec<f32> = from_features.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a.len(), 1000);
    assert!(rel_err(&a, &b) < 1e-6, "{}", rel_err(&a, &b));
}
