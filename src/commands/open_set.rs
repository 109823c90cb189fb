//! `ovr compare`'s "none of these" part, wiring stages together: the test
//! rows of held-out classes and `--unknown` images -> the ensemble's
//! outputs -> known-ness scores (ensemble::knownness) -> open-set figures
//! (metrics::open_set), with thresholds chosen on the calibration split.

use crate::util::choice::Choice;
use std::path::Path;

use crate::assets::cache::Cache;
use crate::config::Config;
use crate::configured::features::{features_for, input_features};
use crate::ensemble::knownness::{knownness, Knownness};
use crate::ensemble::predict::HeadOutputs;
use crate::ensemble::Ensemble;
use crate::features::store::FeatureSet;
use crate::images::dataset::Split;
use crate::metrics::compare::ApproachInput;
use crate::metrics::open_set::{
    auroc_difference, open_set, threshold_at_coverage, AurocPair, OpenSetInput, OpenSetReport,
    Threshold,
};
use crate::progress::Verbosity;
use crate::{Error, Result};

/// Coverage of the known calibration rows the suggested thresholds keep.
pub const THRESHOLD_COVERAGE: f64 = 0.95;

/// The known-ness scores of every approach on some rows.
fn scores(
    e: &Ensemble,
    set: &FeatureSet,
) -> Result<(HeadOutputs, Vec<ApproachInput>, Vec<Knownness>)> {
    let out = e.head_outputs(&set.features, set.len())?;
    let inputs: Vec<ApproachInput> = e
        .approaches()
        .into_iter()
        .map(|a| e.approach(&out, a))
        .collect();
    let k = knownness(&out, &inputs);
    Ok((out, inputs, k))
}

/// Open-set figures of every approach: known rows = `known` (labels in the
/// ensemble's classes), unknown rows = every row of `unknown`.
#[allow(clippy::too_many_arguments)]
pub fn report(
    e: &Ensemble,
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
    known: &FeatureSet,
    unknown: &FeatureSet,
    unknown_sources: Vec<String>,
    resamples: usize,
    seed: u64,
) -> Result<OpenSetReport> {
    let (_, known_inputs, known_scores) = scores(e, known)?;
    let (_, _, unknown_scores) = scores(e, unknown)?;
    let correct = |name: &str| -> Vec<bool> {
        let preds = known_inputs
            .iter()
            .find(|a| a.name == name)
            .or_else(|| known_inputs.iter().find(|a| a.name.starts_with(name)))
            .map(|a| a.preds.clone())
            .unwrap_or_default();
        preds
            .iter()
            .zip(&known.labels)
            .map(|(p, y)| p == y)
            .collect()
    };
    let inputs: Vec<OpenSetInput> = known_scores
        .iter()
        .zip(&unknown_scores)
        .map(|(k, u)| {
            // Head-level scores rank the rows the head's default approach predicts.
            let by = match k.approach.as_str() {
                "specialists" => "specialists-calibrated",
                "multiclass" => "multiclass-temperature",
                other => other,
            };
            OpenSetInput {
                approach: k.approach.clone(),
                score: k.score.to_string(),
                known: k.values.clone(),
                known_correct: correct(by),
                unknown: u.values.clone(),
            }
        })
        .collect();
    let metric = Error::Metric;
    let results = inputs
        .iter()
        .map(open_set)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(metric)?;
    let find = |a: &str, s: &str| inputs.iter().find(|x| x.approach == a && x.score == s);
    let mut pairs = Vec::new();
    for (a, b) in [
        (
            ("specialists-calibrated", "max-probability"),
            ("multiclass-temperature", "max-probability"),
        ),
        (("specialists", "max-sigmoid"), ("multiclass", "energy")),
    ] {
        if let (Some(x), Some(y)) = (find(a.0, a.1), find(b.0, b.1)) {
            pairs.push(AurocPair {
                a: format!("{}/{}", a.0, a.1),
                b: format!("{}/{}", b.0, b.1),
                auroc_difference: auroc_difference(x, y, resamples, seed).map_err(metric)?,
            });
        }
    }
    Ok(OpenSetReport {
        known_rows: known.len(),
        unknown_rows: unknown.len(),
        unknown_sources,
        results,
        pairs,
        thresholds: thresholds(e, config, cache, verbosity)?,
        resamples,
        seed,
    })
}

/// Thresholds keeping [`THRESHOLD_COVERAGE`] of the calibration split's rows
/// (the ensemble's held-out known rows), for every score.
fn thresholds(
    e: &Ensemble,
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<Vec<Threshold>> {
    let split = e.manifest.calibration.split.clone();
    let Some(which) = Split::parse(&split) else {
        return Ok(Vec::new());
    };
    let set = features_for(config, cache, verbosity, &[which])?.remove(0);
    let (known, _) = crate::features::subset::split_by_classes(&set, &e.manifest.classes);
    if known.is_empty() {
        return Ok(Vec::new());
    }
    let (_, _, s) = scores(e, &known)?;
    Ok(s.iter()
        .filter_map(|k| {
            threshold_at_coverage(&k.values, THRESHOLD_COVERAGE).map(|value| Threshold {
                approach: k.approach.clone(),
                score: k.score.to_string(),
                split: split.clone(),
                coverage: THRESHOLD_COVERAGE,
                value,
            })
        })
        .collect())
}

/// Unknown rows for `compare`: the split's rows of held-out classes plus
/// the `--unknown` images, as one set (labels meaningless).
pub fn unknown_rows(
    held: FeatureSet,
    extra: Option<&Path>,
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
    holdout: &[String],
) -> Result<(FeatureSet, Vec<String>)> {
    let mut set = held;
    let mut sources = Vec::new();
    if !set.is_empty() {
        sources.push(format!("held-out classes: {}", holdout.join(", ")));
    }
    if let Some(p) = extra {
        let (_, more) = input_features(p, config, cache, verbosity)?;
        if more.dim != set.dim {
            return Err(Error::Usage(format!(
                "--unknown {}: features of dimension {} (the ensemble's are {})",
                p.display(),
                more.dim,
                set.dim
            )));
        }
        sources.push(format!("--unknown {} ({} images)", p.display(), more.len()));
        set.keys.extend(more.keys);
        set.labels.extend(more.labels.iter().map(|_| 0));
        set.features.extend(more.features);
    }
    Ok((set, sources))
}
