//! `ovr curves`: the learning curves on synthetic features whose answer is
//! known (a class whose training images are copies of one image has a flat
//! curve; classes that need many images to be learnt rise), determinism for
//! a seed and independence of the lane count, and the command as a user runs
//! it, every option with a non-default value.

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ovr::curves::{learning_curves, CurveSpec, Curves};
use ovr::features::store::FeatureSet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::common::{image_folder_args, lite_weights, small_tree};
use super::train::config;

const D: usize = 60;

/// Class 0 (`copies`) sits far out on axis 0 and every one of its training
/// rows is the same vector; classes 1..=3 have means ±0.3 in every one of
/// the 60 dimensions (signs fixed per class) under unit noise: well apart
/// (distance ≈ 3.3), but 6 to 60 rows in 60 dimensions learn them badly,
/// and every doubling learns them better (F1 ≈ 0.6 -> 0.85 measured).
fn synthetic(split: &str, n_per: usize, seed: u64) -> FeatureSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = move || {
        // Box-Muller
        let (u, v): (f32, f32) = (rng.random_range(1e-6..1.0), rng.random_range(0.0..1.0));
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    };
    let copy: Vec<f32> = (0..D)
        .map(|j| {
            if j == 0 {
                8.0
            } else {
                0.3 * ((j * 7 % 5) as f32 - 2.0)
            }
        })
        .collect();
    let mut signs = ChaCha8Rng::seed_from_u64(99);
    let means: Vec<Vec<f32>> = (0..4)
        .map(|_| {
            (0..D)
                .map(|_| if signs.random_bool(0.5) { 0.3 } else { -0.3 })
                .collect()
        })
        .collect();
    let (mut features, mut labels, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    for (c, mean) in means.iter().enumerate() {
        for i in 0..n_per {
            for j in 0..D {
                let v = match c {
                    0 if split == "train" => copy[j],
                    0 => copy[j] + 0.5 * normal(),
                    _ => mean[j] + normal(),
                };
                features.push(v);
            }
            labels.push(c as u32);
            keys.push(format!("{split}/{c}/{i}"));
        }
    }
    FeatureSet {
        dataset: "synthetic".into(),
        split: split.into(),
        backbone: "test".into(),
        weights_sha256: "00".into(),
        classes: ["copies", "a", "b", "c"].map(String::from).to_vec(),
        keys,
        labels,
        dim: D,
        features,
    }
}

fn curves(overrides: &[&str], fractions: &[f64], seeds: usize) -> Curves {
    let (tr, va, te) = (
        synthetic("train", 60, 1),
        synthetic("val", 30, 2),
        synthetic("test", 150, 3),
    );
    let mut o = vec![
        "train.c_grid=[0.003, 0.03, 0.3]",
        "train.multiclass_c_grid=[0.003, 0.03, 0.3]",
    ];
    o.extend_from_slice(overrides);
    let cfg = config(&o);
    let spec = CurveSpec::new(fractions.to_vec(), seeds).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    learning_curves([&tr, &va, &te], &cfg, &spec, &stop, &mut |_| {}).unwrap()
}

fn gain(c: &Curves, class: &str, approach: &str) -> f64 {
    let k = c.classes.iter().find(|k| k.name == class).unwrap();
    k.slope[approach].gain_per_doubling.unwrap()
}

/// Everything but the timings.
fn figures(c: &Curves) -> serde_json::Value {
    serde_json::json!([c.classes, c.overall, c.trainings])
}

