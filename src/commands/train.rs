//! `ovr train`: cached features (extracting what is missing; loaded whole,
//! or with `train.block_rows` the train split mapped and streamed) -> scheduler ->
//! selected, calibrated heads -> `ensembles/<name>/`, with a per-head table
//! on stdout.

use crate::util::choice::Choice;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::assets::cache::Cache;
use crate::config::Config;
use crate::configured::features::{features_for, streamed_splits};
use crate::ensemble::build::{train_ensemble, TrainOutcome};
use crate::ensemble::streamed::{streamed_block_rows, train_ensemble_mapped};
use crate::ensemble::{ensemble_dir, save, Manifest};
use crate::features::store::FeatureSet;
use crate::features::subset::{holdout_classes, split_by_classes};
use crate::heads::{ClassWeighting, HeadKind};
use crate::images::dataset::Split;
use crate::progress::Verbosity;
use crate::{Error, Result};

pub fn run(
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
    name: Option<&str>,
    out: &Path,
) -> Result<()> {
    let name = name.unwrap_or(&config.dataset.name);
    let dir = ensemble_dir(out, name)?;
    let stop = super::stop_flag("nothing will be saved");
    let (manifest, o) = match config.train.block_rows {
        None => in_memory(config, cache, verbosity, name, &stop)?,
        Some(_) => streamed(config, cache, verbosity, name, &stop)?,
    };
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(crate::ensemble::build::TrainError::Interrupted.into());
    }
    let t = &config.train;
    save(&dir, &manifest, &o.weights)?;
    print!("{}", head_table(&manifest, &t.mlp.hidden));
    print!("{}", crate::report::c_rule::text(&manifest));
    warn_c_at_bound(&manifest, verbosity);
    print_combiners(&manifest, verbosity);
    let v = &manifest.validation;
    println!();
    println!(
        "validation ({} images): specialists (calibrated argmax, {}; cross-validated when calibrated on val) {:.2}%, multiclass head {:.2}%",
        v.images,
        manifest.combiner.name(),
        100.0 * v.specialists_accuracy,
        100.0 * v.multiclass_accuracy
    );
    println!(
        "trained in {:.2} s; saved {}",
        manifest.train_seconds,
        dir.display()
    );
    Ok(())
}

/// Trains on train and val features loaded whole (the default).
fn in_memory(
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
    name: &str,
    stop: &Arc<AtomicBool>,
) -> Result<(Manifest, TrainOutcome)> {
    let (train, val, held) = known_sets(config, cache, verbosity)?;
    announce(config, train.classes.len(), train.len(), None, verbosity);
    let t = &config.train;
    let o = train_ensemble(&train, &val, t, config.seed, stop.clone(), verbosity)?;
    let mut manifest = Manifest::from_training(name, config, &train, &o)?;
    manifest.holdout_classes = held;
    Ok((manifest, o))
}

/// Trains on the training split's mapped file, read in blocks
/// (`train.block_rows`): the feature matrix is never loaded whole.
fn streamed(
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
    name: &str,
    stop: &Arc<AtomicBool>,
) -> Result<(Manifest, TrainOutcome)> {
    let t = &config.train;
    // Refuse what cannot stream before extracting anything.
    let block_rows = streamed_block_rows(t)?;
    let s = streamed_splits(config, cache, verbosity)?;
    let (k, n) = (s.train.header.classes.len(), s.train.n);
    announce(config, k, n, Some(block_rows), verbosity);
    let o = train_ensemble_mapped(&s.train, &s.val, t, config.seed, stop.clone(), verbosity)?;
    if verbosity >= Verbosity::Verbose {
        eprintln!(
            "streamed {} rows of {} in blocks of at most {} rows ({} row reads in all)",
            n,
            s.train.path().display(),
            s.train.largest_read(),
            s.train.rows_read()
        );
    }
    let manifest =
        Manifest::from_training_split(name, config, &s.train.header, n, s.train.dim, &o)?;
    Ok((manifest, o))
}

/// The one line saying what is about to be trained.
fn announce(config: &Config, k: usize, n: usize, block_rows: Option<usize>, verbosity: Verbosity) {
    if verbosity <= Verbosity::Quiet {
        return;
    }
    let t = &config.train;
    let describe = |kind: HeadKind, grid: &[f64]| match kind {
        HeadKind::Linear => format!("logistic x {} C values", grid.len()),
        HeadKind::Mlp => format!("MLP {:?}", t.mlp.hidden),
    };
    let how = match block_rows {
        Some(b) => format!(", streamed in blocks of {b} rows"),
        None => String::new(),
    };
    eprintln!(
        "training {k} specialists ({}) + multiclass ({}) on {n} images{how}, {} lane(s)",
        describe(t.specialist_head, &t.c_grid),
        describe(t.multiclass_head, &t.multiclass_c_grid),
        t.lanes
    );
}

