//! Features that stream: `extract.dtype = "f16"` split files, and
//! `ovr bench train --synthetic N` (the linear heads streamed from a mapped
//! file) as a user runs them.

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
        "3000",
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
        ["3000", "32", "4", "f32", "mapped"],
        "{mapped:?}"
    );
    let memory = bench(dir.path(), &["--in-memory"]);
    assert_eq!(memory[4], "in memory");
    // One block (3000 rows < the default block): the same fits, so the
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
    // 500 rows a block (-> 512): six blocks, fits within rounding, so the
    // accuracies within a row or two of 10,000.
    let blocked = bench(dir.path(), &["--block-rows", "500"]);
    assert_eq!(blocked[5], "512");
    for (b, m) in blocked[12..14].iter().zip(&mapped[12..14]) {
        assert!((pct(b) - pct(m)).abs() <= 0.05, "{blocked:?}");
    }
    // f16 storage: 2 bytes less per feature value.
    let half = bench(dir.path(), &["--dtype", "f16"]);
    assert_eq!(half[3], "f16");
    let mb = |r: &[String]| r[6].parse::<f64>().unwrap();
    let saved = mb(&mapped) - mb(&half);
    assert!(
        (saved - 3000.0 * 32.0 * 2.0 / 1e6).abs() < 0.002,
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
