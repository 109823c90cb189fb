//! Features that stream: `extract.dtype = "f16"` split files,
//! `ovr bench train --synthetic N` (the linear heads streamed from a mapped
//! file) and `ovr train` with `train.block_rows`, as a user runs them.

use std::path::{Path, PathBuf};

use ovr::features::feature_set::{FeatureDtype, FeatureSet};
use ovr::features::mapped::MappedFeatures;

use super::common::{image_folder_args, lite_weights, ovr, small_tree, text};

/// The last Markdown row of a bench table, split into cells.
fn last_row(out: &str) -> Vec<String> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with("| "))
        .unwrap_or("");
    line.trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

fn bench(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "bench",
        "train",
        "--synthetic",
        "9000",
        "--dim",
        "32",
        "--classes",
        "4",
        "--max-iter",
        "100",
        "--dir",
    ];
    let d = dir.display().to_string();
    args.push(&d);
    args.extend(extra);
    let out = ovr(&args, &dir.join("cache"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    last_row(&text(&out.stdout))
}

#[test]
fn bench_train_synthetic_streams_like_the_in_memory_path() {
    let dir = tempfile::tempdir().unwrap();
    // Columns: N D K dtype path block file-MB write train OvR softmax RSS acc-ovr acc-softmax acc-bayes.
    let mapped = bench(dir.path(), &[]);
    assert_eq!(
        &mapped[..5],
        ["9000", "32", "4", "f32", "mapped"],
        "{mapped:?}"
    );
    let memory = bench(dir.path(), &["--in-memory"]);
    assert_eq!(memory[4], "in memory");
    // One block (9000 rows < the default block): the same fits, so the
    // same held-out accuracies, which approach the Bayes rule's.
    assert_eq!(mapped[12..], memory[12..]);
    let pct = |s: &str| s.trim_end_matches('%').parse::<f64>().unwrap();
    let bayes = pct(&mapped[14]);
    assert!(bayes > 60.0 && bayes < 95.0, "{mapped:?}");
    assert!(
        pct(&mapped[12]) > bayes - 5.0 && pct(&mapped[13]) > bayes - 5.0,
        "{mapped:?}"
    );
    assert!(
        mapped[11].parse::<u64>().unwrap() > 0,
        "peak RSS {mapped:?}"
    );
    // 500 rows a block (-> 4096, whole reduction units): three blocks,
    // bitwise the same fits, so the same accuracies.
    let blocked = bench(dir.path(), &["--block-rows", "500"]);
    assert_eq!(blocked[5], "4096");
    assert_eq!(blocked[12..], mapped[12..]);
    // f16 storage: 2 bytes less per feature value.
    let half = bench(dir.path(), &["--dtype", "f16"]);
    assert_eq!(half[3], "f16");
    let mb = |r: &[String]| r[6].parse::<f64>().unwrap();
    let saved = mb(&mapped) - mb(&half);
    assert!(
        (saved - 9000.0 * 32.0 * 2.0 / 1e6).abs() < 0.002,
        "{half:?} {mapped:?}"
    );
    // The temporary file is gone; a bad option is refused.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("ovr-bench"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let bad = ovr(
        &["bench", "train", "--synthetic", "10", "--dtype", "f8"],
        &dir.path().join("c"),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("f8"), "{}", text(&bad.stderr));
}

fn split_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "train.safetensors") {
                found.push(p);
            }
        }
    }
    found
}

#[test]
fn extract_dtype_f16_writes_half_precision_splits_that_train() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 6);
    let run = |cache: &str, rest: &[&str]| {
        let out = ovr(
            &image_folder_args(&root, &weights, rest),
            &dir.path().join(cache),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    run("c32", &["extract"]);
    run("c16", &["--set", "extract.dtype=\"f16\"", "extract"]);
    let (f32s, f16s) = (
        split_files(&dir.path().join("c32")),
        split_files(&dir.path().join("c16")),
    );
    assert_eq!((f32s.len(), f16s.len()), (1, 1));
    assert_eq!(
        MappedFeatures::open(&f32s[0]).unwrap().dtype,
        FeatureDtype::F32
    );
    assert_eq!(
        MappedFeatures::open(&f16s[0]).unwrap().dtype,
        FeatureDtype::F16
    );
    let (a, b) = (
        FeatureSet::load(&f32s[0]).unwrap(),
        FeatureSet::load(&f16s[0]).unwrap(),
    );
    assert_eq!(
        (a.keys.clone(), a.labels.clone()),
        (b.keys.clone(), b.labels.clone())
    );
    let rounded: Vec<f32> = a
        .features
        .iter()
        .map(|&v| half::f16::from_f32(v).to_f32())
        .collect();
    assert_eq!(b.features, rounded);
    assert_ne!(b.features, a.features);
    let ens = dir.path().join("ens").display().to_string();
    run("c16", &["train", "--name", "half", "--out", &ens]);
    assert!(dir.path().join("ens/half/manifest.json").exists());
    let bad = ovr(
        &image_folder_args(
            &root,
            &weights,
            &["--set", "extract.dtype=\"f8\"", "extract"],
        ),
        &dir.path().join("c16"),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("extract.dtype"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn ovr_train_streams_the_mapped_split_to_the_same_heads() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 6);
    let ens = dir.path().join("ens").display().to_string();
    let cache = dir.path().join("cache");
    let train = |name: &str, rest: &[&str]| {
        let mut args = rest.to_vec();
        args.extend(["train", "-v", "--name", name, "--out", &ens]);
        ovr(&image_folder_args(&root, &weights, &args), &cache)
    };
    let memory = train("memory", &[]);
    assert!(memory.status.success(), "{}", text(&memory.stderr));
    let streamed = train("streamed", &["--set", "train.block_rows=1"]);
    let err = text(&streamed.stderr);
    assert!(streamed.status.success(), "{err}");
    // The mapped path ran: blocks of one 4096-row unit, every row read
    // from the file.
    assert!(err.contains("streamed in blocks of 4096 rows"), "{err}");
    assert!(err.contains("in blocks of at most"), "{err}");
    assert!(!text(&memory.stderr).contains("streamed"));
    // ... and trained bitwise the heads of the in-memory run.
    let heads =
        |n: &str| std::fs::read(dir.path().join("ens").join(n).join("heads.safetensors")).unwrap();
    assert_eq!(heads("memory"), heads("streamed"));
    let manifest = std::fs::read_to_string(dir.path().join("ens/streamed/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"block_rows\": 4096") || manifest.contains("\"block_rows\": 1"),
        "{manifest}"
    );
    // What needs the whole matrix is refused before training, named.
    for (set, field) in [
        ("train.specialist_head=\"mlp\"", "train.specialist_head"),
        ("train.multiclass_head=\"mlp\"", "train.multiclass_head"),
        ("train.calibration_split=0.2", "train.calibration_split"),
        ("train.holdout_classes=1", "train.holdout_classes"),
        ("backbone.features=\"logits\"", "backbone.features"),
    ] {
        let out = train("refused", &["--set", "train.block_rows=4096", "--set", set]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{set}: {err}");
        assert!(
            err.contains(field) && err.contains("block_rows"),
            "{set}: {err}"
        );
        assert!(!dir.path().join("ens/refused").exists(), "{set}");
    }
    let bad = train("bad", &["--set", "train.block_rows=0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("train.block_rows"),
        "{}",
        text(&bad.stderr)
    );
}
