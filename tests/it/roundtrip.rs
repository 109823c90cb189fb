//! train -> save -> load -> predict reproduces training's validation
//! predictions for every approach (Platt, isotonic and the automatic
//! combiner; linear and MLP heads), every prediction is the argmax of the
//! probabilities reported with it, and the calibration split is what the
//! manifest says: calibrators fitted on the held-out rows, which never
//! train a head.

use ovr::calibration::{argmax_rows, Combiner, Temperature};
use ovr::ensemble::build::calibration_rows;
use ovr::ensemble::predict::Approach;
use ovr::ensemble::{load, save, Ensemble, Manifest};
use ovr::features::store::FeatureSet;
use ovr::util::choice::Choice;

use super::train::{blobs, config, train};

fn accuracy(preds: &[u32], labels: &[u32]) -> f64 {
    assert_eq!(preds.len(), labels.len());
    preds.iter().zip(labels).filter(|(p, y)| p == y).count() as f64 / labels.len() as f64
}

/// Trains under `overrides`, saves, loads and predicts every approach on
/// `va`; checks the loaded outputs against the in-memory ones and training's.
fn round_trip(overrides: &[&str], expect_combiner: Option<Combiner>) {
    let tr = blobs("train", &[45, 30, 24, 18], 8, 21);
    let va = blobs("val", &[15, 12, 9, 7], 8, 22);
    let cfg = config(overrides);
    let o = train(&cfg, &tr, &va).unwrap();
    let m = Manifest::from_training("rt", &cfg, &tr, &o).unwrap();
    if let Some(c) = expect_combiner {
        assert_eq!(m.combiner, c, "{overrides:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rt");
    save(&path, &m, &o.weights).unwrap();
    let loaded = load(&path).unwrap();
    let memory = Ensemble {
        dir: path.clone(),
        manifest: m.clone(),
        weights: o.weights.clone(),
    };
    let (n, k) = (va.len(), va.classes.len());
    let out = loaded.head_outputs(&va.features, n).unwrap();
    let out_mem = memory.head_outputs(&va.features, n).unwrap();
    assert_eq!(out.specialist_logits.len(), n * k);
    assert_eq!(out.specialist_logits, out_mem.specialist_logits);
    assert_eq!(out.multiclass_logits, out_mem.multiclass_logits);
    // The very logits training computed (calibration and validation use
    // `HeadParams::logits` per head), not a different matmul's rounding.
    let x = o
        .weights
        .standardizer
        .try_apply(&va.features)
        .expect("standardize");
    for (c, h) in o.weights.specialists.iter().enumerate() {
        let col: Vec<f32> = out
            .specialist_logits
            .iter()
            .skip(c)
            .step_by(k)
            .copied()
            .collect();
        assert_eq!(col, h.logits(&x, n, va.dim).unwrap(), "specialist {c}");
    }
    assert_eq!(
        out.multiclass_logits,
        o.weights.multiclass.logits(&x, n, va.dim).unwrap()
    );
    let approaches = loaded.approaches();
    assert_eq!(approaches.len(), 3 + Combiner::ALL.len() - 1);
    for a in approaches {
        let got = loaded.approach(&out, a);
        let mem = memory.approach(&out_mem, a);
        assert_eq!(got.preds.len(), n, "{}", a.name());
        assert_eq!(got.probs.len(), n * k, "{}", a.name());
        assert_eq!(got.probs, mem.probs, "{}: loaded = in memory", a.name());
        assert_eq!(got.preds, mem.preds, "{}", a.name());
        assert_eq!(
            got.preds,
            argmax_rows(&got.probs, n, k),
            "{}: predictions are the argmax of the reported probabilities",
            a.name()
        );
        for row in got.probs.chunks_exact(k) {
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() < 1e-4, "{}: row sums to {s}", a.name());
        }
        let recorded = match a {
            Approach::SpecialistsCalibrated => Some(&o.validation_predictions.specialists),
            Approach::MulticlassRaw => Some(&o.validation_predictions.multiclass),
            _ => None,
        };
        if let Some(r) = recorded {
            assert_eq!(&got.preds, r, "{}: as recorded at training", a.name());
        }
    }
    let calibrated = loaded.approach(&out, Approach::SpecialistsCalibrated);
    let through_combiner = loaded.approach(&out, Approach::Specialists(m.combiner));
    assert_eq!(calibrated.probs, through_combiner.probs);
    assert_eq!(
        accuracy(
            &loaded.approach(&out, Approach::MulticlassRaw).preds,
            &va.labels
        ),
        m.validation.multiclass_accuracy
    );
    // Out of sample (held-out calibration rows): the recorded figure is the
    // plain validation accuracy of the calibrated argmax.
    assert_eq!(
        accuracy(&calibrated.preds, &va.labels),
        m.validation.specialists_accuracy,
        "{overrides:?}"
    );
    assert!(m.validation.specialists_accuracy > 0.5);
}

const GRIDS: [&str; 3] = [
    "train.c_grid=[0.05, 0.5]",
    "train.multiclass_c_grid=[0.05, 0.5]",
    "train.calibration_split=0.3",
];

