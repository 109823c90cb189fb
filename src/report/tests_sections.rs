//! Tests of the report's interval, equivalence and deduplicated sections
//! on the synthetic comparison of `tests.rs`: every approach and pair has
//! its row, the key pair's per-class F1 table one row per class, the TOST
//! figures and flips of every pair appear, and the deduplicated figures
//! with their verdicts when the comparison has them (a note otherwise),
//! and the C rule of every head with the count of heads it moved.

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

#[test]
fn c_rule_section_lists_every_head_and_counts_the_moved_ones() {
    use crate::ensemble::manifest::CRuleRecord;
    use crate::ensemble::params::CRule;
    use crate::heads::ClassWeighting;
    use crate::metrics::compare::HeadCRule;
    let mut c = synthetic(Vec::new());
    let html = render_html(&c);
    assert!(section(&html, "c-rule").contains("No C rule recorded"));
    let record = |chosen_c: f64, best_mean_c: f64| CRuleRecord {
        rule: CRule::OneSe,
        folds: 4,
        folds_used: 4,
        chosen_c,
        chosen_fold_losses: vec![Some(0.5); 4],
        chosen_fold_mean: Some(0.5),
        chosen_fold_se: Some(0.0125),
        best_mean_c,
        best_mean_weighting: ClassWeighting::None,
        best_fold_mean: Some(0.49),
        best_fold_se: None,
        fallback: false,
    };
    c.c_rule = vec![
        HeadCRule {
            head: "<cat>".into(),
            record: record(0.1, 1.0),
        },
        HeadCRule {
            head: "multiclass".into(),
            record: record(0.3, 0.3),
        },
    ];
    let html = render_html(&c);
    let s = section(&html, "c-rule");
    assert_eq!(s.matches("<tr").count(), 1 + 2);
    assert_eq!(s.matches("<tr class=\"key\">").count(), 1, "one head moved");
    assert!(s.contains("&lt;cat&gt;") && s.contains("1e-1") && s.contains("1e0"));
    assert!(s.contains("0.5000 ± 0.0125") && s.contains("0.4900 ± -"));
    assert!(s.contains("<code>one-se</code> over 4 validation folds"));
    assert!(s.contains("1 of 2 linear heads took a smaller C"));
}
