//! Training through the scheduler: results do not depend on lanes or on
//! fusing, repeat runs are identical, bad inputs fail before training with
//! an error naming the class or field, and a saved ensemble loads back.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ovr::config::{Config, ConfigError};
use ovr::ensemble::build::{train_ensemble, TrainError, TrainOutcome};
use ovr::ensemble::{HeadParams, Weights};
use ovr::features::store::FeatureSet;
use ovr::progress::Verbosity;
use ovr::util::chain::chain;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Gaussian blobs: `k` classes in `d` dims, unbalanced sizes.
pub(crate) fn blobs(split: &str, n_per: &[usize], d: usize, seed: u64) -> FeatureSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = n_per.len();
    let centres: Vec<Vec<f32>> = {
        let mut c = ChaCha8Rng::seed_from_u64(7);
        (0..k)
            .map(|_| (0..d).map(|_| c.random_range(-1.5f32..1.5)).collect())
            .collect()
    };
    let (mut features, mut labels, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    for (c, &n) in n_per.iter().enumerate() {
        for i in 0..n {
            for &m in &centres[c] {
                features.push(m + rng.random_range(-1.0f32..1.0) * 1.2);
            }
            labels.push(c as u32);
            keys.push(format!("{split}/{c}/{i}"));
        }
    }
    FeatureSet {
        dataset: "blobs".into(),
        split: split.into(),
        backbone: "test".into(),
        weights_sha256: "00".into(),
        classes: (0..k).map(|c| format!("class{c}")).collect(),
        keys,
        labels,
        dim: d,
        features,
    }
}

pub(crate) fn config(overrides: &[&str]) -> Config {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Config::load(None, &o).unwrap()
}

pub(crate) fn train(
    cfg: &Config,
    tr: &FeatureSet,
    va: &FeatureSet,
) -> Result<TrainOutcome, TrainError> {
    train_ensemble(
        tr,
        va,
        &cfg.train,
        cfg.seed,
        Arc::new(AtomicBool::new(false)),
        Verbosity::Quiet,
    )
}

/// Every parameter of an ensemble's heads, in a fixed order.
pub(crate) fn flat(w: &Weights) -> Vec<f32> {
    let mut out = Vec::new();
    for h in w.specialists.iter().chain(std::iter::once(&w.multiclass)) {
        match h {
            HeadParams::Linear(f) => {
                out.extend_from_slice(&f.w);
                out.extend_from_slice(&f.b);
            }
            HeadParams::Mlp(m) => {
                for l in &m.layers {
                    out.extend_from_slice(&l.w);
                    out.extend_from_slice(&l.b);
                }
            }
        }
    }
    out
}

pub(crate) fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn lanes_and_fusing_do_not_change_the_weights() {
    let tr = blobs("train", &[60, 40, 25, 15], 12, 1);
    let va = blobs("val", &[20, 14, 9, 6], 12, 2);
    let grid = "train.c_grid=[0.01, 0.1, 1.0]";
    let one = train(&config(&[grid, "train.lanes=1", "train.fuse=1"]), &tr, &va).unwrap();
    let many = train(&config(&[grid, "train.lanes=3", "train.fuse=5"]), &tr, &va).unwrap();
    let all = train(&config(&[grid, "train.lanes=2", "train.fuse=0"]), &tr, &va).unwrap();
    for other in [&many, &all] {
        assert!(max_diff(&flat(&one.weights), &flat(&other.weights)) <= 1e-5);
        let c1: Vec<Option<f64>> = one.specialists.iter().map(|h| h.c).collect();
        let c2: Vec<Option<f64>> = other.specialists.iter().map(|h| h.c).collect();
        assert_eq!(c1, c2, "same C chosen per head");
    }
    assert!(
        many.timeline.iter().any(|t| t.lane > 0),
        "several lanes were used"
    );
    let again = train(&config(&[grid, "train.lanes=3", "train.fuse=5"]), &tr, &va).unwrap();
    assert_eq!(
        again.weights, many.weights,
        "same seed, same config: identical"
    );
    assert!(one.validation.specialists_accuracy > 0.5 && one.validation.multiclass_accuracy > 0.5);
}

