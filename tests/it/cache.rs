//! The feature cache under damage and concurrency, through the library API
//! with the stand-in backbone: a flipped byte anywhere in a shard is caught,
//! only that shard's images are recomputed and the features equal a clean
//! run's; concurrent extractions into one cache lose nothing.

use std::path::{Path, PathBuf};

use ovr::assets::cache::Cache;
use ovr::features::extract::extract;
use ovr::features::store::{FeatureCache, FeatureSet, QUARANTINE_DIR};
use ovr::images::dataset::{scan_image_folder, Dataset};

use super::common::small_tree;
use super::extract::{opts, MeanColour};

fn shards(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("shard-")
        })
        .collect();
    v.sort();
    v
}

fn by_content_dir(cache: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(cache.join("features/by-content"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Every split file of one extraction, loaded.
fn sets(outputs: &[(ovr::images::dataset::Split, PathBuf, usize)]) -> Vec<FeatureSet> {
    outputs
        .iter()
        .map(|o| FeatureSet::load(&o.1).unwrap())
        .collect()
}

fn dataset(root: &Path, per_class: usize) -> Dataset {
    small_tree(root, per_class);
    scan_image_folder("shapes", root, 0.2, 0.2, 1).unwrap()
}

#[test]
fn flipped_byte_in_a_shard_is_caught_and_its_images_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir.path().join("shapes"), 6);
    let clean_root = dir.path().join("clean");
    let clean = ovr::features::extract::extract(
        &ds,
        &MeanColour::new(usize::MAX),
        &Cache::new(clean_root.clone()),
        &opts(4, 1),
    )
    .unwrap();
    let clean_sets = sets(&clean.outputs);
    let shard_dir = by_content_dir(&clean_root);
    let all = shards(&shard_dir);
    assert_eq!(all.len(), 3, "12 images in batches of 4");
    let victim_name = all[1].file_name().unwrap().to_owned();
    let len = std::fs::metadata(&all[1]).unwrap().len() as usize;
    // Every 5th byte (header, checksum, hashes, data), and the last one.
    for pos in (0..len).step_by(5).chain([len - 1]) {
        let root = dir.path().join(format!("run-{pos}"));
        copy_dir(&clean_root, &root);
        let sd = by_content_dir(&root);
        let victim = sd.join(&victim_name);
        let mut bytes = std::fs::read(&victim).unwrap();
        bytes[pos] ^= 0x10;
        std::fs::write(&victim, &bytes).unwrap();
        let cache = Cache::new(root.clone());
        let r =
            ovr::features::extract::extract(&ds, &MeanColour::new(usize::MAX), &cache, &opts(4, 1))
                .unwrap();
        assert_eq!((r.computed, r.reused), (4, 8), "byte {pos}");
        assert_eq!(sets(&r.outputs), clean_sets, "byte {pos}");
        assert!(sd.join(QUARANTINE_DIR).join(&victim_name).is_file());
        // Moved aside once: the next open has nothing to report, and the
        // next run computes nothing.
        let (_, bad) = FeatureCache::open(&sd, 3).unwrap();
        assert!(bad.is_empty(), "byte {pos}: {bad:?}");
        let again =
            ovr::features::extract::extract(&ds, &MeanColour::new(1), &cache, &opts(4, 1)).unwrap();
        assert_eq!(again.computed, 0);
        std::fs::remove_dir_all(&root).unwrap();
    }
}

/// `writers` extractions at once into one cache, with different batch sizes
/// (so their shards differ), then a single run that must compute nothing and
/// give the features of an extraction on its own.
fn concurrent_writers_lose_nothing(writers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir.path().join("shapes"), 10);
    let alone = ovr::features::extract::extract(
        &ds,
        &MeanColour::new(usize::MAX),
        &Cache::new(dir.path().join("alone")),
        &opts(1, 1),
    )
    .unwrap();
    // A lost shard needs an unlucky interleaving: several rounds.
    for round in 0..3 {
        let shared = Cache::new(dir.path().join(format!("shared-{round}")));
        let start = std::sync::Barrier::new(writers);
        std::thread::scope(|s| {
            for w in 0..writers {
                let (ds, shared, start) = (&ds, &shared, &start);
                s.spawn(move || {
                    start.wait();
                    ovr::features::extract::extract(
                        ds,
                        &MeanColour::slow(2),
                        shared,
                        &opts(1 + w, 1),
                    )
                    .unwrap()
                });
            }
        });
        let after = ovr::features::extract::extract(
            &ds,
            &MeanColour::new(usize::MAX),
            &shared,
            &opts(4, 1),
        )
        .unwrap();
        assert_eq!(
            (after.computed, after.reused),
            (0, 20),
            "round {round}: {writers} concurrent writers lost work"
        );
        let (cache, bad) = FeatureCache::open(&by_content_dir(shared.root()), 3).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(cache.len(), 20);
        assert_eq!(sets(&after.outputs), sets(&alone.outputs));
    }
}

#[test]
fn two_concurrent_extractions_into_one_cache_lose_nothing() {
    concurrent_writers_lose_nothing(2);
}

#[test]
fn four_concurrent_extractions_into_one_cache_lose_nothing() {
    concurrent_writers_lose_nothing(4);
}

/// Two different folders both called `images`: each keeps its own exported
/// split files (the directory is keyed by name + a hash of the folder).
#[test]
fn folders_of_one_base_name_get_their_own_exports() {
    let dir = tempfile::tempdir().unwrap();
    let a_root = dir.path().join("a/images");
    let b_root = dir.path().join("b/images");
    small_tree(&a_root, 4);
    small_tree(&b_root, 6);
    let a = scan_image_folder("images", &a_root, 0.0, 0.0, 1).unwrap();
    let b = scan_image_folder("images", &b_root, 0.0, 0.0, 1).unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let ra = extract(&a, &MeanColour::new(usize::MAX), &cache, &opts(4, 1)).unwrap();
    let rb = extract(&b, &MeanColour::new(usize::MAX), &cache, &opts(4, 1)).unwrap();
    assert_ne!(ra.outputs[0].1, rb.outputs[0].1);
    let dir_name = |p: &Path| {
        p.parent()
            .unwrap()
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert!(dir_name(&ra.outputs[0].1).starts_with("images-"));
    // a's export still holds a's images after b was extracted.
    let sa = FeatureSet::load(&ra.outputs[0].1).unwrap();
    assert_eq!(sa.len(), 8);
    assert!(sa
        .keys
        .iter()
        .all(|k| k.starts_with(&a_root.display().to_string())));
    assert_eq!(FeatureSet::load(&rb.outputs[0].1).unwrap().len(), 12);
}

/// The same extraction twice (fresh caches): byte-identical exports.
#[test]
fn exports_are_byte_identical_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir.path().join("shapes"), 6);
    let run = |name: &str| {
        let r = extract(
            &ds,
            &MeanColour::new(usize::MAX),
            &Cache::new(dir.path().join(name)),
            &opts(4, 2),
        )
        .unwrap();
        r.outputs
            .iter()
            .map(|o| std::fs::read(&o.1).unwrap())
            .collect::<Vec<_>>()
    };
    let (x, y) = (run("c1"), run("c2"));
    assert_eq!(x.len(), 3);
    assert!(x == y, "exports differ between runs");
}