#[test]
fn copies_give_a_flat_curve_and_learnable_classes_rise() {
    let c = curves(&[], &[0.1, 0.25, 0.5, 1.0], 3);
    assert_eq!(
        c.trainings, 10,
        "the 100 % subset is the same for every seed"
    );
    for a in ["specialists-calibrated", "multiclass-temperature"] {
        let flat = gain(&c, "copies", a);
        assert!(flat.abs() < 0.01, "{a}: copies slope {flat}");
        // Its own information never changes; at 10 % some rows of the
        // poorly learnt classes still land on it (false positives), from
        // 25 % on hardly any.
        let copies = &c.classes[0].f1_by_fraction[a];
        assert!(copies[0].f1.min > 0.8, "{a}: {copies:?}");
        assert!(
            copies[1..].iter().all(|p| p.f1.min > 0.97),
            "{a}: {copies:?}"
        );
        let rising: Vec<f64> = ["a", "b", "c"].iter().map(|k| gain(&c, k, a)).collect();
        let mean = rising.iter().sum::<f64>() / 3.0;
        eprintln!("{a}: copies slope {flat:+.4}, learnable slopes {rising:?}");
        assert!(
            rising.iter().all(|&g| g > 0.03) && mean > 5.0 * flat.abs(),
            "{a}: learnable slopes {rising:?}"
        );
        let acc = &c.overall.iter().find(|o| o.approach == a).unwrap().accuracy;
        assert!(acc[3].mean > acc[0].mean + 0.03, "{a}: accuracy {acc:?}");
        assert_eq!(acc[3].std, 0.0, "one distinct 100 % run");
    }
    assert_eq!(c.classes[0].rank, 4, "the copies class gains least");
    // round(fraction x 60) rows of every class.
    let imgs: Vec<usize> = c.classes[1].f1_by_fraction["specialists-calibrated"]
        .iter()
        .map(|p| p.images)
        .collect();
    assert_eq!(imgs, vec![6, 15, 30, 60]);
    let per_fraction: Vec<usize> = c.runs.iter().map(|r| r.train_images).collect();
    assert_eq!(
        per_fraction,
        vec![24, 24, 24, 60, 60, 60, 120, 120, 120, 240, 240, 240]
    );
    assert!(c.runs[9..].iter().skip(1).all(|r| r.reused));
}

#[test]
fn curves_are_deterministic_and_independent_of_lanes() {
    let f = [0.25, 0.5, 1.0];
    let one = curves(&["train.lanes=1"], &f, 2);
    let again = curves(&["train.lanes=1"], &f, 2);
    let two = curves(&["train.lanes=2", "train.fuse=1"], &f, 2);
    assert_eq!(figures(&one), figures(&again));
    assert_eq!(figures(&one), figures(&two));
    let other_seed = curves(&["train.lanes=1", "seed=7"], &f, 2);
    assert_ne!(
        figures(&one),
        figures(&other_seed),
        "the run seed moves the subsets"
    );
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn curves_command_with_every_option() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 10);
    let weights = lite_weights("efficientnet-lite0");
    let cache = dir.path().join("cache");
    let run = |rest: &[&str]| {
        let mut args = image_folder_args(
            &root,
            &weights,
            &[
                "--set",
                "train.c_grid=[0.01, 0.1]",
                "--set",
                "train.multiclass_c_grid=[0.01, 0.1]",
                "-q",
                "curves",
            ],
        );
        args.extend(rest.iter().map(|s| s.to_string()));
        Command::new(env!("CARGO_BIN_EXE_ovr"))
            .args(&args)
            .env("OVR_CACHE", &cache)
            .output()
            .unwrap()
    };
    let (json, html) = (dir.path().join("c.json"), dir.path().join("c.html"));
    let out = run(&[
        "--fractions",
        "1,0.5",
        "--seeds",
        "2",
        "--json",
        json.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.starts_with("classes that would gain most from more images"),
        "{stdout}"
    );
    assert!(
        stdout.contains("specialists-calibrated gain per doubling"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| 50% |") && stdout.contains("| 100% |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 trainings (2 fraction(s) x 2 seed(s)"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["fractions"], serde_json::json!([0.5, 1.0]));
    assert_eq!(v["seeds"], 2);
    assert_eq!(v["runs"].as_array().unwrap().len(), 4);
    let k0 = &v["classes"][0];
    let pts = k0["f1_by_fraction"]["specialists-calibrated"]
        .as_array()
        .unwrap();
    assert_eq!(pts.len(), 2);
    assert_eq!(pts[0]["per_seed"].as_array().unwrap().len(), 2);
    assert!(
        k0["slope"]["multiclass-temperature"]["gain_per_doubling"].is_number(),
        "{k0}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("data-plot=\"accuracy\"") && page.contains("data-plot=\"class-f1\""));
    assert!(!page.contains("NaN") && !page.contains("<script"));
    // Defaults: four fractions, three seeds; no files unless asked for.
    std::fs::remove_file(&json).unwrap();
    std::fs::remove_file(&html).unwrap();
    let out = run(&[]);
    assert!(!json.exists() && !html.exists());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for f in ["| 10% |", "| 25% |", "| 50% |", "| 100% |"] {
        assert!(stdout.contains(f), "{f} in {stdout}");
    }
    assert!(stdout.contains("(4 fraction(s) x 3 seed(s)"), "{stdout}");
    // Bad values are usage errors (exit 2) naming the option.
    for (bad, want) in [
        (["--fractions", "0,1"], "--fractions"),
        (["--seeds", "0"], "--seeds"),
    ] {
        let out = run(&bad);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(want), "{}", text(&out.stderr));
    }
}
