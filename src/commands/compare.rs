//! `ovr compare`: a saved ensemble on one split -> every approach side by
//! side (table on stdout), with `--json`, `--csv` and an HTML `--report`.

use std::fmt::Write as _;
use std::path::Path;

use super::extract::features_for;
use crate::assets::cache::{write_atomic, Cache};
use crate::config::Config;
use crate::ensemble::{load, Ensemble};
use crate::images::dataset::Split;
use crate::metrics::compare::{compare, CompareContext, Comparison, TimelineBar};
use crate::progress::Verbosity;
use crate::{Error, Result};

/// Options of `ovr compare` besides the config.
pub struct CompareArgs<'a> {
    pub ensemble: &'a Path,
    pub split: &'a str,
    pub json: Option<&'a Path>,
    pub csv: Option<&'a Path>,
    pub report: Option<&'a Path>,
    pub resamples: usize,
}

/// The config an ensemble was trained with, plus this command line's overrides.
pub fn ensemble_config(e: &Ensemble, overrides: &[String]) -> Result<Config> {
    let origin = format!("config saved in {}", e.dir.join("manifest.json").display());
    Ok(Config::from_toml_str(
        &e.manifest.config_toml,
        &origin,
        overrides,
    )?)
}

/// Loads an ensemble with its saved config (plus overrides) and the cache.
pub fn open_ensemble(
    dir: &Path,
    overrides: &[String],
    cache_dir: Option<&Path>,
) -> Result<(Ensemble, Config, Cache)> {
    let e = load(dir)?;
    let config = ensemble_config(&e, overrides)?;
    let cache = Cache::from_env(cache_dir.or(config.cache_dir.as_deref()))?;
    Ok((e, config, cache))
}

pub fn run(
    args: &CompareArgs,
    overrides: &[String],
    cache_dir: Option<&Path>,
    verbosity: Verbosity,
) -> Result<()> {
    let (e, config, cache) = open_ensemble(args.ensemble, overrides, cache_dir)?;
    let split = Split::parse(args.split).ok_or_else(|| {
        Error::Usage(format!(
            "unknown split `{}`; allowed: train, val, test",
            args.split
        ))
    })?;
    let set = features_for(&config, &cache, verbosity, &[split])?.remove(0);
    e.check_compatible(&set.backbone, &set.weights_sha256, set.dim)?;
    if set.classes != e.manifest.classes {
        return Err(Error::Usage(format!(
            "the {} split's classes differ from the ensemble's ({} vs {})",
            args.split,
            set.classes.len(),
            e.manifest.classes.len()
        )));
    }
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
        split: args.split.to_string(),
        classes: e.manifest.classes.clone(),
        timeline: e
            .manifest
            .timeline
            .iter()
            .map(|t| TimelineBar {
                job: t.job.clone(),
                lane: t.lane,
                start_s: t.start_s,
                end_s: t.end_s,
            })
            .collect(),
        resamples: args.resamples,
        seed: config.seed,
    };
    let c = compare(
        ctx,
        &set.labels,
        &approaches,
        &out.specialist_logits,
        &out.specialist_probs,
    )
    .map_err(|m| Error::Usage(format!("metrics: {m}")))?;
    print!("{}", table(&c));
    if let Some(p) = args.json {
        let text = serde_json::to_string_pretty(&c).map_err(|e| Error::Usage(e.to_string()))?;
        write_atomic(p, text.as_bytes())?;
    }
    if let Some(p) = args.csv {
        write_atomic(p, csv(&c).as_bytes())?;
    }
    if let Some(p) = args.report {
        write_atomic(p, crate::report::render_html(&c).as_bytes())?;
        if verbosity > Verbosity::Quiet {
            eprintln!("report written to {}", p.display());
        }
    }
    Ok(())
}

/// The stdout table: one row per approach, then the pairwise verdicts.
pub fn table(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} on {} / {} ({} images, {} classes, {})",
        c.ensemble,
        c.dataset,
        c.split,
        c.n,
        c.classes.len(),
        c.backbone
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| approach | accuracy | top-5 | macro-F1 | balanced acc | NLL | Brier | ECE % | MCE % |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for a in &c.approaches {
        let m = &a.summary;
        let _ = writeln!(
            s,
            "| {} | {:.2}% | {:.2}% | {:.4} | {:.2}% | {:.4} | {:.4} | {:.2} | {:.2} |",
            a.name,
            100.0 * m.accuracy,
            100.0 * m.top5,
            m.macro_f1,
            100.0 * m.balanced_accuracy,
            m.nll,
            m.brier,
            m.ece,
            m.mce
        );
    }
    let _ = writeln!(s);
    let key = |p: &&crate::metrics::compare::PairResult| {
        !(p.a.starts_with("multiclass-temperature") && p.b.starts_with("specialists-calibrated"))
    };
    let mut pairs: Vec<_> = c.pairs.iter().collect();
    pairs.sort_by_key(key);
    let _ = writeln!(
        s,
        "paired tests ({} bootstrap resamples, seed {}):",
        c.bootstrap_resamples, c.seed
    );
    for p in pairs {
        let _ = writeln!(s, "  {} vs {}: {}", p.a, p.b, p.verdict);
    }
    s
}

/// One CSV row per approach with the headline metrics.
pub fn csv(c: &Comparison) -> String {
    let mut s = String::from("ensemble,split,approach,n,accuracy,top5,macro_f1,balanced_accuracy,nll,brier,ece_percent,mce_percent\n");
    for a in &c.approaches {
        let m = &a.summary;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            c.ensemble,
            c.split,
            a.name,
            m.n,
            m.accuracy,
            m.top5,
            m.macro_f1,
            m.balanced_accuracy,
            m.nll,
            m.brier,
            m.ece,
            m.mce
        );
    }
    s
}
