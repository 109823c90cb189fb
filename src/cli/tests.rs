//! Every shortcut flag, with a non-default value, reaches the resolved config
//! (and wins over `--set`, as documented).

use clap::Parser;

use super::{Args, Command};
use crate::config::{CliSettings, Config, DatasetChoice, DatasetKind};

fn resolved(argv: &[&str]) -> Config {
    let args = Args::try_parse_from(argv).expect("parse");
    let cli = args.cli_settings().expect("settings");
    Config::load_cli(None, &args.set, &cli).expect("resolve")
}

#[test]
fn train_lanes_and_fuse_reach_the_config() {
    let d = resolved(&["ovr", "train"]);
    assert_eq!((d.train.lanes, d.train.fuse), (2, 0), "defaults changed");
    let c = resolved(&["ovr", "train", "--lanes", "1", "--fuse", "3"]);
    assert_eq!((c.train.lanes, c.train.fuse), (1, 3));
    let c = resolved(&["ovr", "train", "--lanes", "5", "--fuse", "1"]);
    assert_eq!((c.train.lanes, c.train.fuse), (5, 1));
}

#[test]
fn shortcut_flags_win_over_set() {
    let c = resolved(&[
        "ovr",
        "--set",
        "train.lanes=4",
        "--set",
        "train.fuse=2",
        "train",
        "--lanes",
        "1",
        "--fuse",
        "7",
    ]);
    assert_eq!((c.train.lanes, c.train.fuse), (1, 7));
    let c = resolved(&[
        "ovr",
        "--set",
        "extract.batch_size=8",
        "extract",
        "--batch-size",
        "3",
    ]);
    assert_eq!(c.extract.batch_size, 3);
}

#[test]
fn extract_batch_size_and_backbone_reach_the_config() {
    let d = resolved(&["ovr", "extract"]);
    assert_eq!(d.extract.batch_size, 32);
    assert_eq!(d.backbone.name, "efficientnet-lite0");
    let c = resolved(&[
        "ovr",
        "extract",
        "--batch-size",
        "7",
        "--backbone",
        "efficientnet-lite2",
    ]);
    assert_eq!(c.extract.batch_size, 7);
    assert_eq!(c.backbone.name, "efficientnet-lite2");
}

#[test]
fn device_reaches_the_config_and_the_lanes() {
    let d = resolved(&["ovr", "train"]);
    assert_eq!(d.device.to_string(), "cpu");
    let c = resolved(&["ovr", "--device", "cuda:1", "train"]);
    assert_eq!(c.device.to_string(), "cuda:1");
    assert_eq!(c.train.device.to_string(), "cuda:1");
    // The device default batch size follows the device.
    assert_eq!(c.extract.batch_size, 256);
}

#[test]
fn shortcuts_of_one_command_do_not_leak_into_another() {
    let args = Args::try_parse_from(["ovr", "train", "--lanes", "3"]).expect("parse");
    let want = CliSettings {
        lanes: Some(3),
        ..CliSettings::default()
    };
    assert_eq!(args.cli_settings().unwrap(), want);
    let args = Args::try_parse_from(["ovr", "extract", "--batch-size", "3"]).expect("parse");
    let want = CliSettings {
        batch_size: Some(3),
        ..CliSettings::default()
    };
    assert_eq!(args.cli_settings().unwrap(), want);
}

#[test]
fn every_set_counts_wherever_it_stands() {
    let argv = [
        "ovr",
        "--set",
        "dataset.kind=\"image-folder\"",
        "--set=dataset.root=\"/data/x\"",
        "extract",
        "--set",
        "extract.decode_threads=1",
        "--batch-size",
        "3",
    ];
    // What clap alone keeps: only the subcommand level's occurrence.
    assert_eq!(
        Args::try_parse_from(argv).unwrap().set,
        vec!["extract.decode_threads=1"]
    );
    let args = Args::parse_all_from(argv);
    assert_eq!(
        args.set,
        vec![
            "dataset.kind=\"image-folder\"",
            "dataset.root=\"/data/x\"",
            "extract.decode_threads=1"
        ]
    );
    let c = Config::load_cli(None, &args.set, &args.cli_settings().unwrap()).unwrap();
    assert_eq!(c.extract.decode_threads, 1);
    assert_eq!(c.extract.batch_size, 3);
    assert!(
        matches!(&c.dataset.kind, crate::config::DatasetKind::ImageFolder { root } if root.ends_with("x")),
        "{:?}",
        c.dataset.kind
    );
    let raw: Vec<std::ffi::OsString> = ["ovr", "--set", "a=1", "--", "--set", "b=2"]
        .iter()
        .map(Into::into)
        .collect();
    assert_eq!(super::set_occurrences(&raw), vec!["a=1"]);
}

