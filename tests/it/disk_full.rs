//! A full disk during `ovr extract`, simulated with RLIMIT_FSIZE (`ulimit -f`
//! in a shell that ignores SIGXFSZ, so writes fail with EFBIG): a clear error
//! naming the file, no partial or temp files, every cached shard still valid,
//! and the next run resumes from the cache.

use std::path::Path;
use std::process::{Command, Output};

use ovr::features::store::FeatureCache;

use super::common::{image_folder_args, lite_weights, small_tree};

/// Runs ovr with files limited to `blocks` x 512 bytes (unlimited: None).
fn ovr_limited(args: &[String], cache: &Path, blocks: Option<u64>) -> Output {
    let limit = blocks.map_or("unlimited".to_string(), |b| b.to_string());
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {limit} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_ovr"))
        .args(args)
        .env("OVR_CACHE", cache)
        .output()
        .expect("run sh")
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[cfg(unix)]
#[test]
fn extract_on_a_full_disk_fails_clearly_and_resumes() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 4);
    let cache = dir.path().join("cache");
    let args = image_folder_args(
        &root,
        &weights,
        &[
            "--set",
            "dataset.val_fraction=0.0",
            "--set",
            "dataset.test_fraction=0.0",
            "extract",
            "--batch-size",
            "1",
        ],
    );
    // 12 KiB per file: every one-image shard (5 KiB) fits, the 8-image
    // train export (40 KiB) does not.
    let full = ovr_limited(&args, &cache, Some(24));
    let err = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{err}");
    assert!(
        err.contains("train.safetensors") && err.contains("File too large"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let mut files = Vec::new();
    files_under(&cache.join("features"), &mut files);
    assert!(
        files.iter().all(|p| !p.to_string_lossy().contains(".tmp-")),
        "temp files left: {files:?}"
    );
    let shard_dir = files
        .iter()
        .find(|p| p.to_string_lossy().contains("by-content"))
        .and_then(|p| p.parent())
        .expect("shards were written before the disk filled")
        .to_path_buf();
    let (c, bad) = FeatureCache::open(&shard_dir, 1280).unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(c.len(), 8);
    let again = ovr_limited(&args, &cache, None);
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(out.contains("nothing to compute: 8 images reused"), "{out}");
}
