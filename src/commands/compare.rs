//! `ovr compare`: a saved ensemble (`ensemble::open`) on one split -> every
//! approach side by side (metrics stage) -> the table on stdout, with
//! `--json`, `--csv` and an HTML `--report` (export stage).

use super::Global;
use crate::assets::cache::Cache;
use crate::cli::CompareArgs;
use crate::config::Config;
use crate::ensemble::open::{open_ensemble, same_split_as_training};
use crate::ensemble::Ensemble;
use crate::export::{self, Document, Format};
use crate::features::pipeline::features_for;
use crate::features::store::FeatureSet;
use crate::metrics::compare::{compare, CompareContext, Comparison};
use crate::progress::Verbosity;
use crate::{Error, Result};

pub fn run(args: &CompareArgs, g: &Global) -> Result<()> {
    let (e, config, cache) = open_ensemble(&args.ensemble, g.set, &g.cli, g.cache_dir)?;
    same_split_as_training(&e, &config)?;
    let c = comparison(args, &e, &config, &cache, g.verbosity)?;
    crate::output::print(&export::render(Format::Table, Document::Comparison(&c))?)?;
    write_files(args, &c, g.verbosity)
}

/// The rows of `split` the ensemble knows, and those of its held-out classes.
fn split_rows(
    args: &CompareArgs,
    e: &Ensemble,
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<(FeatureSet, FeatureSet)> {
    let all = features_for(config, cache, verbosity, &[args.split])?.remove(0);
    e.check_compatible(&all.backbone, &all.weights_sha256, all.dim)?;
    let m = &e.manifest;
    let expected = m.classes.len() + m.holdout_classes.len();
    let strangers = all
        .classes
        .iter()
        .any(|c| !m.classes.contains(c) && !m.holdout_classes.contains(c));
    if strangers || all.classes.len() != expected {
        return Err(Error::Usage(format!(
            "the {} split's classes differ from the ensemble's ({} vs {} trained + {} held out)",
            args.split.as_str(),
            all.classes.len(),
            m.classes.len(),
            m.holdout_classes.len()
        )));
    }
    Ok(crate::features::subset::split_by_classes(&all, &m.classes))
}

/// Every approach on the split, with the shift and open-set figures asked for.
fn comparison(
    args: &CompareArgs,
    e: &Ensemble,
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<Comparison> {
    let (set, held) = split_rows(args, e, config, cache, verbosity)?;
    let seed = args.seed.unwrap_or(config.seed);
    let out = e.head_outputs(&set.features, set.len())?;
    let approaches: Vec<_> = e
        .approaches()
        .into_iter()
        .map(|a| e.approach(&out, a))
        .collect();
    let ctx = CompareContext {
        ensemble: e.manifest.name.clone(),
        dataset: e.manifest.dataset.clone(),
        backbone: e.manifest.backbone.clone(),
        split: args.split.as_str().to_string(),
        classes: e.manifest.classes.clone(),
        timeline: e.manifest.timeline.clone(),
        resamples: args.resamples,
        seed,
    };
    let mut c = compare(
        ctx,
        &set.labels,
        &approaches,
        &out.specialist_logits,
        &out.specialist_probs,
    )?;
    if let Some(other) = &args.against {
        c.shift = Some(super::shift::report(
            e,
            &set.labels,
            &approaches,
            other,
            cache,
            verbosity,
            args.resamples,
            seed,
        )?);
    }
    if !held.is_empty() || args.unknown.is_some() {
        let (unknown, sources) = super::open_set::unknown_rows(
            held,
            args.unknown.as_deref(),
            config,
            cache,
            verbosity,
            &e.manifest.holdout_classes,
        )?;
        c.open_set = Some(super::open_set::report(
            e,
            config,
            cache,
            verbosity,
            &set,
            &unknown,
            sources,
            args.resamples,
            seed,
        )?);
    }
    Ok(c)
}

/// `--json`, `--csv`, `--report`.
fn write_files(args: &CompareArgs, c: &Comparison, verbosity: Verbosity) -> Result<()> {
    let doc = Document::Comparison(c);
    let files = [
        (&args.json, Format::Json),
        (&args.csv, Format::Csv),
        (&args.report, Format::Html),
    ];
    for (path, format) in files {
        if let Some(p) = path {
            export::to_file(p, format, doc)?;
        }
    }
    if let (Some(p), true) = (&args.report, verbosity > Verbosity::Quiet) {
        eprintln!("report written to {}", p.display());
    }
    Ok(())
}
