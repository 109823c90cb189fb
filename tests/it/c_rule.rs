//! `train.c_rule` and `train.c_rule_folds` with non-default values and
//! their effect: in process on seeded blobs (one-se never takes a larger C
//! than the least-mean one and moves some head to a smaller C; `best` keeps
//! every earlier choice and still records the spread), and as a user runs
//! it (`ovr train --set train.c_rule="one-se"` changes the manifest's Cs and
//! says so; `compare` carries the records into its JSON and report).

use ovr::ensemble::manifest::HeadRecord;

use super::common::{image_folder_args, lite_weights, ovr, small_tree, text};
use super::train::{blobs, config, train};

// Half-decade steps: near a minimum the loss moves less than its spread
// over the folds, so one-se has a smaller C within reach.
const GRID: &str = "train.c_grid=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]";
const MULTI_GRID: &str = "train.multiclass_c_grid=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]";

fn heads(o: &ovr::ensemble::build::TrainOutcome) -> Vec<&HeadRecord> {
    o.specialists
        .iter()
        .chain(std::iter::once(&o.multiclass))
        .collect()
}

#[test]
fn one_se_takes_smaller_cs_and_both_rules_record_the_spread() {
    let tr = blobs("train", &[40, 30, 20, 12], 8, 21);
    let va = blobs("val", &[20, 15, 10, 8], 8, 22);
    let fixed = [
        "train.grid_extension=0",
        "train.class_weight=\"none\"",
        GRID,
        MULTI_GRID,
    ];
    let best = train(&config(&fixed), &tr, &va).unwrap();
    let one = train(
        &config(
            &[
                &fixed[..],
                &["train.c_rule=\"one-se\"", "train.c_rule_folds=4"],
            ]
            .concat(),
        ),
        &tr,
        &va,
    )
    .unwrap();
    let mut moved = 0;
    for (b, o) in heads(&best).into_iter().zip(heads(&one)) {
        let (rb, ro) = (b.c_rule.as_ref().unwrap(), o.c_rule.as_ref().unwrap());
        // `best` keeps the least whole-split loss, as before the rule.
        let least = b
            .val_loss_grid
            .iter()
            .min_by(|x, y| x.val_loss.total_cmp(&y.val_loss))
            .unwrap();
        assert_eq!(b.c, least.c, "{}", b.name);
        assert_eq!(rb.chosen_c, b.c.unwrap());
        assert_eq!((rb.folds, rb.chosen_fold_losses.len()), (5, 5));
        assert!(rb.chosen_fold_se.is_some_and(|s| s > 0.0), "{}", b.name);
        // one-se: 4 folds, never a larger C than the least-mean one, the
        // chosen mean within one SE of the least mean.
        assert_eq!((ro.folds, ro.chosen_fold_losses.len()), (4, 4));
        assert_eq!(o.c, Some(ro.chosen_c));
        assert!(ro.chosen_c <= ro.best_mean_c, "{}", o.name);
        let (m, bm, se) = (
            ro.chosen_fold_mean.unwrap(),
            ro.best_fold_mean.unwrap(),
            ro.best_fold_se.unwrap(),
        );
        assert!(m <= bm + se + 1e-12, "{}: {m} vs {bm} + {se}", o.name);
        moved += usize::from(ro.chosen_c < ro.best_mean_c);
        // Every grid point carries its fold mean and SE.
        assert!(o
            .val_loss_grid
            .iter()
            .all(|p| p.fold_mean.is_some() && p.fold_se.is_some()));
    }
    assert!(moved >= 1, "one-se moved no head to a smaller C");
    assert_ne!(
        super::train::flat(&best.weights),
        super::train::flat(&one.weights)
    );
}

#[test]
fn ovr_train_with_one_se_changes_the_chosen_cs_and_the_manifest_says_so() {
    let weights = lite_weights("efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 14);
    let cache = dir.path().join("cache");
    let ens = dir.path().join("ens");
    // The two shapes are separable: the loss falls like 1/C up to the grid's
    // top with a fold SE of about 60 % of its mean, so a step of 1.5 below
    // the top is within one SE and a step of 3 is not.
    let grid = [
        "--set",
        "train.c_grid=[0.1, 1.0, 3.0, 10.0, 20.0, 30.0]",
        "--set",
        "train.multiclass_c_grid=[0.1, 1.0, 3.0, 10.0, 20.0, 30.0]",
        "--set",
        "train.grid_extension=0",
    ];
    let run = |name: &str, extra: &[&str]| -> (serde_json::Value, String) {
        let args = image_folder_args(
            &root,
            &weights,
            &[
                &grid[..],
                extra,
                &["train", "--name", name, "--out", ens.to_str().unwrap()],
            ]
            .concat(),
        );
        let out = ovr(&args, &cache);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let m = std::fs::read_to_string(ens.join(name).join("manifest.json")).unwrap();
        (serde_json::from_str(&m).unwrap(), text(&out.stdout))
    };
    let (best, best_out) = run("best", &[]);
    let (one, one_out) = run("one", &["--set", "train.c_rule=\"one-se\""]);
    let cs = |m: &serde_json::Value| -> Vec<f64> {
        let mut v: Vec<f64> = m["specialists"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["c"].as_f64().unwrap())
            .collect();
        v.push(m["multiclass"]["c"].as_f64().unwrap());
        v
    };
    let (cb, co) = (cs(&best), cs(&one));
    assert_ne!(cb, co, "one-se chose the same Cs as best");
    assert!(co.iter().zip(&cb).any(|(o, b)| o < b), "{co:?} vs {cb:?}");
    assert_eq!(one["multiclass"]["c_rule"]["rule"], "one-se");
    assert_eq!(best["multiclass"]["c_rule"]["rule"], "best");
    assert_eq!(best["config"]["train"]["c_rule"], "best");
    assert_eq!(one["config"]["train"]["c_rule"], "one-se");
    assert!(
        best_out.contains("C rule `best` over 5 stratified validation folds"),
        "{best_out}"
    );
    assert!(one_out.contains("C rule `one-se`"), "{one_out}");
    // compare carries the records into its JSON and the report's section.
    let (json, html) = (dir.path().join("one.json"), dir.path().join("one.html"));
    let cmp = ovr(
        &[
            "compare",
            "--ensemble",
            ens.join("one").to_str().unwrap(),
            "--split",
            "val",
            "--resamples",
            "50",
            "--json",
            json.to_str().unwrap(),
            "--report",
            html.to_str().unwrap(),
        ],
        &cache,
    );
    assert!(cmp.status.success(), "{}", text(&cmp.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let records = v["c_rule"].as_array().unwrap();
    assert_eq!(records.len(), co.len());
    assert_eq!(records.last().unwrap()["head"], "multiclass");
    assert_eq!(
        records.last().unwrap()["chosen_c"].as_f64(),
        one["multiclass"]["c"].as_f64()
    );
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains("<section id=\"c-rule\">") && html.contains("<code>one-se</code> over 5")
    );
    // A misspelt rule is refused, naming the field and the choices.
    let bad = ovr(
        &image_folder_args(
            &root,
            &weights,
            &[
                "--set",
                "train.c_rule=\"1se\"",
                "train",
                "--out",
                ens.to_str().unwrap(),
            ],
        ),
        &cache,
    );
    let err = text(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("train.c_rule") && err.contains("one-se"),
        "{err}"
    );
}