#[test]
fn holdout_classes_reaches_the_config_and_the_saved_toml() {
    let d = resolved(&["ovr", "train"]);
    assert_eq!(d.train.holdout_classes, 0, "default changed");
    let c = resolved(&["ovr", "train", "--holdout-classes", "3"]);
    assert_eq!(c.train.holdout_classes, 3);
    let saved: toml::Table = c.source_toml.parse().unwrap();
    assert_eq!(saved["train"]["holdout_classes"].as_integer(), Some(3));
    // Checked by the one resolver: out of range names the field.
    let args = Args::try_parse_from(["ovr", "train", "--lanes", "65"]).unwrap();
    let err = Config::load_cli(None, &[], &args.cli_settings().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train.lanes") && err.contains("1..=64"),
        "{err}"
    );
}

#[test]
fn run_root_sets_the_dataset_over_set_and_keeps_other_fields() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pets");
    std::fs::create_dir_all(&root).unwrap();
    let root_s = root.to_str().unwrap();
    let c = resolved(&[
        "ovr",
        "--set",
        "dataset.root=\"/elsewhere\"",
        "--set",
        "seed=9",
        "run",
        root_s,
        "--lanes",
        "1",
        "--fuse",
        "4",
    ]);
    assert_eq!(
        c.dataset.kind,
        DatasetKind::ImageFolder { root: root.clone() }
    );
    assert_eq!(c.dataset.name, "pets");
    assert_eq!((c.seed, c.train.lanes, c.train.fuse), (9, 1, 4));
    // A known dataset name (no such folder here) clears a configured root.
    let c = resolved(&[
        "ovr",
        "--set",
        "dataset.root=\"/elsewhere\"",
        "run",
        "fashion-mnist",
    ]);
    assert_eq!(c.dataset.kind, DatasetKind::FashionMnist);
    let args = Args::try_parse_from(["ovr", "run", "emoji40", "--report", "r.html"]).unwrap();
    let Command::Run(r) = &args.command else {
        panic!("not run")
    };
    assert_eq!(r.report, std::path::PathBuf::from("r.html"));
    assert_eq!(
        args.cli_settings().unwrap().dataset,
        Some(DatasetChoice::Named("emoji40".into()))
    );
    let d = Args::try_parse_from(["ovr", "run", "emoji40"]).unwrap();
    let Command::Run(r) = &d.command else {
        panic!("not run")
    };
    assert_eq!(r.report, std::path::PathBuf::from("report.html"), "default");
    let bad = Args::try_parse_from(["ovr", "run", "/no/such/dir/x"]).unwrap();
    let err = bad.cli_settings().unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("emoji40, fashion-mnist"), "{err}");
}

#[test]
fn compare_split_takes_only_the_split_table() {
    let a = Args::try_parse_from(["ovr", "compare", "--ensemble", "e", "--split", "val"]).unwrap();
    let Command::Compare(c) = &a.command else {
        panic!("not compare")
    };
    assert_eq!(c.split, crate::images::dataset::Split::Val);
    let err = Args::try_parse_from(["ovr", "compare", "--ensemble", "e", "--split", "dev"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("train") && err.contains("test"), "{err}");
}

#[test]
fn device_applies_to_compare_and_study_settings_too() {
    for argv in [
        ["ovr", "--device", "cuda:2", "compare", "--ensemble", "e"].as_slice(),
        ["ovr", "--device", "cuda:2", "study", "s.toml"].as_slice(),
    ] {
        let a = Args::try_parse_from(argv).unwrap();
        let s = a.cli_settings().unwrap();
        assert_eq!(s.device.as_deref(), Some("cuda:2"), "{argv:?}");
        assert_eq!(s.lanes, None);
    }
}
