//! `ovr score` on a labelled folder holding a class the ensemble does not
//! know: every image is scored, the class is named and kept out of the
//! metrics; `--approach`, `--jsonl`, `--top-k` and `--out` (non-default
//! values) each change the output the way they say.

use std::path::Path;

use super::common::{image_folder_args, lite_weights, ovr, text, write_png};

fn tree(root: &Path, classes: &[(&str, usize, u8)]) {
    for &(name, n, base) in classes {
        for i in 0..n {
            let p = root.join(name).join(format!("{i}.png"));
            write_png(&p, 18 + i as u32, 14 + i as u32, base.wrapping_add(i as u8));
        }
    }
}

fn args(rest: &[&str]) -> Vec<String> {
    rest.iter().map(|s| s.to_string()).collect()
}

#[test]
fn score_names_unknown_classes_and_every_option_shows() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let (train_root, score_root) = (dir.path().join("shapes"), dir.path().join("new"));
    tree(
        &train_root,
        &[("circle", 8, 0), ("square", 8, 90), ("stripe", 8, 180)],
    );
    tree(
        &score_root,
        &[("circle", 3, 10), ("mystery", 4, 40), ("square", 2, 100)],
    );
    let cache = dir.path().join("cache");
    let ens_dir = dir.path().join("ens");
    let train = image_folder_args(
        &train_root,
        &weights,
        &[
            "-q",
            "--set",
            "train.c_grid=[0.1]",
            "--set",
            "train.multiclass_c_grid=[0.1]",
            "train",
            "--name",
            "shapes",
            "--out",
            ens_dir.to_str().unwrap(),
        ],
    );
    let out = ovr(&train, &cache);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let e = ens_dir.join("shapes").display().to_string();
    let s = score_root.display().to_string();
    let score = |extra: &[&str]| {
        let mut a = args(&["score", "--ensemble", &e]);
        a.extend(args(extra));
        a.push(s.clone());
        let out = ovr(&a, &cache);
        assert!(out.status.success(), "{a:?}: {}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };

    // Default: CSV, calibrated argmax, top-5 (all 3 classes).
    let (csv, err) = score(&[]);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "path,label,predicted,probability,top_k");
    assert_eq!(rows.len(), 1 + 9, "every image scored:\n{csv}");
    let labels: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(labels.iter().filter(|l| **l == "mystery").count(), 4);
    for r in &rows[1..] {
        let predicted = r.split(',').nth(2).unwrap();
        assert!(["circle", "square", "stripe"].contains(&predicted), "{r}");
        assert_eq!(r.rsplit(',').next().unwrap().split(';').count(), 3, "{r}");
    }
    assert!(
        err.contains("4 image(s) in classes unknown to the ensemble")
            && err.contains("left out of the metrics): mystery"),
        "{err}"
    );
    assert!(err.contains("5 labelled images: accuracy"), "{err}");
    assert!(
        err.contains("scored 9 images with specialists-calibrated"),
        "{err}"
    );

    // --top-k 2: two classes per row, in decreasing probability.
    let (csv2, _) = score(&["--top-k", "2"]);
    for r in csv2.lines().skip(1) {
        let top: Vec<f32> = r
            .rsplit(',')
            .next()
            .unwrap()
            .split(';')
            .map(|t| t.rsplit(':').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(top.len(), 2, "{r}");
        assert!(top[0] >= top[1], "{r}");
    }

    // --approach multiclass-raw: named, and other probabilities.
    let (csv3, err3) = score(&["--approach", "multiclass-raw"]);
    assert!(
        err3.contains("scored 9 images with multiclass-raw"),
        "{err3}"
    );
    assert_eq!(csv3.lines().count(), 10);
    assert_ne!(csv3, csv, "another approach, other probabilities");

    // --jsonl --top-k 1 --out FILE: JSON lines in the file, diagnostics on stdout.
    let file = dir.path().join("scores.jsonl");
    let (stdout, _) = score(&["--jsonl", "--top-k", "1", "--out", file.to_str().unwrap()]);
    assert!(stdout.contains("scored 9 images"), "{stdout}");
    assert!(stdout.contains("mystery"), "{stdout}");
    let body = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 9);
    let mut unknown = 0;
    for v in &lines {
        let top = v["top"].as_array().unwrap();
        assert_eq!(top.len(), 1, "{v}");
        assert_eq!(top[0]["class"], v["predicted"], "{v}");
        unknown += usize::from(v["label"] == "mystery");
    }
    assert_eq!(unknown, 4);
}
