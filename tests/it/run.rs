//! `ovr run ROOT` as a first-time user runs it: one command from an
//! ImageFolder to the comparison table and the HTML report, with the config
//! still settable through `--set` and the shortcut flags.

use super::common::{lite_weights, ovr, small_tree, text};

#[test]
fn run_on_an_image_folder_extracts_trains_compares_and_writes_the_report() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 10);
    let cache = dir.path().join("cache");
    let ens = dir.path().join("ens");
    let report = dir.path().join("out/first.html");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    let args: Vec<String> = [
        "--set",
        &format!("backbone.weights=\"{}\"", weights.display()),
        // Non-default values whose effects are visible below.
        "--set",
        "dataset.name=tiny",
        "--set",
        "train.multiclass_class_weight=\"balanced\"",
        "run",
        root.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--name",
        "shapes-run",
        "--out",
        ens.to_str().unwrap(),
        "--lanes",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = ovr(&args, &cache);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Every stage ran: extraction, training (its table), the comparison.
    assert!(stdout.contains("computed 20 images"), "{stdout}");
    assert!(stdout.contains("| multiclass |"), "{stdout}");
    assert!(stdout.contains("shapes-run on tiny / test"), "{stdout}");
    assert!(stdout.contains("| specialists-calibrated |"), "{stdout}");
    assert!(stderr.contains(", 1 lane(s)"), "{stderr}");
    let html = std::fs::read_to_string(&report).expect("report written");
    assert!(html.starts_with("<!DOCTYPE html>"), "html");
    assert!(html.contains("shapes-run"), "the report names the ensemble");
    // The overrides reached the saved ensemble.
    let e = ovr::ensemble::load(&ens.join("shapes-run")).unwrap();
    assert_eq!(e.manifest.dataset, "tiny");
    assert_eq!(
        e.manifest.multiclass.weighting,
        ovr::heads::ClassWeighting::Balanced
    );
    let saved: toml::Table = e.manifest.config_toml.parse().unwrap();
    assert_eq!(saved["train"]["lanes"].as_integer(), Some(1), "{saved}");
    assert_eq!(
        saved["dataset"]["root"].as_str(),
        Some(root.to_str().unwrap())
    );
    // A second run reuses every feature.
    let again = ovr(&args, &cache);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("nothing to compute: 20 images reused"),
        "{}",
        text(&again.stdout)
    );
}

#[test]
fn run_on_a_missing_folder_is_a_usage_error_naming_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    let out = ovr(
        &["run", missing.to_str().unwrap()],
        &dir.path().join("cache"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("no such folder") && err.contains("emoji40, fashion-mnist"),
        "{err}"
    );
}