#[test]
fn platt_ensemble_round_trips_to_the_recorded_predictions() {
    let o = [GRIDS.as_slice(), &["train.combiner=\"platt\""]].concat();
    round_trip(&o, Some(Combiner::Platt));
}

#[test]
fn isotonic_ensemble_round_trips_to_the_recorded_predictions() {
    let o = [GRIDS.as_slice(), &["train.combiner=\"isotonic\""]].concat();
    round_trip(&o, Some(Combiner::Isotonic));
}

#[test]
fn automatic_combiner_and_mlp_heads_round_trip() {
    round_trip(&GRIDS, None);
    let mlp = [
        GRIDS.as_slice(),
        &[
            "train.specialist_head=\"mlp\"",
            "train.multiclass_head=\"mlp\"",
            "train.combiner=\"isotonic\"",
        ],
    ]
    .concat();
    round_trip(&mlp, Some(Combiner::Isotonic));
}

/// `set` with the features of the rows where `pick` is true replaced.
fn replaced(set: &FeatureSet, pick: &[bool], by: f32) -> FeatureSet {
    let mut s = set.clone();
    for (i, row) in s.features.chunks_mut(s.dim).enumerate() {
        if pick[i] {
            row.iter_mut()
                .enumerate()
                .for_each(|(j, v)| *v = by * (j as f32 - 3.0));
        }
    }
    s
}

#[test]
fn calibrators_are_fitted_on_the_held_out_rows_that_never_train_a_head() {
    let tr = blobs("train", &[40, 30, 20], 6, 31);
    let va = blobs("val", &[12, 10, 8], 6, 32);
    let cfg = config(&[
        "train.calibration_split=0.4",
        "train.c_grid=[0.1, 1.0]",
        "train.multiclass_c_grid=[0.1]",
        "seed=5",
    ]);
    let o = train(&cfg, &tr, &va).unwrap();
    let m = Manifest::from_training("cal", &cfg, &tr, &o).unwrap();
    assert_eq!(m.calibration.split, "train-held-out-0.4");
    let held = calibration_rows(&tr.labels, 3, 0.4, 5);
    for c in 0..3u32 {
        let (n, h) = (0..tr.len())
            .filter(|&i| tr.labels[i] == c)
            .fold((0, 0), |(n, h), i| (n + 1, h + usize::from(held[i])));
        assert!(h > 0 && h < n, "class {c}: {h} of {n} held out");
    }
    // The heads (and the standardizer) never saw the held-out rows: wreck
    // their features and every head comes out bit-identical...
    let wrecked = train(&cfg, &replaced(&tr, &held, 7.5), &va).unwrap();
    assert_eq!(wrecked.weights, o.weights, "held-out rows trained a head");
    let chosen = |o: &ovr::ensemble::build::TrainOutcome| {
        let v: Vec<_> = o
            .specialists
            .iter()
            .map(|h| (h.c, h.weighting, h.val_loss_grid.clone(), h.iterations))
            .collect();
        v
    };
    assert_eq!(chosen(&wrecked), chosen(&o), "same grids, same choices");
    // ...while the calibrators, fitted on those rows, change.
    assert_ne!(wrecked.calibration.multiclass, o.calibration.multiclass);
    assert_ne!(wrecked.calibration.specialists, o.calibration.specialists);
    // Control: changing one kept row does change the heads.
    let first_kept: Vec<bool> = (0..tr.len())
        .map(|i| i == held.iter().position(|h| !h).unwrap())
        .collect();
    let moved = train(&cfg, &replaced(&tr, &first_kept, 7.5), &va).unwrap();
    assert_ne!(moved.weights, o.weights);
    // The temperature is exactly the one fitted on the held-out rows' logits.
    let rows: Vec<usize> = (0..tr.len()).filter(|&i| held[i]).collect();
    let x: Vec<f32> = rows
        .iter()
        .flat_map(|&i| tr.features[i * tr.dim..(i + 1) * tr.dim].to_vec())
        .collect();
    let labels: Vec<u32> = rows.iter().map(|&i| tr.labels[i]).collect();
    let xs = o.weights.standardizer.try_apply(&x).expect("standardize");
    let z = o
        .weights
        .multiclass
        .logits(&xs, rows.len(), tr.dim)
        .unwrap();
    let t = Temperature::fit(&z, &labels, rows.len(), 3).unwrap();
    assert_eq!(t, o.calibration.multiclass);
    // ...and not the one fitted on the rows that trained the heads.
    let kept: Vec<usize> = (0..tr.len()).filter(|&i| !held[i]).collect();
    let xk: Vec<f32> = kept
        .iter()
        .flat_map(|&i| tr.features[i * tr.dim..(i + 1) * tr.dim].to_vec())
        .collect();
    let lk: Vec<u32> = kept.iter().map(|&i| tr.labels[i]).collect();
    let zk = o
        .weights
        .multiclass
        .logits(
            &o.weights.standardizer.try_apply(&xk).expect("standardize"),
            kept.len(),
            tr.dim,
        )
        .unwrap();
    assert_ne!(Temperature::fit(&zk, &lk, kept.len(), 3).unwrap(), t);
}
