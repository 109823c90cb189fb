//! Results on stdout read by a consumer that stops early (`ovr score ... |
//! head`): every command that prints results ends quietly with exit code 0,
//! no panic, no backtrace, and still does its work (ensemble saved).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use super::common::{image_folder_args, lite_weights, small_tree};

/// Runs ovr with stdout into a pipe whose read end is closed (at once, or
/// after `read` bytes, like `| head -c`); returns the exit code and stderr.
fn ovr_into_closed_pipe(args: &[&str], cache: &Path, read: usize) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ovr"))
        .args(args)
        .env("OVR_CACHE", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ovr");
    let mut stdout = child.stdout.take().expect("stdout pipe");
    if read > 0 {
        let mut buf = vec![0u8; read];
        stdout.read_exact(&mut buf).expect("first bytes of stdout");
    }
    drop(stdout);
    let out = child.wait_with_output().expect("wait for ovr");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn closed_stdout_pipe_ends_every_command_quietly_with_exit_0() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 6);
    let cache = dir.path().join("cache");
    let ens = dir.path().join("ens");
    let common = image_folder_args(
        &root,
        &weights,
        &[
            "-q",
            "--set",
            "train.c_grid=[0.1]",
            "--set",
            "train.multiclass_c_grid=[0.1]",
        ],
    );
    let with = |rest: &[&str]| -> Vec<String> {
        common
            .iter()
            .cloned()
            .chain(rest.iter().map(|s| s.to_string()))
            .collect()
    };
    let check = |args: Vec<String>, read: usize| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = ovr_into_closed_pipe(&a, &cache, read);
        assert_eq!(code, Some(0), "ovr {a:?} with stdout closed: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "ovr {a:?}: {err}"
        );
    };
    check(with(&["extract"]), 0);
    check(
        with(&["train", "--name", "shapes", "--out", ens.to_str().unwrap()]),
        0,
    );
    // The table went nowhere, but the ensemble was saved before printing.
    assert!(ovr::ensemble::load(&ens.join("shapes")).is_ok());
    let e = ens.join("shapes");
    let e = e.to_str().unwrap();
    check(with(&["compare", "--ensemble", e, "--resamples", "10"]), 0);
    check(with(&["score", "--ensemble", e, root.to_str().unwrap()]), 0);
    check(
        with(&["score", "--ensemble", e, "--jsonl", root.to_str().unwrap()]),
        0,
    );
}
