//! Export, Markdown: a study's section (table of arms and the paired
//! comparisons with the reference arm), as the report stage words it.

use super::{unsupported, Document, ExportError, Exporter, Format};

pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn format(&self) -> Format {
        Format::Markdown
    }

    fn render(&self, doc: Document) -> Result<String, ExportError> {
        match doc {
            Document::Study(s) => Ok(crate::report::study::markdown(s)),
            _ => Err(unsupported(self.format(), doc)),
        }
    }
}
