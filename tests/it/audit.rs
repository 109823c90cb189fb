//! `ovr audit` as a user runs it: a tree with one training image copied
//! into test; the copy is found as a leaked test image with its training
//! twin, `--json` and `--report` are written (thumbnails embedded, nothing
//! external), and `[audit]` overrides take effect.

use super::common::{image_folder_args, lite_weights, ovr, text, write_png};

#[test]
fn a_training_image_copied_into_test_is_reported_as_leaked() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    for (s, split) in ["train", "val", "test"].iter().enumerate() {
        for (c, class) in ["circle", "square"].iter().enumerate() {
            let n = if *split == "train" { 6 } else { 3 };
            for i in 0..n {
                let seed = (s * 80 + c * 40 + i * 7) as u8;
                let path = root.join(split).join(class).join(format!("{i}.png"));
                write_png(&path, 24 + i as u32, 18 + c as u32, seed);
            }
        }
    }
    let twin = root.join("train/circle/2.png");
    let copy = root.join("test/circle/copy.png");
    std::fs::copy(&twin, &copy).unwrap();
    let cache = dir.path().join("cache");
    let (json, html) = (dir.path().join("a.json"), dir.path().join("a.html"));
    let args = image_folder_args(
        &root,
        &weights,
        &[
            "-q",
            "--set",
            "train.multiclass_c_grid=[0.1, 1.0]",
            "--set",
            "audit.duplicate_cosine=0.9999",
            "--set",
            "audit.folds=3",
            "audit",
            "--json",
            json.to_str().unwrap(),
            "--report",
            html.to_str().unwrap(),
        ],
    );
    let out = ovr(&args, &cache);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("test images with a near-duplicate in train: 1 of 7"),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let leaked = v["duplicates"]["test_leaked"].as_array().unwrap();
    assert_eq!(leaked.len(), 1, "{leaked:?}");
    assert!(leaked[0]["key"]
        .as_str()
        .unwrap()
        .ends_with("test/circle/copy.png"));
    assert!(leaked[0]["train_key"]
        .as_str()
        .unwrap()
        .ends_with("train/circle/2.png"));
    assert_eq!(v["settings"]["duplicate_cosine"], 0.9999);
    assert_eq!(v["label_errors"]["folds"], 3);
    assert_eq!(v["label_errors"]["c_per_fold"].as_array().unwrap().len(), 3);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("data:image/png;base64,iVBORw0KGgo"));
    assert!(!page.contains("src=\"http") && !page.contains("<script"));
}
