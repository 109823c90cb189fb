//! Exporters on synthetic documents with known bytes, and the formats a
//! document has no form in.

use super::*;

fn rows() -> ScoreRows {
    ScoreRows {
        rows: vec![
            ScoreRow {
                path: "a/1,2.png".into(),
                label: Some("cat".into()),
                predicted: "cat".into(),
                probability: 0.75,
                abstained: false,
                top: vec![("cat".into(), 0.75), ("dog".into(), 0.25)],
            },
            ScoreRow {
                path: "b\"q\".png".into(),
                label: None,
                predicted: "unknown".into(),
                probability: 0.5,
                abstained: true,
                top: vec![("dog".into(), 0.5)],
            },
        ],
    }
}

#[test]
fn score_rows_as_csv_quote_what_needs_quoting() {
    let r = rows();
    let csv = render(Format::Csv, Document::Scores(&r)).unwrap();
    assert_eq!(
        csv,
        "path,label,predicted,probability,top_k\n\
         \"a/1,2.png\",cat,cat,0.750000,cat:0.750000;dog:0.250000\n\
         \"b\"\"q\"\".png\",,unknown,0.500000,dog:0.500000\n"
    );
}

#[test]
fn score_rows_as_json_lines_one_object_per_row() {
    let r = rows();
    let text = render(Format::Jsonl, Document::Scores(&r)).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["label"], "cat");
    assert_eq!(lines[0]["top"][1]["class"], "dog");
    assert_eq!(lines[0]["probability"], 0.75);
    assert!(lines[1]["label"].is_null());
    assert_eq!(lines[1]["abstained"], true);
    // Keys in serde_json's sorted order, as `ovr score --jsonl` always wrote them.
    assert!(
        text.starts_with("{\"abstained\":false,\"label\":\"cat\",\"path\":"),
        "{text}"
    );
}

#[test]
fn formats_without_a_form_are_errors_not_empty_files() {
    let r = rows();
    for f in [Format::Table, Format::Json, Format::Markdown, Format::Html] {
        let e = render(f, Document::Scores(&r)).unwrap_err();
        assert!(
            matches!(e, ExportError::Unsupported { format, .. } if format == f.name()),
            "{e}"
        );
    }
    assert_eq!(exporter(Format::Csv).format(), Format::Csv);
    for &(_, f) in Format::TABLE {
        assert_eq!(exporter(f).format(), f);
    }
}

#[test]
fn to_file_writes_what_render_returns() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rows.csv");
    let r = rows();
    to_file(&p, Format::Csv, Document::Scores(&r)).unwrap();
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        render(Format::Csv, Document::Scores(&r)).unwrap()
    );
    let e = to_file(&p, Format::Html, Document::Scores(&r)).unwrap_err();
    assert!(e.to_string().contains("no html form"), "{e}");
}
