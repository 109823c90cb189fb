//! `ovr compare`: a saved ensemble (`configured::ensemble`) on one split -> every
//! approach side by side (metrics stage) -> the table on stdout, with
//! `--json`, `--csv` and an HTML `--report` (export stage).

use super::Global;
use crate::assets::cache::Cache;
use crate::cli::CompareArgs;
use crate::config::Config;
use crate::configured::ensemble::{open_ensemble, same_split_as_training};
use crate::configured::features::features_for;
use crate::ensemble::Ensemble;
use crate::export::{self, Document, Format};
use crate::features::store::FeatureSet;
use crate::images::dataset::Split;
use crate::metrics::compare::{compare, CompareContext, Comparison, HeadCRule};
use crate::progress::Verbosity;
use crate::util::choice::Choice;
use crate::{Error, Result};

pub fn run(args: &CompareArgs, g: &Global) -> Result<()> {
    let (e, config, cache) = open_ensemble(&args.ensemble, g.set, &g.cli, g.cache_dir)?;
    same_split_as_training(&e, &config)?;
    let c = comparison(args, &e, &config, &cache, g.verbosity)?;
    warn_leaked(args, &c);
    crate::output::print(&export::render(Format::Table, Document::Comparison(&c))?)?;
    write_files(args, &c, g.verbosity)
}

/// The warning when test images have a near-duplicate in train (the
/// figures without them close the table).
fn warn_leaked(args: &CompareArgs, c: &Comparison) {
    if let Some(d) = &c.deduplicated {
        eprintln!(
            "warning: {} of the {} {} images have a near-duplicate in train (cosine >= {}); the table ends with the figures without them",
            d.leaked.len(),
            c.n,
            args.split.name(),
            d.threshold
        );
    }
}

/// The rows of `split` the ensemble knows, and those of its held-out classes.
fn split_rows(
    args: &CompareArgs,
    e: &Ensemble,
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<(FeatureSet, FeatureSet, Option<FeatureSet>)> {
    // The training rows too, for the near-duplicate check (compare's leakage hook).
    let wanted: &[Split] = if args.split == Split::Train {
        &[Split::Train]
    } else {
        &[args.split, Split::Train]
    };
    let mut sets = features_for(config, cache, verbosity, wanted)?;
    let all = sets.remove(0);
    let train = sets.pop();
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
            args.split.name(),
            all.classes.len(),
            m.classes.len(),
            m.holdout_classes.len()
        )));
    }
    let (known, held) = crate::features::subset::split_by_classes(&all, &m.classes);
    Ok((known, held, train))
}

/// Every approach on the split, with the shift and open-set figures asked for.
fn comparison(
    args: &CompareArgs,
    e: &Ensemble,
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<Comparison> {
    let (set, held, train) = split_rows(args, e, config, cache, verbosity)?;
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
        split: args.split.name().to_string(),
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
    audit_hooks(
        args,
        config,
        &set,
        train.as_ref(),
        &approaches,
        seed,
        &mut c,
    )?;
    c.c_rule = c_rule_records(&e.manifest);
    Ok(c)
}

/// Every head's C rule record in the manifest (specialists, then multiclass).
fn c_rule_records(m: &crate::ensemble::Manifest) -> Vec<HeadCRule> {
    m.specialists
        .iter()
        .chain(std::iter::once(&m.multiclass))
        .filter_map(|h| {
            h.c_rule.clone().map(|record| HeadCRule {
                head: h.name.clone(),
                record,
            })
        })
        .collect()
}

/// TOST equivalence of every pair (`--equivalence-margin`) and the metrics
/// without the test images that have a near-duplicate in train.
fn audit_hooks(
    args: &CompareArgs,
    config: &Config,
    set: &FeatureSet,
    train: Option<&FeatureSet>,
    approaches: &[crate::ensemble::predict::ApproachInput],
    seed: u64,
    c: &mut Comparison,
) -> Result<()> {
    let margin = args.equivalence_margin;
    if !(margin > 0.0 && margin < 100.0) {
        return Err(Error::Usage(format!(
            "--equivalence-margin {margin} must be in (0, 100) points"
        )));
    }
    let named: Vec<(&str, &[u32])> = approaches
        .iter()
        .map(|a| (a.name.as_str(), a.preds.as_slice()))
        .collect();
    c.equivalence = crate::metrics::equivalence::pairs(&set.labels, &named, margin / 100.0)?;
    if let Some(train) = train {
        c.deduplicated = crate::audit::leakage::deduplicated(
            train,
            set,
            &crate::audit::near::NearSearch::new(&config.audit, config.seed),
            approaches,
            args.resamples,
            seed,
        )?;
    }
    Ok(())
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
