//! Tests of the report's interval, equivalence and deduplicated sections
//! on the synthetic comparison of `tests.rs`: every approach and pair has
//! its row, the key pair's per-class F1 table one row per class, the TOST
//! figures and flips of every pair appear, and the deduplicated figures
//! with their verdicts when the comparison has them (a note otherwise).

use super::tests::synthetic;
use super::*;
use crate::metrics::dedup::{DedupApproach, DedupPair, Deduplicated, Leak};

fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("<section id=\"{id}\">")).expect(id);
    let end = html[start..].find("</section>").expect("closed") + start;
    &html[start..end]
}

#[test]
fn intervals_section_has_every_approach_pair_and_class() {
    let c = synthetic(Vec::new());
    let html = render_html(&c);
    let s = section(&html, "intervals");
    let n = c.approaches.len();
    assert_eq!(
        s.matches("<tr").count(),
        1 + n + 1 + n * (n - 1) / 2 + 1 + c.classes.len()
    );
    assert!(s.contains("per-class-f1") && s.contains("200 resamples of the 120 rows"));
    // The key approach's ECE interval as the metrics stage computed it.
    let key = c
        .intervals
        .approaches
        .iter()
        .find(|a| a.name == KEY_APPROACH)
        .unwrap();
    let cell = format!(
        "{} <span class=\"desc\">[{}, {}]</span>",
        text::fixed(key.figures.mce.observed, 2),
        text::fixed(key.figures.mce.low, 2),
        text::fixed(key.figures.mce.high, 2)
    );
    assert!(s.contains(&cell), "{cell}");
    assert!(
        s.contains("&lt;b&gt;&amp;&quot;x&quot;"),
        "class names escaped"
    );
}

#[test]
fn equivalence_and_deduplicated_sections_show_the_audit_figures() {
    let mut c = synthetic(Vec::new());
    assert_eq!(c.equivalence.len(), c.pairs.len());
    c.equivalence.clear();
    let html = render_html(&c);
    assert!(section(&html, "equivalence").contains("No pairs tested"));
    assert!(section(&html, "deduplicated").contains("nothing to remove"));
    let labels: Vec<u32> = (0..c.n).map(|i| (i % 5) as u32).collect();
    let preds: Vec<Vec<u32>> = (0..2)
        .map(|a| {
            labels
                .iter()
                .enumerate()
                .map(|(i, &y)| if i % (3 + a) == 0 { (y + 1) % 5 } else { y })
                .collect()
        })
        .collect();
    c.equivalence = crate::metrics::equivalence::pairs(
        &labels,
        &[(KEY_APPROACH, &preds[0]), (KEY_BASELINE, &preds[1])],
        0.05,
    )
    .unwrap();
    let summary = c.approaches[0].summary.clone();
    c.deduplicated = Some(Deduplicated {
        threshold: 0.95,
        leaked: vec![Leak {
            row: 3,
            key: "k".into(),
            train_key: "t".into(),
            cosine: 0.99,
        }],
        rows_left: 119,
        approaches: vec![DedupApproach {
            name: c.approaches[0].name.clone(),
            summary,
        }],
        pairs: vec![DedupPair {
            a: "x".into(),
            b: "<y>".into(),
            accuracy: c.pairs[0].bootstrap.accuracy,
            macro_f1: c.pairs[0].bootstrap.macro_f1,
            verdict: "No significant difference between x and <y>".into(),
        }],
    });
    let html = render_html(&c);
    let e = section(&html, "equivalence");
    let f = &c.equivalence[0].flips;
    assert!(e.contains(&format!(
        "<td class=\"num\">{}</td><td class=\"num\">{}</td>",
        f.a_only, f.b_only
    )));
    assert!(e.contains("±5.0") && e.contains(&text::escape(&c.equivalence[0].sentence)));
    let d = section(&html, "deduplicated");
    assert!(d.contains("1 of the 120 test images") && d.contains("other 119 rows"));
    assert!(d.contains("between x and &lt;y&gt;"));
}
