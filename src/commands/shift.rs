//! `ovr compare --against CONFIG`, wiring stages together: a second labelled
//! dataset (e.g. the other emoji style) -> its test features through the
//! ensemble's backbone and the cache -> every approach's outputs ->
//! in-domain vs shifted figures (metrics::shift).

use crate::util::choice::Choice;
use std::path::Path;

use crate::assets::cache::Cache;
use crate::config::Config;
use crate::configured::features::features_for;
use crate::ensemble::Ensemble;
use crate::features::subset::split_by_classes;
use crate::images::dataset::Split;
use crate::metrics::compare::ApproachInput;
use crate::metrics::shift::{shift, Labelled, ShiftReport};
use crate::progress::Verbosity;
use crate::{Error, Result};

/// The ensemble on CONFIG's test split, against its own in-domain rows.
#[allow(clippy::too_many_arguments)]
pub fn report(
    e: &Ensemble,
    in_labels: &[u32],
    in_approaches: &[ApproachInput],
    against: &Path,
    cache: &Cache,
    verbosity: Verbosity,
    resamples: usize,
    seed: u64,
) -> Result<ShiftReport> {
    let other = Config::load(Some(against), &[])?;
    let set = features_for(&other, cache, verbosity, &[Split::Test])?.remove(0);
    e.check_compatible(&set.backbone, &set.weights_sha256, set.dim)?;
    let (known, rest) = split_by_classes(&set, &e.manifest.classes);
    if known.is_empty() {
        return Err(Error::Usage(format!(
            "--against {}: no test image of {} is in a class the ensemble knows",
            against.display(),
            other.dataset.name
        )));
    }
    let out = e.head_outputs(&known.features, known.len())?;
    let approaches: Vec<ApproachInput> = e
        .approaches()
        .into_iter()
        .map(|a| e.approach(&out, a))
        .collect();
    let k = e.manifest.classes.len();
    let results = shift(
        &Labelled {
            labels: in_labels,
            approaches: in_approaches,
        },
        &Labelled {
            labels: &known.labels,
            approaches: &approaches,
        },
        k,
        resamples,
        seed,
    )?;
    let style = other
        .dataset
        .style
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    Ok(ShiftReport {
        dataset: format!("{}{style}", other.dataset.name),
        split: Split::Test.name().to_string(),
        rows: known.len(),
        rows_left_out: rest.len(),
        results,
        resamples,
        seed,
    })
}
