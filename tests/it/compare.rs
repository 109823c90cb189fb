//! `ovr compare` as a user runs it: `--json`, `--csv` and `--report` written
//! and consistent with each other, with non-default `--resamples`, `--seed`
//! `--split`, `--seed` and `--equivalence-margin`, each checked for its effect on the output.

use super::common::{image_folder_args, lite_weights, ovr, small_tree, text};

/// Runs ovr, which must succeed; its stdout.
fn ok(args: &[String], cache: &std::path::Path) -> String {
    let out = ovr(args, cache);
    assert!(out.status.success(), "ovr {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn json_csv_and_report_carry_every_approach_with_calibration_intervals() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 12);
    let cache = dir.path().join("cache");
    let ens = dir.path().join("ens");
    let grid = [
        "--set",
        "train.c_grid=[0.1]",
        "--set",
        "train.multiclass_c_grid=[0.1]",
    ];
    let with =
        |rest: &[&str]| image_folder_args(&root, &weights, &[&["-q"], &grid[..], rest].concat());
    ok(
        &with(&["train", "--name", "s", "--out", ens.to_str().unwrap()]),
        &cache,
    );
    let e = ens.join("s");
    let (json, csv, html) = (
        dir.path().join("c.json"),
        dir.path().join("c.csv"),
        dir.path().join("c.html"),
    );
    let stdout = ok(
        &with(&[
            "compare",
            "--ensemble",
            e.to_str().unwrap(),
            "--split",
            "val",
            "--resamples",
            "77",
            "--seed",
            "5",
            "--equivalence-margin",
            "7",
            "--json",
            json.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
            "--report",
            html.to_str().unwrap(),
        ]),
        &cache,
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["split"], "val");
    assert_eq!(v["bootstrap_resamples"], 77);
    assert_eq!(v["seed"], 5);
    // --equivalence-margin 7 (points) reaches every pair's TOST as 0.07.
    let pairs = v["equivalence"].as_array().unwrap();
    assert!(!pairs.is_empty());
    for p in pairs {
        let m = p["equivalence"]["margin"].as_f64().unwrap();
        assert!((m - 0.07).abs() < 1e-12, "{}: margin {m}", p["a"]);
    }
    let approaches = v["approaches"].as_array().unwrap();
    assert!(approaches.len() >= 4, "{}", approaches.len());
    for a in approaches {
        let c = &a["calibration"];
        assert_eq!(c["resamples"], 77, "{}", a["name"]);
        assert_eq!(c["seed"], 5);
        let ece = c["ece"]["observed"].as_f64().unwrap();
        assert_eq!(ece, a["summary"]["ece"].as_f64().unwrap());
        let (p, mean) = (
            c["p_value"].as_f64().unwrap(),
            c["perfect_ece_mean"].as_f64().unwrap(),
        );
        assert!(p > 0.0 && p <= 1.0 && mean >= 0.0, "{c}");
    }
    // Intervals on every figure: same resamples and seed, one per approach
    // and pair, per-class F1 for each of the 2 classes.
    let iv = &v["intervals"];
    assert_eq!(
        (iv["resamples"].as_u64(), iv["seed"].as_u64()),
        (Some(77), Some(5))
    );
    let ia = iv["approaches"].as_array().unwrap();
    assert_eq!(ia.len(), approaches.len());
    for (i, a) in ia.iter().zip(approaches) {
        assert_eq!(i["name"], a["name"]);
        let mce = i["mce"]["observed"].as_f64().unwrap();
        assert!(
            (mce - a["summary"]["mce"].as_f64().unwrap()).abs() < 1e-9,
            "{i}"
        );
        assert_eq!(
            i["ece"], a["calibration"]["ece"],
            "same draws as the ECE interval"
        );
        assert_eq!(i["f1"].as_array().unwrap().len(), 2);
        for f in ["ece", "mce", "nll", "brier"] {
            assert!(
                i[f]["low"].as_f64().unwrap() <= i[f]["high"].as_f64().unwrap(),
                "{f}"
            );
        }
    }
    let n = approaches.len();
    assert_eq!(iv["pairs"].as_array().unwrap().len(), n * (n - 1) / 2);
    for p in v["pairs"].as_array().unwrap() {
        let d = &p["calibration"]["ece"];
        assert!(
            d["low"].as_f64().unwrap() <= d["high"].as_f64().unwrap(),
            "{p}"
        );
    }
    let csv = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with(
        "ece_ci_low,ece_ci_high,perfect_ece_mean,calibration_p,mce_ci_low,mce_ci_high,nll_ci_low,nll_ci_high,brier_ci_low,brier_ci_high"
    ));
    assert_eq!(lines.len(), 1 + approaches.len());
    assert!(lines[1..]
        .iter()
        .all(|l| l.split(',').count() == 22 && l.contains(",val,")));
    let html = std::fs::read_to_string(&html).unwrap();
    for id in ovr::report::SECTION_IDS {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    assert!(html.contains("77 resamples, seed 5"));
    assert!(html.contains("77 resamples of the") && html.contains("per-class-f1"));
    assert!(
        html.contains("±7.0") && html.contains("within ±7 points"),
        "TOST margin in the report"
    );
    assert!(
        stdout.contains("/ val (")
            && stdout.contains("perfect-model ECE")
            && stdout.contains("intervals: 95% paired bootstrap (77 resamples, seed 5")
            && stdout.contains("equivalence and flips"),
        "{stdout}"
    );
    // A different seed moves the intervals, not the point estimates.
    let json2 = dir.path().join("d.json");
    ok(
        &with(&[
            "compare",
            "--ensemble",
            e.to_str().unwrap(),
            "--split",
            "val",
            "--resamples",
            "77",
            "--seed",
            "6",
            "--json",
            json2.to_str().unwrap(),
        ]),
        &cache,
    );
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json2).unwrap()).unwrap();
    // Re-splitting through the config is refused, naming the field.
    let out = ovr(
        &with(&[
            "--set",
            "seed=6",
            "compare",
            "--ensemble",
            e.to_str().unwrap(),
        ]),
        &cache,
    );
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("`seed` differs"),
        "{err}"
    );
    let pick = |v: &serde_json::Value, f: &str| v["approaches"][0]["calibration"]["ece"][f].clone();
    assert_eq!(pick(&v, "observed"), pick(&w, "observed"));
    assert_ne!(
        (pick(&v, "low"), pick(&v, "high")),
        (pick(&w, "low"), pick(&w, "high"))
    );
}
