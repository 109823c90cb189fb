//! `ovr train`: cached features (extracting what is missing) -> scheduler ->
//! selected, calibrated heads -> `ensembles/<name>/`, with a per-head table
//! on stdout.

use std::path::Path;

use super::extract::features_for;
use crate::assets::cache::Cache;
use crate::config::train::HeadKind;
use crate::config::Config;
use crate::ensemble::build::train_ensemble;
use crate::ensemble::{ensemble_dir, save, Manifest};
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
    let sets = features_for(config, cache, verbosity, &[Split::Train, Split::Val])?;
    let [train, val] = <[_; 2]>::try_from(sets)
        .map_err(|_| Error::Usage("train and val features are required".into()))?;
    let stop = super::stop_flag("nothing will be saved");
    let t = &config.train;
    if verbosity > Verbosity::Quiet {
        let describe = |kind: HeadKind, grid: &[f64]| match kind {
            HeadKind::Linear => format!("logistic x {} C values", grid.len()),
            HeadKind::Mlp => format!("MLP {:?}", t.mlp.hidden),
        };
        eprintln!(
            "training {} specialists ({}) + multiclass ({}) on {} images, {} lane(s)",
            train.classes.len(),
            describe(t.specialist_head, &t.c_grid),
            describe(t.multiclass_head, &t.multiclass_c_grid),
            train.len(),
            t.lanes
        );
    }
    let o = train_ensemble(&train, &val, t, config.seed, stop, verbosity)?;
    let manifest = Manifest::from_training(name, config, &train, &o);
    save(&dir, &manifest, &o.weights)?;
    println!("| head | C | iterations/epochs | converged | val loss | job s |");
    println!("|---|---:|---:|---|---:|---:|");
    for h in manifest
        .specialists
        .iter()
        .chain(std::iter::once(&manifest.multiclass))
    {
        println!(
            "| {} | {} | {} | {} | {:.4} | {:.2} |",
            h.name,
            h.c.map(|c| c.to_string())
                .unwrap_or_else(|| format!("mlp {:?}", t.mlp.hidden)),
            h.iterations,
            if h.converged { "yes" } else { "no" },
            h.val_loss,
            h.seconds
        );
    }
    let v = &manifest.validation;
    println!();
    println!(
        "validation ({} images): specialists (calibrated argmax) {:.2}%, multiclass head {:.2}%",
        v.images,
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
