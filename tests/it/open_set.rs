//! "None of these" as a user runs it: `train --holdout-classes K` leaves
//! classes out, `compare` scores their test images (and `--unknown` images)
//! as unknown in `--json`, and `score --abstain P` predicts `unknown` below
//! the threshold; every option with a non-default value and its effect.

use std::path::Path;

use super::common::{image_folder_args, lite_weights, ovr, text, write_png};

fn run(args: &[String], cache: &Path) -> (bool, String, String) {
    let out = ovr(args, cache);
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn ok(args: &[String], cache: &Path) -> String {
    let (success, stdout, stderr) = run(args, cache);
    assert!(success, "ovr {args:?}: {stderr}");
    stdout
}

#[test]
fn held_out_classes_and_extra_images_are_scored_as_unknown() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("four");
    for (c, name) in ["a", "b", "c", "d"].iter().enumerate() {
        for i in 0..10 {
            write_png(
                &root.join(name).join(format!("{i}.png")),
                24 + i,
                20,
                (c * 60 + i as usize) as u8,
            );
        }
    }
    let extra = dir.path().join("extra");
    for i in 0..3 {
        write_png(&extra.join(format!("x{i}.png")), 30, 30, 200 + i as u8);
    }
    let cache = dir.path().join("cache");
    let ens = dir.path().join("ens");
    let grid = [
        "-q",
        "--set",
        "train.c_grid=[0.1]",
        "--set",
        "train.multiclass_c_grid=[0.1]",
    ];
    let with = |rest: &[&str]| image_folder_args(&root, &weights, &[&grid[..], rest].concat());
    let out = ens.to_str().unwrap();
    ok(
        &with(&[
            "train",
            "--name",
            "o",
            "--out",
            out,
            "--holdout-classes",
            "1",
        ]),
        &cache,
    );
    let e = ens.join("o");
    let m = ovr::ensemble::load(&e).unwrap().manifest;
    assert_eq!(m.holdout_classes.len(), 1);
    assert_eq!(m.classes.len(), 3);
    assert!(!m.classes.contains(&m.holdout_classes[0]));

    let json = dir.path().join("o.json");
    let es = e.to_str().unwrap();
    let stdout = ok(
        &with(&[
            "compare",
            "--ensemble",
            es,
            "--json",
            json.to_str().unwrap(),
        ]),
        &cache,
    );
    assert!(stdout.contains("open set:"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let os = &v["open_set"];
    let unknown = os["unknown_rows"].as_u64().unwrap();
    assert!(unknown >= 1, "the held-out class's test images: {os}");
    assert_eq!(
        os["known_rows"].as_u64().unwrap() as usize,
        v["n"].as_u64().unwrap() as usize
    );
    let results = os["results"].as_array().unwrap();
    assert_eq!(results.len(), v["approaches"].as_array().unwrap().len() + 2);
    for r in results {
        let a = r["auroc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&a), "{r}");
    }
    assert!(!os["thresholds"].as_array().unwrap().is_empty());
    assert_eq!(os["pairs"].as_array().unwrap().len(), 2);

    // --unknown adds its images to the unknown rows.
    let json2 = dir.path().join("o2.json");
    ok(
        &with(&[
            "compare",
            "--ensemble",
            es,
            "--unknown",
            extra.to_str().unwrap(),
            "--json",
            json2.to_str().unwrap(),
        ]),
        &cache,
    );
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json2).unwrap()).unwrap();
    assert_eq!(w["open_set"]["unknown_rows"].as_u64().unwrap(), unknown + 3);

    // score --abstain: 1.0 abstains on everything, 0.0 on nothing, none by default.
    let score = |rest: &[&str]| {
        ok(
            &with(
                &[
                    &["score", "--ensemble", es, "--jsonl"][..],
                    rest,
                    &[extra.to_str().unwrap()],
                ]
                .concat(),
            ),
            &cache,
        )
    };
    let count = |text: &str, needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    // Each row abstains exactly when its probability is below P.
    for p in ["1.0", "0.9999995", "0.0"] {
        let rows = score(&["--abstain", p]);
        let t: f64 = p.parse().unwrap();
        for line in rows.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let below = v["probability"].as_f64().unwrap() < t;
            assert_eq!(v["abstained"].as_bool(), Some(below), "P = {p}: {line}");
            assert_eq!(v["predicted"] == "unknown", below, "{line}");
        }
    }
    assert_eq!(
        count(&score(&["--abstain", "0.0"]), "\"abstained\":true"),
        0
    );
    assert_eq!(count(&score(&[]), "\"abstained\":false"), 3);
    let (bad, _, err) = run(
        &with(&[
            "score",
            "--ensemble",
            es,
            "--abstain",
            "1.5",
            extra.to_str().unwrap(),
        ]),
        &cache,
    );
    assert!(!bad && err.contains("--abstain"), "{err}");

    // Holding out too many classes is refused, naming the field.
    let (trained, _, err) = run(
        &with(&[
            "train",
            "--name",
            "p",
            "--out",
            out,
            "--holdout-classes",
            "3",
        ]),
        &cache,
    );
    assert!(!trained && err.contains("holdout_classes"), "{err}");
}

