//! Tests of the report stage: synthetic `Comparison`s built with the metrics
//! stage's own `compare` (K = 6 classes, N = 120 rows, seeded, one class
//! without support, a class named `<b>&"x"`) -> the HTML page, checked for
//! its sections, plots, escaping, NaN-free numbers, no external URL and
//! well-formed SVG.

use super::text::escape;
use super::*;
use crate::metrics::compare::{compare, ApproachInput, CompareContext, TimelineEntry};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const NAMES: [&str; 5] = [
    "multiclass-raw",
    "multiclass-temperature",
    "specialists-raw-argmax",
    "specialists-softmax",
    "specialists-calibrated",
];
const NASTY: &str = r#"<b>&"x""#;

fn softmax(row: &[f32]) -> Vec<f32> {
    let m = row.iter().copied().fold(f32::MIN, f32::max);
    let e: Vec<f32> = row.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// K = 6, N = 120; class 5 ("empty") never occurs as a label.
pub(crate) fn synthetic(timeline: Vec<TimelineEntry>) -> Comparison {
    let (k, n) = (6usize, 120usize);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..k as u32 - 1)).collect();
    let mut approaches = Vec::new();
    for (a, name) in NAMES.iter().enumerate() {
        let (signal, temp) = (1.0 + 0.4 * a as f32, if a % 2 == 0 { 0.5 } else { 1.0 });
        let mut probs = Vec::with_capacity(n * k);
        let mut preds = Vec::with_capacity(n);
        for &y in &labels {
            let logits: Vec<f32> = (0..k)
                .map(|j| {
                    (rng.random::<f32>() * 2.0 + if j as u32 == y { signal } else { 0.0 }) / temp
                })
                .collect();
            let p = softmax(&logits);
            preds.push(argmax(&p));
            probs.extend(p);
        }
        approaches.push(ApproachInput {
            name: name.to_string(),
            description: format!("synthetic approach {a} <i>"),
            probs,
            preds,
        });
    }
    let scores: Vec<f32> = labels
        .iter()
        .flat_map(|&y| (0..k as u32).map(move |j| if j == y { 1.5 } else { -1.0 }))
        .map(|s: f32| s + rng.random::<f32>() * 3.0 - 1.5)
        .collect();
    let probs: Vec<f32> = scores.iter().map(|s| 1.0 / (1.0 + (-s).exp())).collect();
    let ctx = CompareContext {
        ensemble: "demo & co".into(),
        dataset: "synthetic".into(),
        backbone: "efficientnet-lite0".into(),
        split: "test".into(),
        classes: vec![
            "cat".into(),
            "dog".into(),
            NASTY.into(),
            "fish".into(),
            "bird".into(),
            "empty".into(),
        ],
        timeline,
        resamples: 200,
        seed: 3,
    };
    let mut c = compare(ctx, &labels, &approaches, &scores, &probs).expect("synthetic comparison");
    // As `ovr compare` fills it: the TOST and flips of every pair.
    let named: Vec<(&str, &[u32])> = approaches
        .iter()
        .map(|a| (a.name.as_str(), a.preds.as_slice()))
        .collect();
    c.equivalence = crate::metrics::equivalence::pairs(&labels, &named, 0.01).expect("TOST");
    c
}

fn timeline() -> Vec<TimelineEntry> {
    let bar = |job: &str, lane, start_s, end_s| TimelineEntry {
        job: job.into(),
        lane,
        start_s,
        end_s,
        heads: 1,
    };
    vec![
        bar("multiclass grid", 0, 0.0, 2.5),
        bar(&format!("specialists {NASTY}"), 1, 0.0, 1.25),
        bar("specialists 3-5", 1, 1.25, 3.0),
        bar("calibration", 0, 2.5, 3.1),
    ]
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// `NaN`, or `inf` standing alone (as Rust prints an infinite float).
fn has_non_finite(html: &str) -> bool {
    html.contains("NaN")
        || html.match_indices("inf").any(|(i, _)| {
            let before = html[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphabetic());
            let after = html[i + 3..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic());
            !before && !after
        })
}

/// Every `<svg>...</svg>` of the page is well-formed XML: balanced tags,
/// quoted attributes, no raw `<` or stray `&` in text or values.
fn check_svg_xml(html: &str) {
    let mut rest = html;
    let mut seen = 0;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("closed svg") + start + 6;
        check_xml(&rest[start..end]);
        rest = &rest[end..];
        seen += 1;
    }
    assert!(seen > 0);
}

