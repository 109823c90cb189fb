//! Ctrl-C (SIGINT) during `ovr train`: the run says it was interrupted,
//! exits non-zero, saves nothing, and the ensemble already saved under the
//! same name is left byte for byte as it was.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{image_folder_args, lite_weights, small_tree};

/// Every file under `dir` with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn ctrl_c_during_train_saves_nothing_and_keeps_the_old_ensemble() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 8);
    let cache = dir.path().join("cache");
    let ens = dir.path().join("ens");
    let run = |rest: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ovr"));
        c.args(image_folder_args(&root, &weights, rest))
            .env("OVR_CACHE", &cache);
        c
    };
    let first = run(&[
        "-q",
        "--set",
        "train.c_grid=[0.1]",
        "--set",
        "train.multiclass_c_grid=[0.1]",
        "train",
        "--name",
        "shapes",
        "--out",
        ens.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = snapshot(&ens.join("shapes"));
    assert!(!before.is_empty());

    // A long training: 400 C values per path, one job at a time.
    let grid: Vec<String> = (0..400)
        .map(|i| format!("{:e}", 10f64.powf(-4.0 + 8.0 * i as f64 / 399.0)))
        .collect();
    let c_grid = format!("train.c_grid=[{}]", grid.join(", "));
    let mc_grid = format!("train.multiclass_c_grid=[{}]", grid.join(", "));
    let mut child = run(&[
        "--set",
        &c_grid,
        "--set",
        &mc_grid,
        "--set",
        "train.tol=1e-12",
        "--set",
        "train.warm_start=false",
        "train",
        "--name",
        "shapes",
        "--out",
        ens.to_str().unwrap(),
        "--lanes",
        "1",
        "--fuse",
        "1",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "train ended before training: {seen}"
        );
        seen.push_str(&line);
        if line.starts_with("training ") {
            break;
        }
    }
    let t0 = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    err.read_to_string(&mut seen).unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("train did not stop within 120 s of Ctrl-C: {seen}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("stopped {:.2} s after Ctrl-C", t0.elapsed().as_secs_f64());
    assert_eq!(status.code(), Some(1), "{seen}");
    assert!(
        seen.contains("interrupted: finishing the jobs in hand, nothing will be saved"),
        "{seen}"
    );
    assert!(seen.contains("training was interrupted"), "{seen}");
    assert_eq!(
        snapshot(&ens.join("shapes")),
        before,
        "the old ensemble is intact"
    );
    let left: Vec<_> = std::fs::read_dir(&ens).unwrap().collect();
    assert_eq!(left.len(), 1, "nothing else saved: {left:?}");
}
