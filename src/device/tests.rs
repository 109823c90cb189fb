//! Device selection (config -> device), tests of [`super`]: the accepted
//! spellings and their round trip through `Display`, the rejected ones and
//! their message, and what a build without the `cuda` feature answers. The
//! CUDA paths themselves run on a GPU machine (tests/cuda/device-run.sh).

use super::*;

#[test]
fn parses_every_allowed_spelling() {
    let cases = [
        ("cpu", DeviceSpec::Cpu),
        ("CPU", DeviceSpec::Cpu),
        (" cpu ", DeviceSpec::Cpu),
        ("cuda", DeviceSpec::Cuda(0)),
        ("cuda:0", DeviceSpec::Cuda(0)),
        ("cuda:3", DeviceSpec::Cuda(3)),
        ("CUDA:12", DeviceSpec::Cuda(12)),
    ];
    for (s, want) in cases {
        assert_eq!(DeviceSpec::parse(s).ok(), Some(want), "{s:?}");
        assert_eq!(s.parse::<DeviceSpec>().ok(), Some(want), "{s:?}");
    }
    assert_eq!(DeviceSpec::default(), DeviceSpec::Cpu);
}

#[test]
fn display_round_trips() {
    for spec in [DeviceSpec::Cpu, DeviceSpec::Cuda(0), DeviceSpec::Cuda(7)] {
        assert_eq!(DeviceSpec::parse(&spec.to_string()).ok(), Some(spec));
    }
    assert_eq!(DeviceSpec::Cuda(2).to_string(), "cuda:2");
}

#[test]
fn rejects_other_spellings_naming_the_allowed_ones() {
    for s in [
        "",
        "gpu",
        "cuda:",
        "cuda:-1",
        "cuda:+1",
        "cuda:x",
        "cuda:1.5",
        "cuda0",
        "cpu:0",
        "metal",
        "cuda:99999999999999999999999",
    ] {
        let e = DeviceSpec::parse(s).expect_err(s);
        assert!(
            matches!(&e, DeviceError::Unknown { spelling } if spelling == s),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains(&format!("`{s}`")), "{msg}");
        assert!(msg.contains("cpu, cuda"), "{msg}");
        assert!(msg.contains("cuda:N"), "{msg}");
    }
}

#[test]
fn cpu_opens_everywhere() {
    let spec = DeviceSpec::Cpu;
    assert!(spec.open().map(|d| d.is_cpu()).unwrap_or(false));
    assert!(spec.open_stream().map(|d| d.is_cpu()).unwrap_or(false));
    let lanes = spec.open_lanes(3).unwrap_or_default();
    assert_eq!(lanes.len(), 3);
    assert!(lanes.iter().all(|d| d.is_cpu()));
    assert!(!spec.is_cuda());
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_says_how_to_rebuild() {
    assert!(!DeviceSpec::cuda_built());
    let spec = DeviceSpec::Cuda(1);
    assert!(spec.is_cuda());
    for r in [spec.open(), spec.open_stream()] {
        let e = r.expect_err("a CPU build cannot open CUDA");
        assert!(
            matches!(e, DeviceError::CudaNotBuilt { spec: got } if got == spec),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains("`cuda:1`"), "{msg}");
        assert!(
            msg.contains("cargo build --release --features cuda"),
            "{msg}"
        );
        assert!(msg.contains("tests/cuda/build.sh"), "{msg}");
    }
    assert!(spec.open_lanes(2).is_err());
    // No lanes asked: nothing to open, no error.
    assert_eq!(spec.open_lanes(0).map(|v| v.len()).ok(), Some(0));
}

#[test]
fn missing_ordinals_are_listed() {
    let e = |count| {
        DeviceError::NoSuchDevice {
            spec: DeviceSpec::Cuda(4),
            count,
        }
        .to_string()
    };
    assert!(e(0).contains("no CUDA device"), "{}", e(0));
    assert!(e(1).contains("only cuda:0"), "{}", e(1));
    assert!(e(4).contains("cuda:0 to cuda:3"), "{}", e(4));
    let d = DeviceError::NoDriver {
        spec: DeviceSpec::Cuda(0),
        source: "CUDA_ERROR_NO_DEVICE".into(),
    }
    .to_string();
    assert!(
        d.contains("no CUDA driver") && d.contains("nvidia-smi"),
        "{d}"
    );
}

/// In a CUDA build: opens on a GPU machine; elsewhere (no driver, or the
/// build's stub library, as `tests/cuda/build.sh --cargo test ...` runs it)
/// says that no driver was found. An ordinal past any machine's GPUs is
/// refused with the count.
#[cfg(feature = "cuda")]
#[test]
fn cuda_build_opens_or_says_why() {
    assert!(DeviceSpec::cuda_built());
    match DeviceSpec::Cuda(0).open_stream() {
        Ok(d) => assert!(d.is_cuda()),
        Err(e @ DeviceError::NoDriver { .. }) => {
            assert!(e.to_string().contains("nvidia-smi"), "{e}")
        }
        Err(e) => panic!("unexpected error opening cuda:0: {e}"),
    }
    match DeviceSpec::Cuda(4096).open() {
        Err(DeviceError::NoSuchDevice { count, .. }) => assert!(count < 4096),
        Err(DeviceError::NoDriver { .. }) => {}
        Err(e) => panic!("unexpected error opening cuda:4096: {e}"),
        Ok(_) => panic!("cuda:4096 opened"),
    }
}
