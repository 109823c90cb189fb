//! The native NHWC CPU engine (`features::lite_cpu`) on the real networks:
//! features and logits within 1e-4 relative of the numpy float64 reference
//! for every SIMD level this CPU runs (portable, AVX2, AVX-512), in both
//! batch modes (one worker; two workers splitting one image), Lite1/Lite2
//! through the same engine, and agreement with the candle network on random
//! batches, so cached features keep their meaning (and their cache key).

use candle_core::{Device, Tensor};
use ovr::features::backbone::Backbone;
use ovr::features::efficientnet_lite::{DepthwiseImpl, LiteVariant};
use ovr::features::lite_cpu::Isa;

use super::pretrained::{floats, load, png_input, reference, rel_err, row, synthetic};

fn levels() -> Vec<Isa> {
    [Isa::Portable, Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|i| i.supported())
        .collect()
}

#[test]
fn native_lite0_matches_numpy_reference_on_every_level_and_mode() {
    let r = reference("lite0_reference.json");
    let mut net = load(LiteVariant::Lite0, DepthwiseImpl::Native);
    for isa in levels() {
        for threads in [1, 2] {
            net.build_native(isa, threads).unwrap();
            assert_eq!(net.native().map(|e| e.isa()), Some(isa));
            for case in r["cases"].as_array().unwrap() {
                let name = case["name"].as_str().unwrap();
                let x = match case["png"].as_str() {
                    Some(png) => png_input(&format!("efficientnet_lite/{png}"), 224),
                    None => synthetic(224),
                };
                let (f, logits) = net.forward_both(&x).unwrap();
                let el = rel_err(&row(&logits), &floats(&case["logits"]));
                let ef = rel_err(&row(&f), &floats(&case["features"]));
                assert!(
                    el < 1e-4,
                    "{name} {isa:?} x{threads}: logits relative error {el}"
                );
                assert!(
                    ef < 1e-4,
                    "{name} {isa:?} x{threads}: features relative error {ef}"
                );
            }
        }
    }
}

#[test]
fn native_lite1_and_lite2_match_reference_logits_on_every_level() {
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
        let mut net = load(variant, DepthwiseImpl::Native);
        for isa in levels() {
            net.build_native(isa, 2).unwrap();
            assert_eq!(net.native().map(|e| e.input_size()), Some(size));
            let x = png_input(&format!("efficientnet_lite/{png}"), size);
            let (_, logits) = net.forward_both(&x).unwrap();
            let e = rel_err(&row(&logits), &floats(&case["logits"]));
            assert!(e < 1e-4, "{variant:?} {isa:?}: logits relative error {e}");
        }
    }
}

#[test]
fn native_engine_matches_the_candle_network_on_random_batches() {
    let candle = load(LiteVariant::Lite0, DepthwiseImpl::Direct);
    let mut native = load(LiteVariant::Lite0, DepthwiseImpl::Native);
    assert!(candle.native().is_none());
    for isa in levels() {
        native.build_native(isa, 2).unwrap();
        for batch in [1, 3] {
            let x = Tensor::rand(0f32, 255f32, (batch, 3, 224, 224), &Device::Cpu).unwrap();
            let (fa, la) = candle.forward_both(&x).unwrap();
            let fb = native.features(&x).unwrap();
            let lb = native.logits(&x).unwrap().unwrap();
            assert_eq!(fb.dims(), &[batch, 1280]);
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let ef = rel_err(&flat(&fb), &flat(&fa));
            let el = rel_err(&flat(&lb), &flat(&la));
            assert!(
                ef < 1e-4,
                "{isa:?} batch {batch}: features relative error {ef}"
            );
            assert!(
                el < 1e-4,
                "{isa:?} batch {batch}: logits relative error {el}"
            );
        }
    }
}
