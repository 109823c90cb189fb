//! CUDA lanes and extraction against the CPU (issue #6). Always listed as
//! ignored with the reason (a GPU is a property of the machine, not of the
//! build); run them with `--ignored gpu::` (tests/cuda/device-run.sh does)
//! in a `--features cuda` build: without a usable GPU each one fails saying
//! why, so it can never pass by skipping. Results must match the CPU run to
//! float tolerance: the same C per head, weights within 1e-3, test
//! predictions identical or off by at most one image.

use candle_core::{Device, Tensor};
use ovr::device::DeviceSpec;
use ovr::features::backbone::Backbone;
use ovr::features::efficientnet_lite::{DepthwiseImpl, EfficientNetLite, LiteVariant};

use super::common::lite_weights;
use super::train::{blobs, config, flat, max_diff, train};

/// The first CUDA device, or why the test cannot run here.
fn gpu() -> Result<Device, String> {
    if !DeviceSpec::cuda_built() {
        return Err("built without `--features cuda`".into());
    }
    DeviceSpec::Cuda(0).open().map_err(|e| e.to_string())
}

macro_rules! gpu_or_fail {
    ($name:literal) => {
        match gpu() {
            Ok(d) => d,
            Err(why) => panic!("{} needs a GPU: {why}", $name),
        }
    };
}

#[test]
#[ignore = "needs a `--features cuda` build and a GPU: run with --ignored gpu::"]
fn cuda_lanes_match_the_cpu() {
    let _device = gpu_or_fail!("cuda_lanes_match_the_cpu");
    let tr = blobs("train", &[60, 40, 25, 15], 12, 1);
    let va = blobs("val", &[20, 14, 9, 6], 12, 2);
    let grid = "train.c_grid=[0.01, 0.1, 1.0]";
    let cpu = train(&config(&[grid, "train.lanes=1"]), &tr, &va).unwrap();
    for lanes in ["train.lanes=1", "train.lanes=4"] {
        let cuda = train(&config(&[grid, lanes, "device=\"cuda:0\""]), &tr, &va).unwrap();
        let c1: Vec<Option<f64>> = cpu.specialists.iter().map(|h| h.c).collect();
        let c2: Vec<Option<f64>> = cuda.specialists.iter().map(|h| h.c).collect();
        assert_eq!(c1, c2, "{lanes}: same C chosen per head");
        let d = max_diff(&flat(&cpu.weights), &flat(&cuda.weights));
        assert!(d <= 1e-3, "{lanes}: weights differ by {d}");
        let n = va.len() as f64;
        let off =
            (cpu.validation.specialists_accuracy - cuda.validation.specialists_accuracy).abs();
        assert!(
            off * n <= 1.0 + 1e-9,
            "{lanes}: more than one image differs"
        );
    }
}

#[test]
#[ignore = "needs a `--features cuda` build and a GPU: run with --ignored gpu::"]
fn cuda_extraction_matches_the_cpu() {
    let device = gpu_or_fail!("cuda_extraction_matches_the_cpu");
    let p = lite_weights("efficientnet-lite0");
    let hash = ovr::assets::cache::sha256_file(&p).unwrap();
    let net = EfficientNetLite::load(LiteVariant::Lite0, &p, hash, DepthwiseImpl::Direct).unwrap();
    let gpu_net = net.to_device(&device).unwrap();
    let x = Tensor::rand(0f32, 255f32, (8, 3, 224, 224), &Device::Cpu).unwrap();
    let a: Vec<f32> = net
        .features(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let b: Vec<f32> = gpu_net
        .features(&x.to_device(&device).unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let scale = a.iter().fold(1f32, |m, v| m.max(v.abs()));
    let d = max_diff(&a, &b) / scale;
    assert!(d < 1e-3, "features differ by {d} (relative)");
}
