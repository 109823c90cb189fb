//! Export, JSON: every number of a comparison, study or learning curves,
//! pretty-printed (serde). Scored rows are JSON Lines (`jsonl.rs`).

use super::{unsupported, Document, ExportError, Exporter, Format};

pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn format(&self) -> Format {
        Format::Json
    }

    fn render(&self, doc: Document) -> Result<String, ExportError> {
        let r = match doc {
            Document::Comparison(c) => serde_json::to_string_pretty(c),
            Document::Study(s) => serde_json::to_string_pretty(s),
            Document::Curves(c) => serde_json::to_string_pretty(c),
            Document::Scores(_) => return Err(unsupported(self.format(), doc)),
        };
        r.map_err(|source| ExportError::Json {
            document: doc.name(),
            source,
        })
    }
}
