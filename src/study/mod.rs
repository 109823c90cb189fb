//! Study stage: a list of arms (features x head x settings, checked by
//! `config::study`) run through the ordinary stages — cached features,
//! `train_ensemble` or the fine-tune of the top blocks from cached
//! activations (`arms.rs`), the calibrated outputs on test — then scored
//! here: every arm's metrics and its paired comparison (McNemar, bootstrap)
//! with the reference arm. The report stage words the outcome; `ovr study`
//! only wires this to the command line.

use crate::util::choice::Choice;
mod arms;

use crate::config::study::Study;
use crate::config::train::HeadKind;
use crate::ensemble::manifest::HeadRecord;
use crate::metrics::{mcnemar_exact, paired_bootstrap, summarize, verdict, MetricError};
use crate::report::study::{ArmResult, StudyOutcome, VsReference};

pub use arms::{run_arm, Memo};

#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("arm `{arm}` was scored on other test images than the reference arm (an image unreadable for one backbone?)")]
    OtherTestImages { arm: String },
    #[error("arm `{arm}`")]
    Metrics {
        arm: String,
        #[source]
        source: MetricError,
    },
    #[error("arm `{arm}`: cannot encode its config as the training-memo key")]
    MemoKey {
        arm: String,
        #[source]
        source: serde_json::Error,
    },
}

/// One arm's test predictions and provenance.
pub struct ArmRun {
    pub labels: Vec<u32>,
    pub keys: Vec<String>,
    pub probs: Vec<f32>,
    pub preds: Vec<u32>,
    pub features: String,
    pub dim: usize,
    pub detail: String,
    pub train_seconds: f64,
    pub shared_with: Option<String>,
    /// Train and validation rows.
    pub sizes: (usize, usize),
}

impl ArmRun {
    /// Test accuracy of the arm (for progress lines).
    pub fn accuracy(&self) -> f64 {
        let right = self
            .preds
            .iter()
            .zip(&self.labels)
            .filter(|(p, y)| p == y)
            .count();
        right as f64 / self.labels.len().max(1) as f64
    }
}

/// The metrics of every arm and its paired comparison with the reference.
pub fn score(study: &Study, runs: &[ArmRun], command: String) -> Result<StudyOutcome, StudyError> {
    let reference = &runs[study.reference];
    let classes = reference.probs.len() / reference.labels.len().max(1);
    let mut arms = Vec::new();
    for (arm, r) in study.arms.iter().zip(runs) {
        if r.keys != reference.keys {
            return Err(StudyError::OtherTestImages {
                arm: arm.name.clone(),
            });
        }
        let bad = |source: MetricError| StudyError::Metrics {
            arm: arm.name.clone(),
            source,
        };
        let summary = summarize(&r.labels, &r.probs, &r.preds, classes).map_err(bad)?;
        let vs_reference = if std::ptr::eq(r, reference) {
            None
        } else {
            let correct =
                |p: &[u32]| -> Vec<bool> { p.iter().zip(&r.labels).map(|(a, y)| a == y).collect() };
            let m = mcnemar_exact(&correct(&r.preds), &correct(&reference.preds)).map_err(bad)?;
            let b = paired_bootstrap(
                &r.labels,
                &r.preds,
                &reference.preds,
                classes,
                study.resamples,
                study.base.seed,
            )
            .map_err(bad)?;
            let ref_name = &study.arms[study.reference].name;
            Some(VsReference {
                verdict: verdict(
                    &format!("arm {}", arm.name),
                    &format!("arm {ref_name}"),
                    &b.accuracy,
                    &m,
                ),
                bootstrap: b,
                mcnemar: m,
            })
        };
        arms.push(ArmResult {
            name: arm.name.clone(),
            title: arm.title.clone(),
            head: arm.head.name().to_string(),
            features: r.features.clone(),
            dim: r.dim,
            detail: r.detail.clone(),
            summary,
            train_seconds: r.train_seconds,
            shared_training_with: r.shared_with.clone(),
            vs_reference,
        });
    }
    let base = &study.base;
    Ok(StudyOutcome {
        study: study.name.clone(),
        dataset: base.dataset.name.clone(),
        classes,
        train_images: reference.sizes.0,
        val_images: reference.sizes.1,
        test_images: reference.labels.len(),
        reference: study.arms[study.reference].name.clone(),
        resamples: study.resamples,
        seed: base.seed,
        command,
        arms,
    })
}

fn head_word(h: &HeadRecord) -> String {
    match (h.kind, h.c) {
        (HeadKind::Linear, Some(c)) => format!("C = {c}"),
        _ => format!(
            "{} epochs (best {})",
            h.iterations,
            h.best_epoch.unwrap_or(0)
        ),
    }
}

/// Median of the specialists' chosen C or epochs, in words.
fn specialists_word(hs: &[HeadRecord]) -> String {
    let mut cs: Vec<f64> = hs.iter().filter_map(|h| h.c).collect();
    if cs.len() == hs.len() && !cs.is_empty() {
        cs.sort_by(f64::total_cmp);
        return format!("{} specialists, median C = {}", hs.len(), cs[cs.len() / 2]);
    }
    let mut e: Vec<usize> = hs.iter().map(|h| h.iterations).collect();
    e.sort_unstable();
    format!(
        "{} specialists, median {} epochs",
        hs.len(),
        e.get(e.len() / 2).copied().unwrap_or(0)
    )
}
