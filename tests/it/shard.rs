//! Sharded extraction: `extract --shard K/N` embeds only its images (by
//! content hash, checked against an independent SHA-256 here), `--merge`
//! computes nothing and names the shards that lack images, and the merged
//! split files equal a single run's byte for byte: through the library with
//! the stand-in backbone, and as four `ovr` processes (real Lite0) on one
//! cache, some killed with SIGKILL and rerun.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ovr::assets::cache::Cache;
use ovr::features::extract::{extract, ExtractError, ExtractReport};
use ovr::features::shard::extract_scoped;
use ovr::features::shard::{read_markers, Scope, ShardSpec};
use ovr::images::dataset::{scan_image_folder, Dataset};
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use super::common::{
    image_folder_args, lite_weights, ovr, small_tree, text, wait_for_shards, write_png,
};
use super::extract::{opts, MeanColour};

/// The shard of a file computed here, independently of `ovr`: the first
/// 8 bytes of the SHA-256 of its bytes, big-endian, modulo `n`.
fn expected_shard(path: &Path, n: u64) -> usize {
    let d = Sha256::digest(std::fs::read(path).unwrap());
    (u64::from_be_bytes(d[..8].try_into().unwrap()) % n) as usize
}

fn per_shard(ds: &Dataset, n: u64) -> Vec<usize> {
    let mut counts = vec![0; n as usize];
    for it in &ds.items {
        counts[expected_shard(Path::new(&it.key), n)] += 1;
    }
    counts
}

fn shard(ds: &Dataset, cache: &Cache, k: usize, n: usize) -> ExtractReport {
    let spec = ShardSpec { index: k, count: n };
    extract_scoped(
        ds,
        &MeanColour::new(usize::MAX),
        cache,
        &opts(3, 2),
        Scope::Shard(spec),
    )
    .unwrap()
}

fn merge(ds: &Dataset, cache: &Cache) -> Result<ExtractReport, ExtractError> {
    // A backbone that fails on its first call: a merge must not compute.
    extract_scoped(ds, &MeanColour::new(1), cache, &opts(3, 2), Scope::Merge)
}

fn bytes_of(r: &ExtractReport) -> Vec<Vec<u8>> {
    r.outputs
        .iter()
        .map(|(_, p, _)| std::fs::read(p).unwrap())
        .collect()
}

fn missing_of(e: ExtractError) -> Vec<(String, usize, bool)> {
    match e {
        ExtractError::MissingShards { shards, .. } => shards
            .iter()
            .map(|s| (s.spec.to_string(), s.images, s.finished))
            .collect(),
        other => panic!("expected MissingShards, got {other}"),
    }
}

#[test]
fn shards_embed_only_their_images_and_the_merge_equals_a_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 12);
    let ds = scan_image_folder("shapes", &root, 0.2, 0.2, 1).unwrap();
    let counts = per_shard(&ds, 4);
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
    let single = extract(
        &ds,
        &MeanColour::new(usize::MAX),
        &Cache::new(dir.path().join("single")),
        &opts(4, 1),
    )
    .unwrap();
    assert_eq!(single.outputs.len(), 3);

    let cache = Cache::new(dir.path().join("shared"));
    for k in [0, 1, 3] {
        let r = shard(&ds, &cache, k, 4);
        assert_eq!((r.computed, r.reused), (counts[k], 0), "shard {k}/4");
        assert_eq!(r.elsewhere, ds.items.len() - counts[k]);
        assert!(r.outputs.is_empty(), "a shard writes no split files");
        assert!(r.marker.unwrap().ends_with(format!("{k}-of-4.json")));
    }
    let err = merge(&ds, &cache).unwrap_err();
    assert!(err.to_string().contains("--shard 2/4"), "{err}");
    assert_eq!(missing_of(err), [("2/4".to_string(), counts[2], false)]);

    // Rerunning just that index fills it; a rerun of a finished shard
    // computes nothing.
    assert_eq!(shard(&ds, &cache, 2, 4).computed, counts[2]);
    assert_eq!(shard(&ds, &cache, 0, 4).computed, 0);
    let merged = merge(&ds, &cache).unwrap();
    assert_eq!((merged.computed, merged.reused), (0, ds.items.len()));
    assert_eq!(bytes_of(&merged), bytes_of(&single), "merged = single run");

    // The markers cover every image once.
    let by_content = cache.features_dir().join("by-content");
    let content_dir = std::fs::read_dir(&by_content)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (markers, bad) = read_markers(&content_dir.join("done").join(ds.export_key()));
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(markers.len(), 4);
    let total: usize = markers.iter().map(|m| m.hashes.len()).sum();
    let union: BTreeSet<&String> = markers.iter().flat_map(|m| &m.hashes).collect();
    assert_eq!((total, union.len()), (ds.items.len(), ds.items.len()));
}

