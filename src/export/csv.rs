//! Export, CSV: one row per approach of a comparison (the headline
//! metrics), or one row per scored image (path, label, predicted class,
//! probability, top classes).

use std::fmt::Write as _;

use super::{unsupported, Document, ExportError, Exporter, Format, ScoreRows};
use crate::metrics::compare::Comparison;

pub struct CsvExporter;

impl Exporter for CsvExporter {
    fn format(&self) -> Format {
        Format::Csv
    }

    fn render(&self, doc: Document) -> Result<String, ExportError> {
        match doc {
            Document::Comparison(c) => Ok(csv(c)),
            Document::Scores(rows) => Ok(scores(rows)),
            Document::Study(_) | Document::Curves(_) => Err(unsupported(self.format(), doc)),
        }
    }
}

/// One CSV row per approach with the headline metrics, then the 95 %
/// paired-bootstrap intervals of its MCE, NLL and Brier (`intervals`; the
/// ECE's are `ece_ci_*`). Per-class F1 and pair intervals: JSON and report.
fn csv(c: &Comparison) -> String {
    let mut s = String::from("ensemble,split,approach,n,accuracy,top5,macro_f1,balanced_accuracy,nll,brier,ece_percent,mce_percent,ece_ci_low,ece_ci_high,perfect_ece_mean,calibration_p,mce_ci_low,mce_ci_high,nll_ci_low,nll_ci_high,brier_ci_low,brier_ci_high\n");
    for a in &c.approaches {
        let m = &a.summary;
        let _ = write!(
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
        let iv = c.intervals.approaches.iter().find(|i| i.name == a.name);
        match iv.map(|i| &i.figures) {
            Some(f) => {
                for i in [&f.mce, &f.nll, &f.brier] {
                    let _ = write!(s, ",{},{}", i.low, i.high);
                }
                s.push('\n');
            }
            None => s.push_str(",,,,,,\n"),
        }
    }
    s
}

/// The scored rows: `path,label,predicted,probability,top_k`.
fn scores(rows: &ScoreRows) -> String {
    let mut text = String::from("path,label,predicted,probability,top_k\n");
    for r in &rows.rows {
        let tops: Vec<String> = r.top.iter().map(|(c, q)| format!("{c}:{q:.6}")).collect();
        let _ = writeln!(
            text,
            "{},{},{},{:.6},{}",
            csv_field(&r.path),
            csv_field(r.label.as_deref().unwrap_or("")),
            r.predicted,
            r.probability,
            tops.join(";")
        );
    }
    text
}

/// Quotes a CSV field when it holds a comma, quote or newline.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
