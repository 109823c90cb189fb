//! Export stage, the last step of the data flow (after metrics and report):
//! one exporter per output format (table, CSV, JSON, JSON Lines, Markdown,
//! HTML), as hyperfine has one per format. Each turns a finished
//! [`Document`] (a comparison, scored rows, a study, learning curves) into
//! bytes; commands pick the format from their flags and write the result to
//! stdout or atomically to a file. A format a document has no form in is an
//! [`ExportError::Unsupported`], never an empty file.

pub mod csv;
pub mod html;
pub mod json;
pub mod jsonl;
pub mod markdown;
pub mod scores;
pub mod table;

use crate::util::choice::Choice;
use std::path::{Path, PathBuf};

use crate::curves::Curves;
use crate::metrics::compare::Comparison;
use crate::report::study::StudyOutcome;
pub use scores::{ScoreRow, ScoreRows};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Markdown-style table printed on stdout.
    Table,
    Csv,
    Json,
    Jsonl,
    Markdown,
    Html,
}

impl Choice for Format {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("table", Format::Table),
        ("csv", Format::Csv),
        ("json", Format::Json),
        ("jsonl", Format::Jsonl),
        ("markdown", Format::Markdown),
        ("html", Format::Html),
    ];
    const UNKNOWN: &'static str = "unknown export format";
}

/// A finished result that can be exported.
#[derive(Clone, Copy)]
pub enum Document<'a> {
    /// `ovr compare`: every approach on one split.
    Comparison(&'a Comparison),
    /// `ovr score`: one row per image.
    Scores(&'a ScoreRows),
    /// `ovr study`: one row per arm.
    Study(&'a StudyOutcome),
    /// `ovr curves`: per-class learning curves.
    Curves(&'a Curves),
}

impl Document<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Document::Comparison(_) => "comparison",
            Document::Scores(_) => "scored rows",
            Document::Study(_) => "study",
            Document::Curves(_) => "learning curves",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no {format} form of a {document}")]
    Unsupported {
        format: &'static str,
        document: &'static str,
    },
    #[error("cannot encode the {document} as JSON")]
    Json {
        document: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        /// Boxed: an asset error is large and this one is rare.
        #[source]
        source: Box<crate::assets::cache::AssetError>,
    },
}

/// One output format.
pub trait Exporter {
    fn format(&self) -> Format;
    /// `doc` in this format.
    fn render(&self, doc: Document) -> Result<String, ExportError>;
}

/// The error of a format with no form of `doc`.
pub(crate) fn unsupported(format: Format, doc: Document) -> ExportError {
    ExportError::Unsupported {
        format: format.name(),
        document: doc.name(),
    }
}

/// The exporter of `format`.
pub fn exporter(format: Format) -> &'static dyn Exporter {
    match format {
        Format::Table => &table::TableExporter,
        Format::Csv => &csv::CsvExporter,
        Format::Json => &json::JsonExporter,
        Format::Jsonl => &jsonl::JsonlExporter,
        Format::Markdown => &markdown::MarkdownExporter,
        Format::Html => &html::HtmlExporter,
    }
}

/// `doc` in `format`.
pub fn render(format: Format, doc: Document) -> Result<String, ExportError> {
    exporter(format).render(doc)
}

/// `doc` in `format`, written atomically to `path`.
pub fn to_file(path: &Path, format: Format, doc: Document) -> Result<(), ExportError> {
    let text = render(format, doc)?;
    crate::assets::cache::write_atomic(path, text.as_bytes()).map_err(|source| ExportError::Write {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests;
