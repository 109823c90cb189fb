//! The fair-comparison options of `[train]`, each with a non-default value
//! and its effect: class weighting per side, the specialists' selection
//! criterion, warm starts along the C path, grid-edge extension, the
//! combiner choice and its cross-validation settings.

use ovr::calibration::Combiner;
use ovr::ensemble::manifest::EdgeSide;
use ovr::ensemble::{HeadParams, Manifest};
use ovr::heads::ClassWeighting;

use super::train::{blobs, config, flat, train};

fn sets() -> (
    ovr::features::store::FeatureSet,
    ovr::features::store::FeatureSet,
) {
    (
        blobs("train", &[60, 40, 25, 15], 6, 11),
        blobs("val", &[30, 20, 12, 8], 6, 12),
    )
}

#[test]
fn class_weighting_per_side_takes_effect() {
    let (tr, va) = sets();
    let grid = "train.c_grid=[0.01, 0.1, 1.0]";
    let auto = train(&config(&[grid]), &tr, &va).unwrap();
    for h in &auto.specialists {
        let ws: Vec<ClassWeighting> = h.val_loss_grid.iter().map(|p| p.weighting).collect();
        assert!(ws.contains(&ClassWeighting::None) && ws.contains(&ClassWeighting::Balanced));
    }
    assert_eq!(
        auto.multiclass.weighting,
        ClassWeighting::None,
        "unweighted by default"
    );
    for (value, want) in [
        ("none", ClassWeighting::None),
        ("balanced", ClassWeighting::Balanced),
    ] {
        let o = train(
            &config(&[grid, &format!("train.class_weight=\"{value}\"")]),
            &tr,
            &va,
        )
        .unwrap();
        assert!(o.specialists.iter().all(|h| h.weighting == want), "{value}");
        assert!(o
            .specialists
            .iter()
            .all(|h| h.val_loss_grid.iter().all(|p| p.weighting == want)));
    }
    let bal = train(
        &config(&[grid, "train.multiclass_class_weight=\"balanced\""]),
        &tr,
        &va,
    )
    .unwrap();
    assert_eq!(bal.multiclass.weighting, ClassWeighting::Balanced);
    assert_ne!(bal.weights.multiclass, auto.weights.multiclass);
    let err = ovr::config::Config::load(None, &["train.multiclass_class_weight=\"auto\"".into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train.multiclass_class_weight") && err.contains("none, balanced"),
        "{err}"
    );
}

#[test]
fn the_selection_criterion_changes_the_losses() {
    let (tr, va) = sets();
    let base = [
        "train.c_grid=[0.01, 0.1, 1.0]",
        "train.class_weight=\"balanced\"",
    ];
    let cal = train(
        &config(&[base[0], base[1], "train.selection=\"calibrated-nll\""]),
        &tr,
        &va,
    )
    .unwrap();
    let default = train(&config(&base), &tr, &va).unwrap();
    let weighted = train(
        &config(&[base[0], base[1], "train.selection=\"weighted-nll\""]),
        &tr,
        &va,
    )
    .unwrap();
    let plain = train(
        &config(&[base[0], base[1], "train.selection=\"nll\""]),
        &tr,
        &va,
    )
    .unwrap();
    let losses = |o: &ovr::ensemble::build::TrainOutcome| -> Vec<f64> {
        o.specialists.iter().map(|h| h.val_loss).collect()
    };
    assert_ne!(losses(&cal), losses(&weighted));
    assert_ne!(losses(&plain), losses(&weighted));
    assert_ne!(losses(&cal), losses(&plain));
    assert_eq!(losses(&default), losses(&plain), "nll is the default");
    // The calibrated criterion chooses the weighting too: with `auto` both
    // weightings are candidates of every head.
    let auto = train(&config(&[base[0]]), &tr, &va).unwrap();
    assert!(auto.specialists.iter().all(|h| h.val_loss_grid.len() >= 6));
}

#[test]
fn warm_starts_reach_the_same_heads_in_fewer_iterations() {
    let (tr, va) = sets();
    let grid = [
        "train.c_grid=[0.001, 0.01, 0.1, 1.0, 10.0]",
        "train.multiclass_c_grid=[0.001, 0.01, 0.1, 1.0, 10.0]",
        "train.grid_extension=0",
        "train.tol=1e-8",
    ];
    let warm = train(&config(&grid), &tr, &va).unwrap();
    let mut cold_cfg: Vec<&str> = grid.to_vec();
    cold_cfg.push("train.warm_start=false");
    let cold = train(&config(&cold_cfg), &tr, &va).unwrap();
    let iters = |o: &ovr::ensemble::build::TrainOutcome| -> usize {
        o.specialists
            .iter()
            .chain([&o.multiclass])
            .map(|h| h.iterations)
            .sum()
    };
    assert!(
        iters(&warm) < iters(&cold),
        "warm {} vs cold {}",
        iters(&warm),
        iters(&cold)
    );
    for (a, b) in warm.specialists.iter().zip(&cold.specialists) {
        assert_eq!((a.c, a.weighting), (b.c, b.weighting), "{}", a.name);
    }
    let (fw, fc) = (flat(&warm.weights), flat(&cold.weights));
    let gap = fw
        .iter()
        .zip(&fc)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(gap < 2e-3, "same optimum within the tolerance: {gap}");
}

#[test]
fn a_best_c_on_the_grid_edge_is_extended_then_reported() {
    // Well separated blobs want weak regularisation: the best C sits on the
    // grid's upper end.
    let (tr, va) = sets();
    let grid = [
        "train.c_grid=[0.0001, 0.0003]",
        "train.multiclass_c_grid=[0.0001, 0.0003]",
    ];
    let ext = train(
        &config(&[grid[0], grid[1], "train.grid_extension=2"]),
        &tr,
        &va,
    )
    .unwrap();
    let e = ext
        .multiclass
        .grid_edge
        .clone()
        .expect("multiclass hit the upper end");
    assert_eq!(e.side, EdgeSide::High);
    assert!(e.extensions >= 1 && e.extensions <= 2, "{e:?}");
    assert!(ext.multiclass.c.unwrap() > 0.0003);
    assert_eq!(ext.multiclass.val_loss_grid.len(), 2 + e.extensions);
    let none = train(
        &config(&[grid[0], grid[1], "train.grid_extension=0"]),
        &tr,
        &va,
    )
    .unwrap();
    let e0 = none
        .multiclass
        .grid_edge
        .clone()
        .expect("still on the edge");
    assert_eq!((e0.extensions, e0.at_bound), (0, true));
    assert_eq!(none.multiclass.c, Some(0.0003));
    assert_eq!(none.multiclass.val_loss_grid.len(), 2);
    // A grid of one C asks for no search: never extended.
    let one = train(
        &config(&["train.c_grid=[0.001]", "train.multiclass_c_grid=[0.001]"]),
        &tr,
        &va,
    )
    .unwrap();
    assert!(
        one.multiclass.grid_edge.is_none() && one.specialists.iter().all(|h| h.grid_edge.is_none())
    );
}

#[test]
fn the_combiner_and_its_cross_validation_are_configurable() {
    let (tr, va) = sets();
    let grid = "train.c_grid=[0.01, 0.1, 1.0]";
    let cfg = config(&[grid]);
    let auto = train(&cfg, &tr, &va).unwrap();
    let sel = &auto.calibration.selection;
    assert_eq!(sel.folds, 5);
    assert_eq!(sel.candidates.len(), Combiner::ALL.len());
    let least = sel
        .candidates
        .iter()
        .map(|c| c.cv_nll)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(
        sel.candidates
            .iter()
            .find(|c| c.combiner == sel.chosen)
            .unwrap()
            .cv_nll,
        least
    );
    let m = Manifest::from_training("t", &cfg, &tr, &auto).unwrap();
    assert_eq!(m.combiner, sel.chosen, "auto: the CV choice");

    let fixed_cfg = config(&[
        grid,
        "train.combiner=\"isotonic\"",
        "train.calibration_folds=3",
    ]);
    let fixed = train(&fixed_cfg, &tr, &va).unwrap();
    assert_eq!(fixed.calibration.selection.folds, 3);
    assert_eq!(
        Manifest::from_training("t", &fixed_cfg, &tr, &fixed)
            .unwrap()
            .combiner,
        Combiner::Isotonic
    );

    let lam = train(
        &config(&[
            grid,
            "train.dirichlet_lambdas=[1.0, 100.0]",
            "train.vector_scaling_lambdas=[0.5]",
            "train.grid_extension=0",
        ]),
        &tr,
        &va,
    )
    .unwrap();
    let s = &lam.calibration.selection;
    let ls: Vec<f64> = s.dirichlet_path.iter().map(|p| p.lambda).collect();
    assert_eq!(ls, vec![1.0, 100.0]);
    assert_eq!(lam.calibration.specialists.vector_scaling.lambda, 0.5);
    assert!([1.0, 100.0].contains(&lam.calibration.specialists.dirichlet.lambda));
    // train.grid_extension also bounds the λ paths: with 2 steps allowed, a
    // best λ on an end of [1, 100] grows the path by up to 2 values.
    let grown = train(
        &config(&[
            grid,
            "train.dirichlet_lambdas=[1.0, 100.0]",
            "train.grid_extension=2",
        ]),
        &tr,
        &va,
    )
    .unwrap();
    let g = &grown.calibration.selection;
    let edge = g
        .lambda_edges
        .iter()
        .find(|e| e.combiner == Combiner::Dirichlet);
    assert_eq!(g.dirichlet_path.len(), 2 + edge.map_or(0, |e| e.extensions));
    assert!(
        edge.is_some_and(|e| e.extensions > 0) || s.lambda_edges.is_empty(),
        "{g:?}"
    );
    for bad in [
        "train.calibration_folds=1",
        "train.dirichlet_lambdas=[-1.0]",
        "train.combiner=\"beta\"",
    ] {
        let err = ovr::config::Config::load(None, &[bad.to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains(bad.split('=').next().unwrap()), "{err}");
    }
}

#[test]
fn predictions_are_the_argmax_of_the_reported_probabilities() {
    let (tr, va) = sets();
    let cfg = config(&["train.c_grid=[0.01, 0.1, 1.0]"]);
    let o = train(&cfg, &tr, &va).unwrap();
    let e = ovr::ensemble::Ensemble {
        dir: "(test)".into(),
        manifest: Manifest::from_training("t", &cfg, &tr, &o).unwrap(),
        weights: o.weights.clone(),
    };
    let out = e.head_outputs(&va.features, va.len()).unwrap();
    for a in e.approaches() {
        let r = e.approach(&out, a);
        for (row, &p) in r.probs.chunks_exact(4).zip(&r.preds) {
            let best = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(row[p as usize], best, "{}", r.name);
        }
    }
    assert!(matches!(e.weights.multiclass, HeadParams::Linear(_)));
}
