//! Export, HTML: the self-contained reports with plots, drawn by the report
//! stage (`report::render_html` for a comparison, `report::curves` for
//! learning curves).

use super::{unsupported, Document, ExportError, Exporter, Format};

pub struct HtmlExporter;

impl Exporter for HtmlExporter {
    fn format(&self) -> Format {
        Format::Html
    }

    fn render(&self, doc: Document) -> Result<String, ExportError> {
        match doc {
            Document::Comparison(c) => Ok(crate::report::render_html(c)),
            Document::Curves(c) => Ok(crate::report::curves::render_html(c)),
            Document::Scores(_) | Document::Study(_) => Err(unsupported(self.format(), doc)),
        }
    }
}
