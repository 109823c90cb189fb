//! Concurrent `ovr extract` *processes* (real Lite0) on one cache: two and
//! four at once, on different and overlapping folders, some killed with
//! SIGKILL mid-run and run again. Afterwards nothing is lost (a last run of
//! every folder computes nothing), no shard is damaged, and every exported
//! split file is byte-identical to the one a single process wrote into a
//! cache of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use ovr::features::store::FeatureCache;
use rand::{Rng, SeedableRng};

use super::common::{image_folder_args, lite_weights, wait_for_shards, write_png};

/// Four folders: `a` and `b` disjoint; `c` holds half of `a` and half of
/// `b` (same bytes); `d` holds all of `b` plus two images of its own.
fn folders(root: &Path) -> Vec<PathBuf> {
    let img = |folder: &str, class: &str, i: usize, seed: u8| {
        let p = root.join(folder).join(class).join(format!("{i}.png"));
        write_png(&p, 20 + i as u32, 18, seed);
    };
    for i in 0..5 {
        img("a", "circle", i, i as u8);
        img("a", "square", i, 40 + i as u8);
        img("b", "circle", i, 80 + i as u8);
        img("b", "square", i, 120 + i as u8);
        img("d", "circle", i, 80 + i as u8);
        img("d", "square", i, 120 + i as u8);
    }
    for i in 0..3 {
        img("c", "circle", i, i as u8);
        img("c", "square", i, 120 + i as u8);
    }
    img("d", "circle", 9, 200);
    img("d", "square", 9, 220);
    ["a", "b", "c", "d"].iter().map(|f| root.join(f)).collect()
}

fn args(folder: &Path, weights: &Path) -> Vec<String> {
    image_folder_args(
        folder,
        weights,
        &[
            "extract",
            "--batch-size",
            "2",
            "--set",
            "extract.decode_threads=1",
        ],
    )
}

fn spawn(folder: &Path, weights: &Path, cache: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ovr"))
        .args(args(folder, weights))
        .env("OVR_CACHE", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ovr")
}

fn finished(c: Child, what: &str) -> Output {
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every exported `.safetensors` under `cache/features` (not the by-content
/// shards), by path relative to the cache, with its bytes.
fn exports(cache: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && p.file_name().unwrap() != "by-content" {
                walk(&p, base, out);
            } else if p.extension().is_some_and(|x| x == "safetensors") {
                let rel = p.strip_prefix(base).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&cache.join("features"), cache, &mut out);
    out
}

/// A last run of every folder computes nothing, the shards are sound, and
/// the exports equal the single-process reference byte for byte.
fn check_nothing_lost(
    folders: &[PathBuf],
    weights: &Path,
    cache: &Path,
    reference: &BTreeMap<PathBuf, Vec<u8>>,
    what: &str,
) {
    for f in folders {
        let out = finished(spawn(f, weights, cache), what);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("nothing to compute"),
            "{what}, {}: {text}",
            f.display()
        );
    }
    let by_content = cache.join("features/by-content");
    for e in std::fs::read_dir(&by_content).unwrap() {
        let (_, bad) = FeatureCache::open(&e.unwrap().path(), 1280).unwrap();
        assert!(bad.is_empty(), "{what}: damaged shards {bad:?}");
    }
    let got = exports(cache);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (p, bytes) in &got {
        assert!(
            bytes == &reference[p],
            "{what}: {} differs from the single run",
            p.display()
        );
    }
}

#[test]
fn concurrent_and_killed_extract_processes_equal_a_single_run() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let folders = folders(&dir.path().join("images"));
    let single = dir.path().join("single");
    for f in &folders {
        finished(spawn(f, &weights, &single), "single run");
    }
    let reference = exports(&single);
    assert_eq!(reference.len(), 4 * 3, "4 folders x train/val/test");

    // Two processes at once: different folders, then overlapping ones.
    for (round, pair) in [[0usize, 1], [2, 3]].iter().enumerate() {
        let cache = dir.path().join(format!("two-{round}"));
        let kids: Vec<Child> = pair
            .iter()
            .map(|&i| spawn(&folders[i], &weights, &cache))
            .collect();
        for k in kids {
            finished(k, "two at once");
        }
        let mine: Vec<PathBuf> = pair.iter().map(|&i| folders[i].clone()).collect();
        let want: BTreeMap<PathBuf, Vec<u8>> = exports(&cache)
            .keys()
            .map(|p| (p.clone(), reference[p].clone()))
            .collect();
        assert_eq!(want.len(), 2 * 3);
        check_nothing_lost(&mine, &weights, &cache, &want, "two processes");
    }

    // Four at once on one cache, two of them killed once the four have
    // cached a random number of batches between them (too few for a victim
    // to have finished: each needs four batches of its own), then the
    // killed ones run again.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut killed = 0;
    for round in 0..2 {
        let cache = dir.path().join(format!("four-{round}"));
        let mut kids: Vec<Child> = folders.iter().map(|f| spawn(f, &weights, &cache)).collect();
        wait_for_shards(&cache, rng.random_range(1..=3));
        let victims = [round, round + 2];
        for &v in &victims {
            let _ = kids[v].kill(); // SIGKILL; a no-op if it already finished
        }
        for (i, k) in kids.into_iter().enumerate() {
            let out = k.wait_with_output().unwrap();
            if !victims.contains(&i) {
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            } else if out.status.code().is_none() {
                killed += 1; // died of the signal, mid-run
            }
        }
        for &v in &victims {
            finished(spawn(&folders[v], &weights, &cache), "rerun after kill -9");
        }
        check_nothing_lost(
            &folders,
            &weights,
            &cache,
            &reference,
            "four processes, two killed",
        );
    }
    println!("{killed} of 4 victims killed mid-run");
    assert!(killed > 0, "every victim had finished before its kill");
}