/// Four classes at ±3 on two axes, wide enough to overlap a little (so val
/// is not separable and the temperature stays finite); `centre` rows sit
/// at the origin, 3 away from every class, where no head claims them.
fn cross(split: &str, per: usize, seed: u64, centre: usize) -> ovr::features::store::FeatureSet {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let centres = [[3.0f32, 0.0], [-3.0, 0.0], [0.0, 3.0], [0.0, -3.0]];
    let (mut features, mut labels, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    let mut push = |at: [f32; 2], label: u32, key: String| {
        let spread = if key.contains("centre") { 0.4 } else { 2.4 };
        for m in at {
            features.push(m + rng.random_range(-spread..spread));
        }
        features.extend((0..2).map(|_| rng.random_range(-0.4f32..0.4)));
        labels.push(label);
        keys.push(key);
    };
    for (c, at) in centres.iter().enumerate() {
        for i in 0..per {
            push(*at, c as u32, format!("{split}/{c}/{i}"));
        }
    }
    for i in 0..centre {
        push([0.0, 0.0], 0, format!("{split}/centre/{i}"));
    }
    ovr::features::store::FeatureSet {
        dataset: "cross".into(),
        split: split.into(),
        backbone: "test".into(),
        weights_sha256: "00".into(),
        classes: (0..4).map(|c| format!("class{c}")).collect(),
        keys,
        labels,
        dim: 4,
        features,
    }
}

#[test]
fn an_unknown_class_far_from_every_known_one_is_found() {
    use ovr::ensemble::knownness::knownness;
    use ovr::metrics::open_set::{open_set, OpenSetInput};
    let (tr, va) = (cross("train", 40, 1, 0), cross("val", 15, 2, 0));
    let cfg = super::train::config(&[
        "train.c_grid=[0.1, 1.0]",
        "train.multiclass_c_grid=[0.1, 1.0]",
    ]);
    let o = super::train::train(&cfg, &tr, &va).unwrap();
    let m = ovr::ensemble::Manifest::from_training("cross", &cfg, &tr, &o).unwrap();
    let dir = tempfile::tempdir().unwrap();
    ovr::ensemble::save(&dir.path().join("e"), &m, &o.weights).unwrap();
    let e = ovr::ensemble::load(&dir.path().join("e")).unwrap();
    let test = cross("test", 20, 3, 30);
    let known_n = 80;
    let out = e.head_outputs(&test.features, test.len()).unwrap();
    let inputs: Vec<_> = e
        .approaches()
        .into_iter()
        .map(|a| e.approach(&out, a))
        .collect();
    for s in knownness(&out, &inputs) {
        let correct = vec![true; known_n];
        let r = open_set(&OpenSetInput {
            approach: s.approach.clone(),
            score: s.score.to_string(),
            known: s.values[..known_n].to_vec(),
            known_correct: correct,
            unknown: s.values[known_n..].to_vec(),
        })
        .unwrap();
        eprintln!(
            "{} / {}: AUROC {:.3}, known mean {:.3}, unknown mean {:.3}",
            s.approach,
            s.score,
            r.auroc,
            s.values[..known_n].iter().sum::<f32>() / known_n as f32,
            s.values[known_n..].iter().sum::<f32>() / 30.0
        );
        // Normalising isotonic outputs turns "every specialist says no"
        // (three exact zeros and one tiny step) into a confident yes, so it
        // is the one combiner that cannot say "none of these" here; the
        // unnormalised max-sigmoid keeps the signal.
        if s.approach != "specialists-isotonic" {
            assert!(
                r.auroc > 0.9,
                "{} / {}: AUROC {}",
                s.approach,
                s.score,
                r.auroc
            );
        }
    }
}

#[test]
fn compare_against_a_second_dataset_reports_the_shift() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (c, name) in ["x", "y"].iter().enumerate() {
        for i in 0..10 {
            write_png(
                &a.join(name).join(format!("{i}.png")),
                24 + i,
                20,
                (c * 90 + i as usize) as u8,
            );
            write_png(
                &b.join(name).join(format!("{i}.png")),
                20,
                24 + i,
                (c * 90 + 40 + i as usize) as u8,
            );
        }
    }
    for i in 0..10 {
        write_png(&b.join("z").join(format!("{i}.png")), 22, 22, 250 - i as u8);
    }
    let against = dir.path().join("b.toml");
    std::fs::write(
        &against,
        format!(
            "[dataset]\nkind = \"image-folder\"\nroot = \"{}\"\n[backbone]\nweights = \"{}\"\n",
            b.display(),
            weights.display()
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let ens = dir.path().join("ens");
    let grid = [
        "-q",
        "--set",
        "train.c_grid=[0.1]",
        "--set",
        "train.multiclass_c_grid=[0.1]",
    ];
    let with = |rest: &[&str]| image_folder_args(&a, &weights, &[&grid[..], rest].concat());
    ok(
        &with(&["train", "--name", "s", "--out", ens.to_str().unwrap()]),
        &cache,
    );
    let json = dir.path().join("s.json");
    let e = ens.join("s");
    let html = dir.path().join("s.html");
    let stdout = ok(
        &with(&[
            "compare",
            "--ensemble",
            e.to_str().unwrap(),
            "--against",
            against.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--report",
            html.to_str().unwrap(),
            "--resamples",
            "50",
        ]),
        &cache,
    );
    assert!(stdout.contains("shift: "), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let s = &v["shift"];
    assert!(s["rows"].as_u64().unwrap() >= 2, "{s}");
    assert!(
        s["rows_left_out"].as_u64().unwrap() >= 1,
        "class z is unknown to the ensemble: {s}"
    );
    assert_eq!(
        s["results"].as_array().unwrap().len(),
        v["approaches"].as_array().unwrap().len()
    );
    assert_eq!(s["resamples"], 50);
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("<section id=\"shift\">") && html.contains("(shifted)"));
    // Without --against: no shift part.
    let plain = dir.path().join("p.json");
    ok(
        &with(&[
            "compare",
            "--ensemble",
            e.to_str().unwrap(),
            "--json",
            plain.to_str().unwrap(),
        ]),
        &cache,
    );
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plain).unwrap()).unwrap();
    assert!(p["shift"].is_null() && p["open_set"].is_null());
}

#[test]
fn dataset_style_is_checked() {
    for (set, needle) in [
        ("dataset.style=\"apple\"", "twitter, google"),
        ("dataset.style=\"google\"", "emoji40 dataset only"),
    ] {
        let mut o = vec![set.to_string()];
        if set.contains("google") {
            o.push("dataset.kind=\"fashion-mnist\"".into());
        }
        let err = ovr::config::Config::load(None, &o).unwrap_err().to_string();
        assert!(
            err.contains("dataset.style") && err.contains(needle),
            "{err}"
        );
    }
    let ok = ovr::config::Config::load(None, &["dataset.style=\"google\"".to_string()]).unwrap();
    assert_eq!(ok.dataset.style.as_deref(), Some("google"));
}