#[test]
fn added_images_fall_in_their_shards_and_leave_the_others_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 6);
    let cache = Cache::new(dir.path().join("cache"));
    let ds = scan_image_folder("shapes", &root, 0.0, 0.5, 1).unwrap();
    for k in 0..3 {
        shard(&ds, &cache, k, 3);
    }
    merge(&ds, &cache).unwrap();
    // New images: only the shards they hash to are named, and rerunning
    // those computes just the new images.
    let new: Vec<PathBuf> = (0..5)
        .map(|i| root.join("circle").join(format!("new-{i}.png")))
        .collect();
    for (i, p) in new.iter().enumerate() {
        write_png(p, 31, 9 + i as u32, 200 + i as u8);
    }
    let ds = scan_image_folder("shapes", &root, 0.0, 0.5, 1).unwrap();
    let mut want: BTreeMap<usize, usize> = BTreeMap::new();
    for p in &new {
        *want.entry(expected_shard(p, 3)).or_default() += 1;
    }
    let got = missing_of(merge(&ds, &cache).unwrap_err());
    let named: Vec<(String, usize, bool)> = want
        .iter()
        .map(|(&k, &c)| (format!("{k}/3"), c, true))
        .collect();
    assert_eq!(got, named, "a finished shard that lacks the new images");
    for (&k, &c) in &want {
        assert_eq!(shard(&ds, &cache, k, 3).computed, c, "shard {k}/3");
    }
    assert_eq!(merge(&ds, &cache).unwrap().computed, 0);
}

#[test]
fn a_shards_undecodable_image_is_skipped_by_the_merge_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 5);
    let good = std::fs::read(root.join("square/0.png")).unwrap();
    let broken = root.join("square/truncated.png");
    std::fs::write(&broken, &good[..good.len() / 2]).unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let ds = scan_image_folder("shapes", &root, 0.2, 0.2, 1).unwrap();
    let owner = expected_shard(&broken, 2);
    for k in 0..2 {
        let r = shard(&ds, &cache, k, 2);
        assert_eq!(r.failed.len(), usize::from(k == owner), "shard {k}/2");
    }
    let merged = merge(&ds, &cache).unwrap();
    assert_eq!(merged.failed.len(), 1, "{:?}", merged.failed);
    let (key, why) = &merged.failed[0];
    assert!(key.ends_with("truncated.png"), "{key}");
    assert!(why.contains(&format!("(shard {owner}/2)")), "{why}");
    let rows: usize = merged.outputs.iter().map(|o| o.2).sum();
    assert_eq!(rows, 10);
}

#[test]
fn a_merge_with_no_finished_shard_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 3);
    let ds = scan_image_folder("shapes", &root, 0.2, 0.2, 1).unwrap();
    let err = merge(&ds, &Cache::new(dir.path().join("cache"))).unwrap_err();
    assert!(err.to_string().contains("no shard has finished"), "{err}");
    assert!(missing_of(err).is_empty());
}

