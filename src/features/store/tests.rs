//! Unit tests of the feature store: shards, checksums, quarantine, concurrent
//! writers, per-split files.

use super::*;
use crate::features::st_file::{serialize, TensorBytes};

#[test]
fn cache_shards_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, bad) = FeatureCache::open(dir.path(), 3).unwrap();
    assert!(bad.is_empty() && c.is_empty());
    c.append(vec![
        ("a".into(), vec![1.0, 2.0, 3.0]),
        ("b".into(), vec![4.0, 5.0, 6.0]),
    ])
    .unwrap();
    c.append(vec![("c".into(), vec![7.0, 8.0, 9.0])]).unwrap();
    let (c2, bad) = FeatureCache::open(dir.path(), 3).unwrap();
    assert!(bad.is_empty());
    assert_eq!(c2.len(), 3);
    assert_eq!(c2.get("b").unwrap(), Some(vec![4.0f32, 5.0, 6.0]));
    assert_eq!(c2.get("z").unwrap(), None);
    // The writer reads its own rows back from the shards it wrote, in any
    // order, across shards.
    let mut out = [0f32; 3];
    for (h, want) in [
        ("c", [7.0, 8.0, 9.0]),
        ("a", [1.0, 2.0, 3.0]),
        ("b", [4.0, 5.0, 6.0]),
    ] {
        assert!(c.read_into(h, &mut out).unwrap());
        assert_eq!(out, want, "{h}");
    }
    assert!(c.read_into("a", &mut [0f32; 2]).is_err(), "wrong width");
    assert!(
        c.append(vec![("d".into(), vec![1.0])]).is_err(),
        "wrong dim"
    );
}

#[test]
fn damaged_shard_is_quarantined_and_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _) = FeatureCache::open(dir.path(), 2).unwrap();
    c.append(vec![("a".into(), vec![1.0, 2.0])]).unwrap();
    let junk = dir.path().join("shard-99999999.safetensors");
    std::fs::write(&junk, b"garbage").unwrap();
    let (c2, bad) = FeatureCache::open(dir.path(), 2).unwrap();
    assert_eq!(c2.len(), 1);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].path, junk);
    let moved = bad[0].moved_to.clone().unwrap();
    assert_eq!(
        moved,
        dir.path()
            .join(QUARANTINE_DIR)
            .join("shard-99999999.safetensors")
    );
    assert_eq!(std::fs::read(&moved).unwrap(), b"garbage");
    assert!(!junk.exists());
    let (c3, bad) = FeatureCache::open(dir.path(), 2).unwrap();
    assert!(bad.is_empty(), "reported again: {bad:?}");
    assert_eq!(c3.len(), 1);
    // A second damaged shard of the same name does not overwrite the first.
    std::fs::write(&junk, b"more garbage").unwrap();
    let (_, bad) = FeatureCache::open(dir.path(), 2).unwrap();
    let moved2 = bad[0].moved_to.clone().unwrap();
    assert_ne!(moved2, moved);
    assert_eq!(std::fs::read(&moved).unwrap(), b"garbage");
}

/// Every single-byte change anywhere in a shard (header length, header,
/// checksum, image hashes, feature data) is caught: the shard is moved aside
/// and none of its entries is served.
#[test]
fn a_flipped_byte_anywhere_in_a_shard_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _) = FeatureCache::open(dir.path(), 2).unwrap();
    let shard = c
        .append(vec![
            ("a".into(), vec![1.0, 2.0]),
            ("b".into(), vec![3.0, 4.0]),
        ])
        .unwrap()
        .unwrap();
    let pristine = std::fs::read(&shard).unwrap();
    let name = shard.file_name().unwrap().to_owned();
    for pos in 0..pristine.len() {
        for mask in [0x01u8, 0x20, 0x80] {
            let d = tempfile::tempdir().unwrap();
            let mut bytes = pristine.clone();
            bytes[pos] ^= mask;
            std::fs::write(d.path().join(&name), &bytes).unwrap();
            let (c, bad) = FeatureCache::open(d.path(), 2).unwrap();
            assert_eq!(
                (c.len(), bad.len()),
                (0, 1),
                "byte {pos} of {} ^ {mask:#04x} went unnoticed",
                pristine.len()
            );
            assert!(bad[0].moved_to.is_ok(), "{:?}", bad[0]);
        }
    }
}

#[test]
fn shard_without_checksum_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let meta = BTreeMap::from([("hashes".to_string(), "[\"a\"]".to_string())]);
    let t = [TensorBytes {
        name: "features",
        dtype: Dtype::F32,
        shape: vec![1, 2],
        data: &data,
    }];
    std::fs::write(
        dir.path().join("shard-00000000.safetensors"),
        serialize(&t, &meta).unwrap(),
    )
    .unwrap();
    let (c, bad) = FeatureCache::open(dir.path(), 2).unwrap();
    assert_eq!((c.len(), bad.len()), (0, 1));
    assert!(bad[0].reason.contains("sha256"), "{}", bad[0].reason);
}

/// Two writers that opened the same empty cache never replace each other's
/// shards: the names come from the bytes.
#[test]
fn writers_that_opened_the_same_cache_keep_each_others_shards() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, _) = FeatureCache::open(dir.path(), 1).unwrap();
    let (mut b, _) = FeatureCache::open(dir.path(), 1).unwrap();
    let pa = a.append(vec![("x".into(), vec![1.0])]).unwrap().unwrap();
    let pb = b.append(vec![("y".into(), vec![2.0])]).unwrap().unwrap();
    assert_ne!(pa, pb);
    // Same content, same name: replacing it loses nothing.
    let (mut c, _) = FeatureCache::open(tempfile::tempdir().unwrap().path(), 1).unwrap();
    let pc = c.append(vec![("x".into(), vec![1.0])]).unwrap().unwrap();
    assert_eq!(pa.file_name(), pc.file_name());
    let (all, bad) = FeatureCache::open(dir.path(), 1).unwrap();
    assert!(bad.is_empty());
    assert_eq!(
        (all.get("x").unwrap(), all.get("y").unwrap()),
        (Some(vec![1.0f32]), Some(vec![2.0f32]))
    );
}

/// The cache indexes rows, it does not hold them: a shard removed after
/// the cache was opened is an I/O error naming it, not stale data.
#[test]
fn rows_are_read_from_their_shard_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _) = FeatureCache::open(dir.path(), 2).unwrap();
    let p = c
        .append(vec![("a".into(), vec![1.0, 2.0])])
        .unwrap()
        .unwrap();
    let (reopened, _) = FeatureCache::open(dir.path(), 2).unwrap();
    std::fs::remove_file(&p).unwrap();
    let e = reopened.get("a").unwrap_err();
    assert!(
        matches!(&e, StoreError::Io { path, .. } if *path == p),
        "{e}"
    );
}

#[test]
fn feature_set_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("train.safetensors");
    let set = FeatureSet {
        dataset: "d".into(),
        split: "train".into(),
        backbone: "efficientnet-lite0".into(),
        weights_sha256: "ab".into(),
        classes: vec!["x".into(), "y".into()],
        keys: vec!["k1".into(), "k2".into()],
        labels: vec![1, 0],
        dim: 2,
        features: vec![0.5, -1.0, 2.0, 3.25],
    };
    set.save(&p).unwrap();
    assert_eq!(FeatureSet::load(&p).unwrap(), set);
    // Byte-reproducible: metadata in key order, whatever the process.
    let first = std::fs::read(&p).unwrap();
    set.save(&p).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), first);
    let mut bad = set.clone();
    bad.labels.pop();
    assert!(bad.save(&p).is_err());
}
