//! The `ovr` binary as a user runs it: exit codes, errors on stderr that
//! name the field, results on stdout, a second extract that computes nothing.

use super::common::{image_folder_args, lite_weights, ovr, small_tree, text};

#[test]
fn bad_config_value_names_field_and_allowed_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = ovr(&["--set", "extract.resize=stretch", "extract"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("extract.resize") && err.contains("center-crop, squash"),
        "{err}"
    );
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[backbone]\nnmae = \"x\"\n").unwrap();
    let out = ovr(&["--config", cfg.to_str().unwrap(), "extract"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nmae"), "{}", text(&out.stderr));
}

#[test]
fn unknown_weights_list_the_allowed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = ovr(&["fetch", "weights", "efficientnet-b7"], dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("efficientnet-lite0"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn extract_image_folder_twice_with_real_lite0() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 4);
    std::fs::write(root.join("circle/broken.jpg"), b"not an image").unwrap();
    let cache = dir.path().join("cache");
    let args = image_folder_args(&root, &weights, &["extract", "--batch-size", "3"]);
    let first = ovr(&args, &cache);
    let out = text(&first.stdout);
    assert!(first.status.success(), "{out}\n{}", text(&first.stderr));
    assert!(out.contains("computed 8 images"), "{out}");
    assert!(out.contains("broken.jpg"), "{out}");
    let second = ovr(&args, &cache);
    let out2 = text(&second.stdout);
    assert!(second.status.success());
    assert!(
        out2.contains("nothing to compute: 8 images reused"),
        "{out2}"
    );
}

#[test]
fn train_on_an_image_folder_saves_an_ensemble() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 6);
    let cache = dir.path().join("cache");
    let out_dir = dir.path().join("ens");
    let out = ovr(
        &image_folder_args(
            &root,
            &weights,
            &[
                "--set",
                "train.c_grid=[0.01, 0.1]",
                "train",
                "--name",
                "shapes",
                "--out",
                out_dir.to_str().unwrap(),
                "--lanes",
                "1",
                "--fuse",
                "3",
            ],
        ),
        &cache,
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The shortcut flags (non-default values) reach the run.
    assert!(stderr.contains(", 1 lane(s)"), "{stderr}");
    assert!(
        stdout.contains("| circle |") && stdout.contains("| multiclass |"),
        "{stdout}"
    );
    assert!(stdout.contains("validation (2 images)"), "{stdout}");
    let e = ovr::ensemble::load(&out_dir.join("shapes")).unwrap();
    assert_eq!(e.manifest.classes, vec!["circle", "square"]);
    assert_eq!(e.manifest.feature_dim, 1280);
    let saved: toml::Table = e.manifest.config_toml.parse().unwrap();
    assert_eq!(saved["train"]["lanes"].as_integer(), Some(1), "{saved}");
    assert_eq!(saved["train"]["fuse"].as_integer(), Some(3), "{saved}");
    let out = ovr(
        &[
            "train",
            "--name",
            "../escape",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &cache,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("ensemble name"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn empty_class_folder_fails_extract_naming_the_folder() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 3);
    let empty = root.join("triangle");
    std::fs::create_dir_all(&empty).unwrap();
    let out = ovr(
        &image_folder_args(&root, &weights, &["extract"]),
        &dir.path().join("cache"),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&empty.display().to_string()), "{err}");
    assert!(err.contains("without any image file"), "{err}");
}