/// Train and val features of the classes trained on, and the seeded
/// held-out classes (`train.holdout_classes`).
fn known_sets(
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<(FeatureSet, FeatureSet, Vec<String>)> {
    let sets = features_for(config, cache, verbosity, &[Split::Train, Split::Val])?;
    let [train, val] = <[_; 2]>::try_from(sets)
        .map_err(|_| Error::Usage("train and val features are required".into()))?;
    let held = holdout_classes(&train.classes, config.train.holdout_classes, config.seed);
    if train.classes.len() < held.len() + 2 {
        return Err(Error::Usage(format!(
            "train.holdout_classes = {} leaves fewer than 2 of the {} classes to train",
            held.len(),
            train.classes.len()
        )));
    }
    let known: Vec<String> = train
        .classes
        .iter()
        .filter(|c| !held.contains(c))
        .cloned()
        .collect();
    if !held.is_empty() && verbosity > Verbosity::Quiet {
        eprintln!(
            "holding out {} class(es) from training and calibration (unknown in compare): {}",
            held.len(),
            held.join(", ")
        );
    }
    Ok((
        split_by_classes(&train, &known).0,
        split_by_classes(&val, &known).0,
        held,
    ))
}

/// Warns about heads whose best C is still on an end of the extended grid.
fn warn_c_at_bound(manifest: &Manifest, verbosity: Verbosity) {
    let at_bound: Vec<&str> = manifest
        .specialists
        .iter()
        .chain(std::iter::once(&manifest.multiclass))
        .filter(|h| h.grid_edge.as_ref().is_some_and(|e| e.at_bound))
        .map(|h| h.name.as_str())
        .collect();
    if !at_bound.is_empty() && verbosity > Verbosity::Quiet {
        eprintln!(
            "warning: {} head(s) still chose the end of their extended C grid ({}); \
             widen train.c_grid / train.multiclass_c_grid or raise train.grid_extension",
            at_bound.len(),
            at_bound.join(", ")
        );
    }
}

/// The combiners' cross-validated NLL and the chosen penalties.
fn print_combiners(manifest: &Manifest, verbosity: Verbosity) {
    let sel = &manifest.calibration.selection;
    println!();
    println!(
        "combiners ({}-fold CV NLL inside the calibration split `{}`):",
        sel.folds, manifest.calibration.split
    );
    for c in &sel.candidates {
        let mark = if c.combiner == manifest.combiner {
            "  <- calibrated argmax"
        } else {
            ""
        };
        println!("  {:<18} {:.4}{mark}", c.combiner.name(), c.cv_nll);
    }
    let lambda = |path: &[crate::calibration::LambdaPoint], c: crate::calibration::Combiner| {
        let best = path.iter().min_by(|a, b| a.cv_nll.total_cmp(&b.cv_nll));
        let edge = sel.lambda_edges.iter().find(|e| e.combiner == c);
        let note = match edge {
            Some(e) if e.limit.is_some() => format!(
                ", on the {} end: its limit there is the {} candidate",
                e.side,
                e.limit.map_or("", |l| l.name())
            ),
            Some(e) if e.at_bound => format!(
                ", {} end of the grid after {} extension(s): at the bound (train.grid_extension)",
                e.side, e.extensions
            ),
            Some(e) => format!(
                ", interior after {} extension(s) past the {} end",
                e.extensions, e.side
            ),
            None => String::new(),
        };
        best.map(|b| format!("{} λ = {:e}{note}", c.name(), b.lambda))
    };
    let paths = [
        lambda(
            &sel.vector_scaling_path,
            crate::calibration::Combiner::VectorScaling,
        ),
        lambda(&sel.dirichlet_path, crate::calibration::Combiner::Dirichlet),
    ];
    println!(
        "  penalties: {}",
        paths.into_iter().flatten().collect::<Vec<_>>().join("; ")
    );
    let stuck: Vec<&str> = sel
        .lambda_edges
        .iter()
        .filter(|e| e.at_bound)
        .map(|e| e.combiner.name())
        .collect();
    if !stuck.is_empty() && verbosity > Verbosity::Quiet {
        eprintln!(
            "warning: the best λ of {} is still on an end of its extended grid; widen \
             train.vector_scaling_lambdas / train.dirichlet_lambdas or raise train.grid_extension",
            stuck.join(", ")
        );
    }
}

/// The per-head table: chosen C and weighting, grid edge, fit, loss.
fn head_table(m: &Manifest, hidden: &[usize]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from(
        "| head | C | weighting | grid edge | iterations/epochs | converged | val loss | job s |\n\
         |---|---:|---|---|---:|---|---:|---:|\n",
    );
    for h in m.specialists.iter().chain(std::iter::once(&m.multiclass)) {
        let edge = match &h.grid_edge {
            None => "-".to_string(),
            Some(e) => format!(
                "{:?}{}{}",
                e.side,
                if e.extensions > 0 {
                    format!(", +{} step(s)", e.extensions)
                } else {
                    String::new()
                },
                if e.at_bound {
                    ", at bound"
                } else {
                    ", now interior"
                }
            )
            .to_lowercase(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {edge} | {} | {} | {:.4} | {:.2} |",
            h.name,
            h.c.map(|c| format!("{c:e}"))
                .unwrap_or_else(|| format!("mlp {hidden:?}")),
            weighting_name(h.weighting),
            h.iterations,
            if h.converged { "yes" } else { "no" },
            h.val_loss,
            h.seconds
        );
    }
    s
}

fn weighting_name(w: ClassWeighting) -> &'static str {
    match w {
        ClassWeighting::Balanced => "balanced",
        ClassWeighting::None => "none",
    }
}
