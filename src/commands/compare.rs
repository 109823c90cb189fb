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
use crate::report::text::{p_value, signed};
use crate::{Error, Result};

/// Options of `ovr compare` besides the config.
pub struct CompareArgs<'a> {
    pub ensemble: &'a Path,
    pub split: &'a str,
    pub json: Option<&'a Path>,
    pub csv: Option<&'a Path>,
    pub report: Option<&'a Path>,
    pub resamples: usize,
    /// TOST margin, percentage points.
    pub equivalence_margin: f64,
    /// Bootstrap seed; `None`: the ensemble's seed.
    pub seed: Option<u64>,
    /// Images of classes the ensemble never saw (open-set figures).
    pub unknown: Option<&'a Path>,
    /// A second dataset config scored beside the in-domain split.
    pub against: Option<&'a Path>,
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

/// `compare` evaluates an ensemble on its own dataset's splits: an override
/// of the seed or of the dataset would re-split (or swap) the images, so
/// that "test" could hold training rows. Refused, naming the field.
fn same_split_as_training(e: &Ensemble, config: &Config) -> Result<()> {
    let saved = ensemble_config(e, &[])?;
    let (a, b) = (&saved.dataset, &config.dataset);
    let changed = [
        ("seed", saved.seed != config.seed),
        ("dataset.kind / dataset.root", a.kind != b.kind),
        ("dataset.val_fraction", a.val_fraction != b.val_fraction),
        ("dataset.test_fraction", a.test_fraction != b.test_fraction),
        (
            "dataset.limit_per_class",
            a.limit_per_class != b.limit_per_class,
        ),
        ("dataset.style", a.style != b.style),
    ];
    match changed.iter().find(|(_, c)| *c) {
        Some((field, _)) => Err(Error::Usage(format!(
            "`{field}` differs from the value ensemble `{}` was trained with: compare \
             evaluates on the ensemble's own split, and a different {field} would re-split or \
             swap the images (test rows could be training rows). Drop that --set; use \
             `compare --seed` for the bootstrap seed or `ovr score` for other images",
            e.manifest.name
        ))),
        None => Ok(()),
    }
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
    same_split_as_training(&e, &config)?;
    let split = Split::parse(args.split).ok_or_else(|| {
        Error::Usage(format!(
            "unknown split `{}`; allowed: train, val, test",
            args.split
        ))
    })?;
    let wanted: &[Split] = if split == Split::Train {
        &[split]
    } else {
        &[split, Split::Train]
    };
    let mut sets = features_for(&config, &cache, verbosity, wanted)?;
    let all = sets.remove(0);
    e.check_compatible(&all.backbone, &all.weights_sha256, all.dim)?;
    let expected = e.manifest.classes.len() + e.manifest.holdout_classes.len();
    let strangers = all
        .classes
        .iter()
        .any(|c| !e.manifest.classes.contains(c) && !e.manifest.holdout_classes.contains(c));
    if strangers || all.classes.len() != expected {
        return Err(Error::Usage(format!(
            "the {} split's classes differ from the ensemble's ({} vs {} trained + {} held out)",
            args.split,
            all.classes.len(),
            e.manifest.classes.len(),
            e.manifest.holdout_classes.len()
        )));
    }
    let (set, held) = crate::features::subset::split_by_classes(&all, &e.manifest.classes);
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
        seed,
    };
    let mut c = compare(
        ctx,
        &set.labels,
        &approaches,
        &out.specialist_logits,
        &out.specialist_probs,
    )
    .map_err(|m| Error::Usage(format!("metrics: {m}")))?;
    if let Some(other) = args.against {
        c.shift = Some(super::shift::report(
            &e,
            &set.labels,
            &approaches,
            other,
            &cache,
            verbosity,
            args.resamples,
            seed,
        )?);
    }
    if !held.is_empty() || args.unknown.is_some() {
        let (unknown, sources) = super::open_set::unknown_rows(
            held,
            args.unknown,
            &config,
            &cache,
            verbosity,
            &e.manifest.holdout_classes,
        )?;
        c.open_set = Some(super::open_set::report(
            &e,
            &config,
            &cache,
            verbosity,
            &set,
            &unknown,
            sources,
            args.resamples,
            seed,
        )?);
    }
    if !(args.equivalence_margin > 0.0 && args.equivalence_margin < 100.0) {
        return Err(Error::Usage(format!(
            "--equivalence-margin {} must be in (0, 100) points",
            args.equivalence_margin
        )));
    }
    let named: Vec<(&str, &[u32])> = approaches
        .iter()
        .map(|a| (a.name.as_str(), a.preds.as_slice()))
        .collect();
    c.equivalence =
        crate::metrics::equivalence::pairs(&set.labels, &named, args.equivalence_margin / 100.0)
            .map_err(|m| Error::Usage(format!("metrics: {m}")))?;
    if let Some(train) = sets.pop() {
        c.deduplicated = crate::audit::leakage::deduplicated(
            &train,
            &set,
            config.audit.duplicate_cosine,
            &approaches,
            args.resamples,
            seed,
        )
        .map_err(|m| Error::Usage(format!("metrics: {m}")))?;
    }
    print!("{}", table(&c));
    print!("{}", crate::metrics::equivalence::table(&c.equivalence));
    if let Some(d) = &c.deduplicated {
        eprintln!("warning: {} of the {} {} images have a near-duplicate in train (cosine >= {}); the figures without them follow", d.leaked.len(), c.n, args.split, d.threshold);
        print!("{}", crate::audit::leakage::table(d, args.split));
    }
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
    calibration_table(&mut s, c);
    if let Some(o) = &c.open_set {
        open_set_table(&mut s, o);
    }
    if let Some(r) = &c.shift {
        shift_table(&mut s, c, r);
    }
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
        let names = [p.a.as_str(), p.b.as_str()];
        let key_pair =
            names.contains(&"multiclass-temperature") && names.contains(&"specialists-calibrated");
        if key_pair {
            let d = &p.calibration;
            let _ = writeln!(
                s,
                "    calibration, {} - {}: ECE {} points (95% CI {} to {}), NLL {} ({} to {}), Brier {} ({} to {})",
                p.a,
                p.b,
                signed(d.ece.observed, 2),
                signed(d.ece.low, 2),
                signed(d.ece.high, 2),
                signed(d.nll.observed, 4),
                signed(d.nll.low, 4),
                signed(d.nll.high, 4),
                signed(d.brier.observed, 4),
                signed(d.brier.low, 4),
                signed(d.brier.high, 4)
            );
        }
    }
    s
}

