use super::*;

fn h(prefix: &str) -> String {
    format!("{prefix:0<64}")
}

#[test]
fn shard_specs_parse_and_bad_ones_say_why() {
    assert_eq!(
        "0/4".parse::<ShardSpec>(),
        Ok(ShardSpec { index: 0, count: 4 })
    );
    assert_eq!(
        "3/4".parse::<ShardSpec>(),
        Ok(ShardSpec { index: 3, count: 4 })
    );
    assert_eq!(ShardSpec { index: 2, count: 7 }.to_string(), "2/7");
    let err = |s: &str| s.parse::<ShardSpec>().unwrap_err();
    assert!(
        err("0/0").contains("N must be at least 1"),
        "{}",
        err("0/0")
    );
    assert!(err("5/4").contains("below N = 4"), "{}", err("5/4"));
    assert!(err("4/4").contains("below N = 4"), "{}", err("4/4"));
    assert!(err("x").contains("no `/`"), "{}", err("x"));
    assert!(err("-1/4").contains("K `-1`"), "{}", err("-1/4"));
    assert!(err("1/y").contains("N `y`"), "{}", err("1/y"));
}

#[test]
fn shard_of_is_the_leading_64_bits_modulo_n() {
    // Known answers: 0x...05 mod 4 = 1; u64::MAX mod 10 = 5.
    assert_eq!(shard_of(&h("0000000000000005"), 4), 1);
    assert_eq!(shard_of(&h("ffffffffffffffff"), 10), 5);
    assert_eq!(shard_of(&h("ffffffffffffffff"), 1), 0);
    // Only the leading 16 digits count.
    assert_eq!(
        shard_of(&format!("{:0<16}{:f<48}", "1", ""), 3),
        shard_of(&h("1"), 3)
    );
    // Text that is not hex still lands in range, the same way every time.
    let odd = shard_of("not-a-hash", 5);
    assert!(odd < 5);
    assert_eq!(odd, shard_of("not-a-hash", 5));
}

#[test]
fn sha256_hashes_spread_evenly_over_shards() {
    let mut counts = [0usize; 4];
    for i in 0..4000u32 {
        let hash = crate::assets::cache::sha256_hex(&i.to_le_bytes());
        counts[shard_of(&hash, 4)] += 1;
    }
    // Binomial(4000, 1/4): sd ~ 27; 150 is more than 5 sd.
    for c in counts {
        assert!((850..=1150).contains(&c), "{counts:?}");
    }
}

fn marker(shard: usize, of: usize) -> DoneMarker {
    DoneMarker {
        format: MARKER_FORMAT.into(),
        shard,
        of,
        dataset: "d".into(),
        backbone: "b".into(),
        hashes: vec![h("a")],
        failed: vec![FailedItem {
            key: "x.png".into(),
            hash: None,
            reason: "unreadable".into(),
        }],
    }
}

#[test]
fn missing_images_are_named_by_shard_and_marker_state() {
    // Shard (of 4) of each hash: 0x..01 -> 1, 0x..02 -> 2, 0x..06 -> 2.
    let missing = [
        h("0000000000000001"),
        h("0000000000000002"),
        h("0000000000000006"),
    ];
    let markers = [marker(0, 4), marker(1, 4), marker(3, 4)];
    let got = missing_shards(&missing, &markers);
    let spec = |index| ShardSpec { index, count: 4 };
    assert_eq!(
        got,
        vec![
            MissingShard {
                spec: spec(1),
                images: 1,
                finished: true
            },
            MissingShard {
                spec: spec(2),
                images: 2,
                finished: false
            },
        ]
    );
    let text = describe_missing(3, &got, Path::new("/c/done"));
    assert!(
        text.contains("shard 2/4 (2 image(s), no done-marker"),
        "{text}"
    );
    assert!(text.contains("`ovr extract --shard 1/4`"), "{text}");
    // Markers of two shard counts: the hashes are placed under both.
    let both = missing_shards(&missing[..1], &[marker(0, 4), marker(0, 3)]);
    let specs: Vec<String> = both.iter().map(|m| m.spec.to_string()).collect();
    assert_eq!(specs, ["1/3", "1/4"]);
    // No marker at all: nothing to name, the text says so.
    assert!(missing_shards(&missing, &[]).is_empty());
    assert!(describe_missing(3, &[], Path::new("/c/done")).contains("no shard has finished"));
}

#[test]
fn markers_round_trip_and_unreadable_ones_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (marker(1, 4), marker(0, 2));
    write_marker(
        &marker_path(dir.path(), ShardSpec { index: 1, count: 4 }),
        &a,
    )
    .unwrap();
    write_marker(
        &marker_path(dir.path(), ShardSpec { index: 0, count: 2 }),
        &b,
    )
    .unwrap();
    std::fs::write(dir.path().join("2-of-4.json"), b"{ half a marker").unwrap();
    let (ok, bad) = read_markers(dir.path());
    assert_eq!(ok, vec![b, a], "sorted by (N, K)");
    assert_eq!(bad.len(), 1);
    assert!(bad[0].0.ends_with("2-of-4.json"));
    let (none, none_bad) = read_markers(&dir.path().join("absent"));
    assert!(none.is_empty() && none_bad.is_empty());
}
