//! Every shortcut flag, with a non-default value, reaches the resolved config
//! (and wins over `--set`, as documented).

use clap::Parser;

use super::Args;
use crate::config::Config;

fn resolved(argv: &[&str]) -> Config {
    let args = Args::try_parse_from(argv).expect("parse");
    Config::load(None, &args.overrides()).expect("resolve")
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
    assert_eq!(args.overrides(), vec!["train.lanes=3".to_string()]);
    let args = Args::try_parse_from(["ovr", "extract", "--batch-size", "3"]).expect("parse");
    assert_eq!(args.overrides(), vec!["extract.batch_size=3".to_string()]);
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
    let c = Config::load(None, &args.overrides()).unwrap();
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