/// How far each ECE can be trusted: its bootstrap interval beside the ECE a
/// perfectly calibrated model with the same confidences shows on this split.
fn calibration_table(s: &mut String, c: &Comparison) {
    let _ = writeln!(
        s,
        "calibration ({} rows, 15-bin ECE %): 95% bootstrap CI, and the ECE a perfectly calibrated model with the same confidences shows on this many rows (mean, 95th percentile); p tests \"calibrated\" (consistency resampling)"
    , c.n);
    let _ = writeln!(
        s,
        "| approach | ECE % | 95% CI | perfect-model ECE % | 95th % | p | classwise ECE % | adaptive ECE % |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for a in &c.approaches {
        let u = &a.calibration;
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} to {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.2} |",
            a.name,
            u.ece.observed,
            u.ece.low,
            u.ece.high,
            u.perfect_ece_mean,
            u.perfect_ece_p95,
            p_value(u.p_value),
            a.summary.classwise_ece,
            a.summary.adaptive_ece
        );
    }
    let _ = writeln!(s);
}

/// Known vs unknown rows: every approach's known-ness figures, the key
/// AUROC differences and the thresholds `score --abstain` can take.
fn open_set_table(s: &mut String, o: &crate::metrics::open_set::OpenSetReport) {
    let _ = writeln!(
        s,
        "open set: {} known rows vs {} unknown ({}); AUROC known-vs-unknown, FPR at 95% TPR, AURC (risk-coverage area on the known rows)",
        o.known_rows,
        o.unknown_rows,
        o.unknown_sources.join("; ")
    );
    let _ = writeln!(s, "| approach | known-ness | AUROC | FPR@95%TPR | AURC |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|");
    for r in &o.results {
        let _ = writeln!(
            s,
            "| {} | {} | {:.4} | {:.4} | {:.4} |",
            r.approach, r.score, r.auroc, r.fpr_at_95_tpr, r.aurc
        );
    }
    for p in &o.pairs {
        let d = &p.auroc_difference;
        let _ = writeln!(
            s,
            "  AUROC {} - {}: {} (95% CI {} to {})",
            p.a,
            p.b,
            signed(d.observed, 4),
            signed(d.low, 4),
            signed(d.high, 4)
        );
    }
    for t in o.thresholds.iter().filter(|t| {
        (t.approach == "specialists-calibrated" || t.approach == "multiclass-temperature")
            && t.score == "max-probability"
    }) {
        let _ = writeln!(
            s,
            "  threshold keeping {:.0}% of the {} split's known rows, {}: `ovr score --approach {} --abstain {:.4}`",
            100.0 * t.coverage,
            t.split,
            t.approach,
            t.approach,
            t.value
        );
    }
    let _ = writeln!(s);
}

/// In-domain vs the `--against` dataset: every approach's figures and losses.
fn shift_table(s: &mut String, c: &Comparison, r: &crate::metrics::shift::ShiftReport) {
    let _ = writeln!(
        s,
        "shift: {} / {} ({} rows; {} of unknown classes left out) against {} / {} ({} rows); loss = in-domain minus shifted (NLL, ECE: shifted minus in-domain), 95% bootstrap CI",
        r.dataset, r.split, r.rows, r.rows_left_out, c.dataset, c.split, c.n
    );
    let _ = writeln!(
        s,
        "| approach | accuracy in / shifted | loss, points | macro-F1 loss, points | NLL rise | ECE in / shifted | ECE rise, points |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    let ci = |i: &crate::metrics::Interval, scale: f64, d: usize| {
        format!(
            "{} ({} to {})",
            signed(i.observed * scale, d),
            signed(i.low * scale, d),
            signed(i.high * scale, d)
        )
    };
    for x in &r.results {
        let _ = writeln!(
            s,
            "| {} | {:.2}% / {:.2}% | {} | {} | {} | {:.2} / {:.2} | {} |",
            x.approach,
            100.0 * x.in_domain.accuracy,
            100.0 * x.shifted.accuracy,
            ci(&x.accuracy_drop, 100.0, 1),
            ci(&x.macro_f1_drop, 100.0, 1),
            ci(&x.nll_rise, 1.0, 3),
            x.in_domain.ece,
            x.shifted.ece,
            ci(&x.ece_rise, 1.0, 2)
        );
    }
    let _ = writeln!(s);
}

/// One CSV row per approach with the headline metrics.
pub fn csv(c: &Comparison) -> String {
    let mut s = String::from("ensemble,split,approach,n,accuracy,top5,macro_f1,balanced_accuracy,nll,brier,ece_percent,mce_percent,ece_ci_low,ece_ci_high,perfect_ece_mean,calibration_p\n");
    for a in &c.approaches {
        let m = &a.summary;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
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
            m.mce,
            a.calibration.ece.low,
            a.calibration.ece.high,
            a.calibration.perfect_ece_mean,
            a.calibration.p_value
        );
    }
    s
}
