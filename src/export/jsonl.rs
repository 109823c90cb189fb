//! Export, JSON Lines: one object per scored image (path, label,
//! predicted class, its probability, whether it abstained, the top classes).

use std::fmt::Write as _;

use super::{unsupported, Document, ExportError, Exporter, Format, ScoreRows};

pub struct JsonlExporter;

impl Exporter for JsonlExporter {
    fn format(&self) -> Format {
        Format::Jsonl
    }

    fn render(&self, doc: Document) -> Result<String, ExportError> {
        match doc {
            Document::Scores(rows) => Ok(scores(rows)),
            _ => Err(unsupported(self.format(), doc)),
        }
    }
}

fn scores(rows: &ScoreRows) -> String {
    let mut text = String::new();
    for r in &rows.rows {
        let top: Vec<serde_json::Value> = r
            .top
            .iter()
            .map(|(c, q)| serde_json::json!({"class": c, "probability": q}))
            .collect();
        let v = serde_json::json!({
            "path": r.path,
            "label": r.label,
            "predicted": r.predicted,
            "probability": r.probability,
            "abstained": r.abstained,
            "top": top,
        });
        let _ = writeln!(text, "{v}");
    }
    text
}
