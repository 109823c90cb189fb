//! Report stage: the results of `ovr study` — one row per arm (test
//! accuracy, macro-F1, NLL, ECE, training time, and the paired bootstrap
//! interval and McNemar test against the reference arm, as `compare`
//! computes them) rendered as a Markdown section for `docs/experiments.md`
//! and serialized as JSON for machines.

use std::fmt::Write as _;

use serde::Serialize;

use crate::metrics::{Bootstrap, McNemar, Summary};

/// The paired comparison of one arm against the reference arm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VsReference {
    /// Differences are `arm - reference` (fractions).
    pub bootstrap: Bootstrap,
    pub mcnemar: McNemar,
    pub verdict: String,
}

/// One arm's numbers on the test split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmResult {
    pub name: String,
    pub title: String,
    pub head: String,
    /// Feature id (`efficientnet-lite0+efficientnet-lite2:logits`, ...).
    pub features: String,
    pub dim: usize,
    /// Chosen hyperparameters / epochs, in words.
    pub detail: String,
    pub summary: Summary,
    /// Wall time of the training run that produced this arm.
    pub train_seconds: f64,
    /// The arm whose training run this one reused, if any.
    pub shared_training_with: Option<String>,
    pub vs_reference: Option<VsReference>,
}

/// Everything one `ovr study` run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudyOutcome {
    pub study: String,
    pub dataset: String,
    pub classes: usize,
    pub train_images: usize,
    pub val_images: usize,
    pub test_images: usize,
    pub reference: String,
    pub resamples: usize,
    pub seed: u64,
    /// The command line that produced it.
    pub command: String,
    pub arms: Vec<ArmResult>,
}

fn pct(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

/// The Markdown section: a heading, the command, one table, the notes.
pub fn markdown(o: &StudyOutcome) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### {} ({} classes)\n", o.study, o.classes);
    let _ = writeln!(
        s,
        "Dataset `{}`: {} train / {} val / {} test images. Metrics on test; \
         differences vs arm `{}` with a {}-resample paired bootstrap (95% CI) \
         and McNemar's exact test. Produced by:\n",
        o.dataset, o.train_images, o.val_images, o.test_images, o.reference, o.resamples
    );
    let _ = writeln!(s, "```\n{}\n```\n", o.command);
    s.push_str(
        "| arm | features | head | accuracy % | Δ acc vs ref, pts (95% CI) | McNemar p | macro-F1 | NLL | ECE % | train s |\n",
    );
    s.push_str("|---|---|---|---:|---|---:|---:|---:|---:|---:|\n");
    for a in &o.arms {
        let vs = match &a.vs_reference {
            None => ("reference".to_string(), "".to_string()),
            Some(v) => (
                format!(
                    "{:+.2} ({:+.2} to {:+.2})",
                    100.0 * v.bootstrap.accuracy.observed,
                    100.0 * v.bootstrap.accuracy.low,
                    100.0 * v.bootstrap.accuracy.high
                ),
                format!("{:.3}", v.mcnemar.p_value),
            ),
        };
        let train = match &a.shared_training_with {
            Some(other) => format!("{:.1} (= {other})", a.train_seconds),
            None => format!("{:.1}", a.train_seconds),
        };
        let _ = writeln!(
            s,
            "| {} | {} ({}-d) | {} | {} | {} | {} | {:.3} | {:.3} | {:.2} | {} |",
            a.name,
            a.features,
            a.dim,
            a.head,
            pct(a.summary.accuracy),
            vs.0,
            vs.1,
            a.summary.macro_f1,
            a.summary.nll,
            a.summary.ece,
            train
        );
    }
    s.push('\n');
    for a in &o.arms {
        let _ = writeln!(s, "- **{}**: {}. {}.", a.name, a.title, a.detail);
    }
    s.push('\n');
    for a in &o.arms {
        if let Some(v) = &a.vs_reference {
            let _ = writeln!(s, "- {}", v.verdict);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Interval;

    fn summary(acc: f64) -> Summary {
        Summary {
            n: 10,
            k: 3,
            accuracy: acc,
            top5: 1.0,
            macro_f1: 0.5,
            balanced_accuracy: acc,
            nll: 0.9,
            brier: 0.4,
            ece: 3.25,
            mce: 9.0,
            classwise_ece: 1.0,
            adaptive_ece: 3.0,
        }
    }

    #[test]
    fn markdown_has_one_row_per_arm_and_the_reference_comparison() {
        let i = |o: f64| Interval {
            observed: o,
            low: o - 0.02,
            high: o + 0.02,
        };
        let o = StudyOutcome {
            study: "s".into(),
            dataset: "d".into(),
            classes: 3,
            train_images: 30,
            val_images: 10,
            test_images: 10,
            reference: "c".into(),
            resamples: 100,
            seed: 1,
            command: "ovr study configs/x.toml".into(),
            arms: vec![
                ArmResult {
                    name: "c".into(),
                    title: "linear".into(),
                    head: "multiclass-linear".into(),
                    features: "lite0".into(),
                    dim: 1280,
                    detail: "C = 0.01".into(),
                    summary: summary(0.7),
                    train_seconds: 1.25,
                    shared_training_with: None,
                    vs_reference: None,
                },
                ArmResult {
                    name: "d".into(),
                    title: "specialists".into(),
                    head: "specialists-linear".into(),
                    features: "lite0".into(),
                    dim: 1280,
                    detail: "median C = 0.001".into(),
                    summary: summary(0.6),
                    train_seconds: 1.25,
                    shared_training_with: Some("c".into()),
                    vs_reference: Some(VsReference {
                        bootstrap: Bootstrap {
                            accuracy: i(-0.1),
                            macro_f1: i(-0.05),
                            resamples: 100,
                            seed: 1,
                        },
                        mcnemar: McNemar {
                            b: 1,
                            c: 2,
                            p_value: 0.5,
                        },
                        verdict: "No significant difference".into(),
                    }),
                },
            ],
        };
        let md = markdown(&o);
        assert!(
            md.contains("| c | lite0 (1280-d) | multiclass-linear | 70.00 | reference |"),
            "{md}"
        );
        assert!(md.contains("| d | lite0 (1280-d) | specialists-linear | 60.00 | -10.00 (-12.00 to -8.00) | 0.500 |"), "{md}");
        assert!(md.contains("1.2 (= c)"), "{md}");
        assert!(md.contains("ovr study configs/x.toml"));
        assert!(md.contains("No significant difference"));
    }
}
