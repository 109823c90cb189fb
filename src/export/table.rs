//! Export, table: the Markdown-style tables printed on stdout — a
//! comparison (every approach, the calibration uncertainty, the intervals on
//! every figure, the open-set and shift figures when present, the paired
//! tests, the TOST / flip table and the figures without leaked test images)
//! and the ranked learning curves (worded by the report stage).

mod audit;
mod intervals;

use std::fmt::Write as _;

use super::{unsupported, Document, ExportError, Exporter, Format};
use crate::metrics::compare::Comparison;
use crate::report::text::{p_value, signed};

pub struct TableExporter;

impl Exporter for TableExporter {
    fn format(&self) -> Format {
        Format::Table
    }

    fn render(&self, doc: Document) -> Result<String, ExportError> {
        match doc {
            Document::Comparison(c) => Ok(table(c)),
            Document::Curves(c) => Ok(crate::report::curves::text(c)),
            Document::Scores(_) | Document::Study(_) => Err(unsupported(self.format(), doc)),
        }
    }
}

/// The stdout table: one row per approach, then the pairwise verdicts.
fn table(c: &Comparison) -> String {
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
    intervals::section(&mut s, c);
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
    audit::equivalence(&mut s, &c.equivalence);
    if let Some(d) = &c.deduplicated {
        audit::deduplicated(&mut s, d, &c.split);
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