#[test]
fn class_without_validation_examples_is_named() {
    let tr = blobs("train", &[30, 30, 30], 6, 1);
    let mut va = blobs("val", &[10, 10, 10], 6, 2);
    // Drop every validation example of class 1.
    let keep: Vec<usize> = (0..va.len()).filter(|&i| va.labels[i] != 1).collect();
    va.features = keep
        .iter()
        .flat_map(|&i| va.features[i * 6..(i + 1) * 6].to_vec())
        .collect();
    va.labels = keep.iter().map(|&i| va.labels[i]).collect();
    va.keys = keep.iter().map(|&i| va.keys[i].clone()).collect();
    let err = train(&config(&[]), &tr, &va).unwrap_err();
    match err {
        TrainError::MissingClass { class, split } => {
            assert_eq!(class, "class1");
            assert_eq!(split, "val");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn negative_l2_grid_is_a_config_error_naming_the_field() {
    let err = Config::load(None, &["train.c_grid=[0.1, -1.0]".to_string()]).unwrap_err();
    assert!(
        matches!(err, ConfigError::Invalid { ref field, .. } if field == "train.c_grid"),
        "{err}"
    );
    let err = Config::load(None, &["train.c_grid=[]".to_string()]).unwrap_err();
    assert!(chain(&err).contains("train.c_grid"), "{err}");
    let err = Config::load(None, &["train.calibration=\"platt\"".to_string()]).unwrap_err();
    assert!(chain(&err).contains("train.combiner"), "{err}");
    let err = Config::load(None, &["train.combiner=\"beta\"".to_string()]).unwrap_err();
    assert!(
        chain(&err).contains("train.combiner") && chain(&err).contains("dirichlet"),
        "{err}"
    );
    let err = Config::load(None, &["train.specialist_head=\"tree\"".to_string()]).unwrap_err();
    assert!(
        chain(&err).contains("train.specialist_head") && chain(&err).contains("linear, mlp"),
        "{err}"
    );
    let err = Config::load(None, &["train.mlp.hidden=[1024, 0]".to_string()]).unwrap_err();
    assert!(chain(&err).contains("train.mlp.hidden"), "{err}");
    let err = Config::load(None, &["train.mlp.depth=3".to_string()]).unwrap_err();
    assert!(
        chain(&err).contains("depth") && chain(&err).contains("hidden"),
        "{err}"
    );
}

#[test]
fn saved_ensemble_loads_back_and_checks_compatibility() {
    use ovr::ensemble::manifest::FORMAT;
    use ovr::ensemble::{load, save, Manifest};
    let tr = blobs("train", &[30, 20, 10], 5, 3);
    let va = blobs("val", &[10, 8, 5], 5, 4);
    let cfg = config(&["train.c_grid=[0.1, 1.0]"]);
    let o = train(&cfg, &tr, &va).unwrap();
    let m = Manifest {
        format: FORMAT,
        name: "blobs".into(),
        crate_version: "test".into(),
        created_unix: 0,
        dataset: "blobs".into(),
        backbone: "test".into(),
        weights_sha256: "00".into(),
        feature_dim: 5,
        classes: tr.classes.clone(),
        seed: cfg.seed,
        train_images: tr.len(),
        config: serde_json::to_value(&cfg).unwrap(),
        config_toml: cfg.source_toml.clone(),
        specialists: o.specialists.clone(),
        multiclass: o.multiclass.clone(),
        mlp: None,
        calibration: o.calibration.clone(),
        combiner: cfg.train.combiner.unwrap_or(o.calibration.selection.chosen),
        validation: o.validation.clone(),
        holdout_classes: Vec::new(),
        lanes: 1,
        timeline: o.timeline.clone(),
        train_seconds: o.train_seconds,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blobs");
    save(&path, &m, &o.weights).unwrap();
    save(&path, &m, &o.weights).unwrap(); // replacing an existing ensemble works
    let e = load(&path).unwrap();
    assert_eq!(e.weights, o.weights);
    assert_eq!(e.manifest, m);
    e.check_compatible("test", "00", 5).unwrap();
    let err = e
        .check_compatible("efficientnet-lite0", "00", 1280)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test") && err.contains("efficientnet-lite0"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temp or old directories left behind");
}

#[test]
fn mlp_heads_train_through_lanes_deterministically_and_round_trip() {
    use ovr::config::train::HeadKind;
    use ovr::ensemble::manifest::FORMAT;
    use ovr::ensemble::{load, save, Manifest};
    let tr = blobs("train", &[40, 30, 20], 6, 5);
    let va = blobs("val", &[12, 10, 8], 6, 6);
    let base = [
        "train.specialist_head=\"mlp\"",
        "train.multiclass_head=\"mlp\"",
        "train.mlp.hidden=[16]",
        "train.mlp.max_epochs=40",
        "train.mlp.patience=5",
        "train.mlp.batch_size=32",
    ];
    let with = |extra: &str| {
        let mut v: Vec<&str> = base.to_vec();
        v.push(extra);
        config(&v)
    };
    let cfg = with("train.lanes=1");
    let one = train(&cfg, &tr, &va).unwrap();
    let two = train(&with("train.lanes=3"), &tr, &va).unwrap();
    assert_eq!(
        one.weights, two.weights,
        "seeded per head: lanes do not matter"
    );
    assert!(one
        .specialists
        .iter()
        .all(|h| h.kind == HeadKind::Mlp && h.c.is_none() && h.best_epoch.is_some()));
    assert!(matches!(one.weights.multiclass, HeadParams::Mlp(_)));
    assert!(
        one.validation.multiclass_accuracy > 0.5,
        "{:?}",
        one.validation
    );
    let other_seed = train(
        &{
            let mut c = with("train.lanes=1");
            c.seed = 7;
            c
        },
        &tr,
        &va,
    )
    .unwrap();
    assert_ne!(other_seed.weights, one.weights);

    let m = Manifest {
        format: FORMAT,
        name: "mlp".into(),
        crate_version: "test".into(),
        created_unix: 0,
        dataset: "blobs".into(),
        backbone: "test".into(),
        weights_sha256: "00".into(),
        feature_dim: 6,
        classes: tr.classes.clone(),
        seed: cfg.seed,
        train_images: tr.len(),
        config: serde_json::to_value(&cfg).unwrap(),
        config_toml: cfg.source_toml.clone(),
        specialists: one.specialists.clone(),
        multiclass: one.multiclass.clone(),
        mlp: Some(cfg.train.mlp.clone()),
        calibration: one.calibration.clone(),
        combiner: cfg
            .train
            .combiner
            .unwrap_or(one.calibration.selection.chosen),
        validation: one.validation.clone(),
        holdout_classes: Vec::new(),
        lanes: 1,
        timeline: one.timeline.clone(),
        train_seconds: one.train_seconds,
    };
    let dir = tempfile::tempdir().unwrap();
    save(&dir.path().join("mlp"), &m, &one.weights).unwrap();
    let e = load(&dir.path().join("mlp")).unwrap();
    assert_eq!(e.weights, one.weights);

    // A multiclass MLP whose first layer does not take the 6 features is
    // refused at load, naming the head, instead of failing later in predict.
    let mut broken = one.weights.clone();
    if let HeadParams::Mlp(m) = &mut broken.multiclass {
        let l = &mut m.layers[0];
        l.inputs -= 1;
        l.w.truncate(l.inputs * l.outputs);
    }
    save(&dir.path().join("broken"), &m, &broken).unwrap();
    let err = load(&dir.path().join("broken")).unwrap_err().to_string();
    assert!(
        err.contains("multiclass") && err.contains("expected 6 inputs"),
        "{err}"
    );
}

#[test]
fn calibration_can_use_a_held_out_fraction_of_train() {
    let tr = blobs("train", &[40, 30, 20], 6, 8);
    let va = blobs("val", &[12, 10, 8], 6, 9);
    let o = train(
        &config(&[
            "train.calibration_split=0.25",
            "train.c_grid=[0.1]",
            "train.multiclass_c_grid=[0.1]",
        ]),
        &tr,
        &va,
    )
    .unwrap();
    assert_eq!(o.calibration.split, "train-held-out-0.25");
    let on_val = train(
        &config(&["train.c_grid=[0.1]", "train.multiclass_c_grid=[0.1]"]),
        &tr,
        &va,
    )
    .unwrap();
    assert_eq!(on_val.calibration.split, "val");
    assert_ne!(
        o.weights, on_val.weights,
        "heads trained without the held-out rows"
    );
    for bad in [
        "train.calibration_split=0.9",
        "train.calibration_split=\"test\"",
    ] {
        let err = Config::load(None, &[bad.to_string()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.calibration_split") && err.contains("\"val\""),
            "{err}"
        );
    }
}

/// A CPU build asked to train on CUDA: the device error survives as the
/// cause (not a string), so the run still exits 2 (a usage error), and the
/// message says how to rebuild.
#[test]
fn cuda_lanes_in_a_cpu_build_keep_the_device_error_and_exit_2() {
    if ovr::device::DeviceSpec::cuda_built() {
        return;
    }
    let tr = blobs("train", &[20, 20], 4, 1);
    let va = blobs("val", &[8, 8], 4, 2);
    let err = train(&config(&["device=\"cuda:0\""]), &tr, &va).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Device(ovr::device::DeviceError::CudaNotBuilt { .. })
        ),
        "{err:?}"
    );
    let source = std::error::Error::source(&err).map(|s| s.to_string());
    assert!(source.is_some_and(|s| s.contains("--features cuda")));
    assert_eq!(ovr::Error::from(err).exit_code(), 2);
}