fn check_entities(s: &str) {
    for (i, _) in s.match_indices('&') {
        let tail = &s[i + 1..];
        let ok = ["amp;", "lt;", "gt;", "quot;", "#39;", "apos;"]
            .iter()
            .any(|e| tail.starts_with(e));
        assert!(ok, "stray & in {:?}", &s[i..(i + 20).min(s.len())]);
    }
}

fn check_xml(svg: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = svg;
    while let Some(lt) = rest.find('<') {
        check_entities(&rest[..lt]);
        assert!(!rest[..lt].contains('>'), "raw > in text");
        let gt = rest[lt..].find('>').expect("tag end") + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
        let (name, mut attrs) = (&body[..name_end], body[name_end..].trim());
        assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        while !attrs.is_empty() {
            let eq = attrs
                .find("=\"")
                .unwrap_or_else(|| panic!("unquoted attribute in <{tag}>"));
            let close = attrs[eq + 2..].find('"').expect("closing quote") + eq + 2;
            check_entities(&attrs[eq + 2..close]);
            assert!(!attrs[eq + 2..close].contains('<'));
            attrs = attrs[close + 1..].trim_start();
        }
        if !self_closing {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
}

#[test]
fn every_section_and_plot_is_there() {
    let c = synthetic(timeline());
    assert_eq!(c.classes.len(), 6);
    assert_eq!(
        c.approaches[0].per_class.support[5], 0,
        "class 5 has no rows"
    );
    let html = render_html(&c);
    assert!(html.starts_with("<!DOCTYPE html>"));
    for id in SECTION_IDS {
        assert_eq!(count(&html, &format!("<section id=\"{id}\">")), 1, "{id}");
    }
    let plots = count(&html, "<svg class=\"plot\"");
    assert_eq!(
        plots,
        5 + 2 + 1 + 1,
        "5 reliability, 2 confusion, f1-diff, timeline"
    );
    assert_eq!(count(&html, "data-plot=\"reliability\""), 5);
    assert_eq!(count(&html, "data-plot=\"confusion\""), 2);
    assert_eq!(count(&html, "data-plot=\"f1-diff\""), 1);
    assert_eq!(count(&html, "data-plot=\"timeline\""), 1);
    assert!(
        !html.contains("class=\"note missing\""),
        "nothing is missing"
    );
    // 8 summary columns, each with at least one highlighted best value.
    assert!(count(&html, "num best") >= 8);
    // Every cell of both confusion matrices has a tooltip, the empty row one.
    assert_eq!(count(&html, "no rows in this split"), 2);
    assert!(html.contains("<title>true cat → predicted dog: "));
}

#[test]
fn user_strings_are_escaped() {
    let html = render_html(&synthetic(timeline()));
    assert!(!html.contains(NASTY));
    assert!(!html.contains("<i>"));
    assert!(!html.contains("demo & co"));
    let escaped = "&lt;b&gt;&amp;&quot;x&quot;";
    // Header, axes and tooltips of both heatmaps, f1 bars, specialists, timeline.
    assert!(count(&html, escaped) >= 10, "{}", count(&html, escaped));
    assert!(html.contains("specialists &lt;b&gt;&amp;&quot;x&quot;"));
}

#[test]
fn output_is_finite_and_self_contained() {
    let html = render_html(&synthetic(timeline()));
    assert!(!has_non_finite(&html));
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("<script") && !html.contains("url("));
    assert!(!html.contains("<img") && !html.contains("<link"));
    check_svg_xml(&html);
    assert!(has_non_finite("x=\"inf\"") && has_non_finite("-inf") && !has_non_finite("info"));
}

#[test]
fn key_pair_comes_first_oriented_and_as_headline() {
    let c = synthetic(timeline());
    let pairs = tables::ordered_pairs(&c);
    assert_eq!(pairs.len(), 10);
    let key = &pairs[0];
    assert!(key.key && key.a == KEY_APPROACH && key.b == KEY_BASELINE);
    // compare() stores (multiclass-temperature, specialists-calibrated): flipped here.
    let stored = c
        .pairs
        .iter()
        .find(|p| p.a == KEY_BASELINE && p.b == KEY_APPROACH)
        .unwrap();
    assert_eq!(key.accuracy.observed, -stored.bootstrap.accuracy.observed);
    assert_eq!(key.accuracy.low, -stored.bootstrap.accuracy.high);
    assert_eq!(key.macro_f1.high, -stored.bootstrap.macro_f1.low);
    assert_eq!(
        (key.mcnemar.b, key.mcnemar.c),
        (stored.mcnemar.c, stored.mcnemar.b)
    );
    let h = headline(&c).unwrap();
    assert!(h.contains(KEY_APPROACH) && h.contains(KEY_BASELINE), "{h}");
    let html = render_html(&c);
    assert!(html.contains(&escape(&h)));
    // The calibration note is oriented the same way (specialists minus multiclass).
    let d = &stored.calibration.ece;
    let note = format!(
        "ECE {} <span class=\"desc\">[{}, {}]</span> points",
        text::signed(-d.observed, 2),
        text::signed(-d.high, 2),
        text::signed(-d.low, 2)
    );
    assert!(html.contains(&note), "{note}");
    let first_row = html.find("<tr class=\"key\"><td class=\"l\"><code>specialists-calibrated");
    let other_row = html.find("<td class=\"l\"><code>multiclass-raw</code></td>");
    assert!(first_row.is_some() && first_row < other_row);
}

#[test]
fn degenerate_input_leaves_notes_not_broken_plots() {
    let mut c = synthetic(Vec::new());
    c.approaches.retain(|a| a.name == "multiclass-raw");
    c.pairs.clear();
    c.approaches[0].summary.nll = f64::NAN;
    c.approaches[0].summary.brier = f64::INFINITY;
    c.approaches[0].reliability.bins[0].accuracy = f64::NAN;
    c.approaches[0].reliability.ece = f64::NEG_INFINITY;
    c.specialists[0].brier = f64::NAN;
    let html = render_html(&c);
    for id in SECTION_IDS {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    assert!(!has_non_finite(&html));
    check_svg_xml(&html);
    assert!(html.contains("Key result unavailable"));
    assert!(html.contains("No scheduler timeline"));
    assert!(html.contains("<code>specialists-calibrated</code> is not in this comparison"));
    assert_eq!(
        count(&html, "<svg class=\"plot\""),
        1,
        "only raw's reliability diagram"
    );
    assert!(html.contains("No pairs"));

    c.approaches.clear();
    c.specialists.clear();
    c.classes.clear();
    let html = render_html(&c);
    assert!(!has_non_finite(&html));
    assert_eq!(count(&html, "<svg class=\"plot\""), 0);
}

#[test]
fn zero_length_and_odd_timelines_stay_finite() {
    let bar = |lane, start_s, end_s| TimelineEntry {
        job: "j".into(),
        lane,
        start_s,
        end_s,
        heads: 1,
    };
    for t in [
        vec![bar(0, 0.0, 0.0), bar(3, 0.0, 0.0)],
        vec![bar(0, f64::NAN, f64::INFINITY), bar(1, 2.0, 1.0)],
        vec![bar(0, -1.0, 5.0)],
    ] {
        let html = render_html(&synthetic(t));
        assert_eq!(count(&html, "data-plot=\"timeline\""), 1);
        assert!(!has_non_finite(&html));
        check_svg_xml(&html);
    }
    let html = render_html(&synthetic(vec![bar(0, 0.0, 0.0)]));
    assert!(html.contains("zero-length timeline"));
}

#[test]
fn key_approach_names_match_the_approach_table() {
    use crate::ensemble::predict::Approach;
    use crate::util::choice::Choice;
    assert_eq!(KEY_APPROACH, Approach::SpecialistsCalibrated.name());
    assert_eq!(KEY_BASELINE, Approach::MulticlassTemperature.name());
}