#[test]
fn bad_shard_values_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (value, why) in [
        ("0/0", "N must be at least 1"),
        ("5/4", "below N = 4"),
        ("4/4", "below N = 4"),
        ("x", "no `/`"),
        ("1/x", "N `x`"),
    ] {
        let out = ovr(&["extract", "--shard", value], dir.path());
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(
            err.contains("--shard") && err.contains(why),
            "{value}: {err}"
        );
    }
    let out = ovr(&["extract", "--shard", "0/4", "--merge"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot be used with"));
}

fn spawn(root: &Path, weights: &Path, cache: &Path, extra: &[&str]) -> Child {
    let mut rest = vec![
        "extract",
        "--batch-size",
        "1",
        "--set",
        "extract.decode_threads=1",
    ];
    rest.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_ovr"))
        .args(image_folder_args(root, weights, &rest))
        .env("OVR_CACHE", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ovr")
}

/// Runs to the end; returns (success, stdout, stderr).
fn run(c: Child) -> (bool, String, String) {
    let out = c.wait_with_output().unwrap();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// The exported split files under `cache/features/<dataset>/`, by name.
fn exports(cache: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for ds in std::fs::read_dir(cache.join("features")).unwrap() {
        let ds = ds.unwrap().path();
        if ds.file_name().unwrap() == "by-content" {
            continue;
        }
        for bb in std::fs::read_dir(&ds).unwrap() {
            for f in std::fs::read_dir(bb.unwrap().path()).unwrap() {
                let p = f.unwrap().path();
                if p.extension().is_some_and(|x| x == "safetensors") {
                    let rel = p.strip_prefix(cache).unwrap().display().to_string();
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    out
}

#[test]
fn four_shard_processes_killed_and_rerun_merge_to_a_single_process_run() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 24);
    let single = dir.path().join("single");
    let (ok, _, err) = run(spawn(&root, &weights, &single, &[]));
    assert!(ok, "{err}");
    let reference = exports(&single);
    assert_eq!(reference.len(), 3, "train, val and test");

    // Shards 0, 1 and 2 at once, 1 and 2 killed together once the three
    // have cached a random number of batches between them (one image per
    // batch); 3 not started yet. The kill follows the count at once: a
    // sleep between them let a fast engine finish both victims first.
    let cache = dir.path().join("shared");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
    let mut kids: Vec<Child> = (0..3)
        .map(|k| spawn(&root, &weights, &cache, &["--shard", &format!("{k}/4")]))
        .collect();
    wait_for_shards(&cache, rng.random_range(2..=6));
    for v in [1usize, 2] {
        let _ = kids[v].kill(); // SIGKILL; a no-op if it already finished
    }
    let mut died = BTreeSet::new();
    for (k, c) in kids.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        if k == 0 {
            assert!(out.status.success(), "{}", text(&out.stderr));
        } else if out.status.code().is_none() {
            died.insert(k);
        }
    }
    assert!(
        !died.is_empty(),
        "both victims had finished before their kill"
    );

    // The merge refuses and names the shards without a done-marker.
    let marker = |k: usize| {
        let by_content = cache.join("features/by-content");
        let d = std::fs::read_dir(by_content).unwrap().next().unwrap();
        let done = d.unwrap().path().join("done");
        std::fs::read_dir(done)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .join(format!("{k}-of-4.json"))
            .exists()
    };
    let unfinished: Vec<usize> = (0..4).filter(|&k| !marker(k)).collect();
    println!("killed by the signal: {died:?}; without a done-marker: {unfinished:?}");
    assert!(unfinished.contains(&3) && !unfinished.contains(&0));
    let (ok, _, err) = run(spawn(&root, &weights, &cache, &["--merge"]));
    assert!(!ok, "merge with shards missing must fail");
    for k in 0..4 {
        let named = err.contains(&format!("--shard {k}/4`"));
        assert_eq!(named, unfinished.contains(&k), "shard {k}: {err}");
    }

    // Rerun just those indices (at once), then merge: nothing computed,
    // the exports equal the single process's byte for byte.
    let reruns: Vec<Child> = unfinished
        .iter()
        .map(|k| spawn(&root, &weights, &cache, &["--shard", &format!("{k}/4")]))
        .collect();
    let mut resumed = 0;
    for c in reruns {
        let (ok, out, err) = run(c);
        assert!(ok, "{err}");
        print!("rerun: {out}");
        if !out.contains("reused 0 from") && !out.contains("shard 3/4") {
            resumed += 1; // a victim's rerun found batches it had cached
        }
    }
    assert!(resumed > 0, "no victim was killed after caching a batch");
    let (ok, out, err) = run(spawn(&root, &weights, &cache, &["--merge"]));
    assert!(ok, "{err}");
    assert!(out.contains("nothing to compute"), "{out}");
    let got = exports(&cache);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>()
    );
    for (p, bytes) in &got {
        assert!(bytes == &reference[p], "{p} differs from the single run");
    }
    let (ok, out, err) = run(spawn(&root, &weights, &cache, &[]));
    assert!(ok && out.contains("nothing to compute"), "{out}{err}");
}
