//! Audit stage (`ovr audit`): an audit of the data behind the numbers, on
//! the cached features, beside `ensemble` and `metrics` in the data flow:
//!
//! cached train / val / test features -> [`duplicates`] (exact cosine
//! nearest neighbours, [`neighbours`]: near-duplicate pairs inside and
//! across splits, per class, with paths; test images leaked from train) and
//! [`label_errors`] (k-fold out-of-fold probabilities of the multiclass
//! linear head, trained through the scheduler, ranked confident-learning
//! style) -> [`Audit`] -> JSON, the stdout summary and [`html`] (one
//! self-contained page with embedded thumbnails from [`thumbs`]).
//! [`leakage`] is the small hook `compare` calls: the metrics again without
//! the test images that have a near-duplicate in train.

pub mod confident;
pub mod duplicates;
pub mod html;
pub mod ivf;
pub mod label_errors;
pub mod leakage;
pub mod near;
pub mod neighbours;
pub mod thumbs;

#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Serialize;

pub use crate::config::audit::AuditConfig;
use crate::config::Config;
use crate::features::store::FeatureSet;
pub use duplicates::Duplicates;
pub use label_errors::LabelErrors;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the {split} split's features disagree with train's: {detail}")]
    Mismatch { split: String, detail: String },
    #[error("out-of-fold training, fold {} of {folds}", fold + 1)]
    Fold {
        fold: usize,
        folds: usize,
        #[source]
        source: Box<label_errors::FoldError>,
    },
    #[error("the training split has {rows} images, too few for {folds} folds")]
    TooFew { rows: usize, folds: usize },
}

/// Everything `ovr audit` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Audit {
    pub dataset: String,
    pub backbone: String,
    pub classes: Vec<String>,
    /// Rows of train, val, test.
    pub rows: [usize; 3],
    pub settings: AuditConfig,
    pub seed: u64,
    pub duplicates: Duplicates,
    pub label_errors: LabelErrors,
    pub seconds: f64,
}

fn check(sets: [&FeatureSet; 3]) -> Result<(), AuditError> {
    let t = sets[0];
    for s in &sets[1..] {
        let detail = if s.classes != t.classes {
            "class lists differ".to_string()
        } else if s.dim != t.dim || s.backbone != t.backbone {
            format!("{} {}-d vs {} {}-d", s.backbone, s.dim, t.backbone, t.dim)
        } else {
            continue;
        };
        return Err(AuditError::Mismatch {
            split: s.split.clone(),
            detail,
        });
    }
    Ok(())
}

/// Runs both audits on train, val and test (in that order).
pub fn audit(
    sets: [&FeatureSet; 3],
    config: &Config,
    stop: &Arc<AtomicBool>,
) -> Result<Audit, AuditError> {
    let t0 = std::time::Instant::now();
    check(sets)?;
    let a = &config.audit;
    let train = sets[0];
    if train.len() < a.folds {
        return Err(AuditError::TooFew {
            rows: train.len(),
            folds: a.folds,
        });
    }
    let near = near::NearSearch::new(a, config.seed);
    let duplicates = duplicates::find_duplicates(sets, &near);
    let (probs, cs) =
        label_errors::out_of_fold(train, sets[1], &config.train, a.folds, config.seed, stop)?;
    let label_errors = label_errors::rank(train, &probs, a.candidates_per_class, a.folds, cs);
    Ok(Audit {
        dataset: train.dataset.clone(),
        backbone: train.backbone.clone(),
        classes: train.classes.clone(),
        rows: [sets[0].len(), sets[1].len(), sets[2].len()],
        settings: a.clone(),
        seed: config.seed,
        duplicates,
        label_errors,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The stdout summary of an audit.
pub fn summary(a: &Audit) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let d = &a.duplicates;
    let _ = writeln!(
        s,
        "audit of {} ({}; {} train / {} val / {} test images, {} classes, {:.1} s)",
        a.dataset,
        a.backbone,
        a.rows[0],
        a.rows[1],
        a.rows[2],
        a.classes.len(),
        a.seconds
    );
    let how = match d.search.index {
        "exact" => "exact search".to_string(),
        _ => format!(
            "approximate search: {} cells, {} probed per image (audit.index)",
            d.search.lists, d.search.probes
        ),
    };
    let _ = writeln!(
        s,
        "\nnear-duplicates: cosine >= {} (audit.duplicate_cosine) of the raw features, {how}",
        d.threshold
    );
    let _ = writeln!(
        s,
        "nearest training image's cosine, by split (percentiles):"
    );
    for n in &d.nearest_train {
        let q: Vec<String> = n
            .quantiles
            .iter()
            .map(|(p, v)| format!("p{p}={v:.4}"))
            .collect();
        let _ = writeln!(
            s,
            "  {}: {} rows, {} at or above the threshold; {}",
            n.split,
            n.rows,
            n.at_or_above,
            q.join(" ")
        );
    }
    let _ = writeln!(s, "| splits | pairs | different labels |\n|---|---:|---:|");
    for p in &d.split_pairs {
        let _ = writeln!(
            s,
            "| {} - {} | {} | {} |",
            p.split_a, p.split_b, p.pairs, p.label_conflicts
        );
    }
    let _ = writeln!(
        s,
        "test images with a near-duplicate in train: {} of {}",
        d.test_leaked.len(),
        a.rows[2]
    );
    for l in d.test_leaked.iter().take(10) {
        let _ = writeln!(s, "  {} ~ {} (cosine {:.4})", l.key, l.train_key, l.cosine);
    }
    let e = &a.label_errors;
    let _ = writeln!(
        s,
        "\nlikely label errors: {}-fold out-of-fold multiclass head (C per fold {:?}), accuracy {:.2}% out of fold; {} of {} training images flagged by the confident joint; ranked by {}",
        e.folds,
        e.c_per_fold,
        100.0 * e.out_of_fold_accuracy,
        e.flagged,
        a.rows[0],
        e.ranking
    );
    let _ = writeln!(s, "| rank | image | given | suggested | p(given) | margin | flagged |\n|---:|---|---|---|---:|---:|---|");
    for c in e.top.iter().take(15) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.4} | {:+.4} | {} |",
            c.rank,
            c.key,
            c.given,
            c.suggested,
            c.self_confidence,
            c.margin,
            if c.flagged { "yes" } else { "" }
        );
    }
    s
}
