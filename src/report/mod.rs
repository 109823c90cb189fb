//! Report stage, the last step of the data flow: a metrics-stage
//! [`Comparison`] -> one self-contained HTML5 file for people.
//!
//! `assets -> images -> features -> heads -> calibration -> ensemble ->
//! metrics -> `**`report`**. The page has inline CSS and inline SVG only: no
//! JavaScript, no fonts, no external URL of any kind, so it can be mailed or
//! archived as one file. Sections (each with an `id`): header + headline
//! verdict, then [`SECTION_IDS`] in order (`summary`, `pairs`,
//! `intervals`, `equivalence`, `calibration`, `reliability`, `confusion`,
//! `f1-diff`, `specialists`, `c-rule`, `open-set`, `shift`, `deduplicated`,
//! `timeline`). Every plot is an `<svg class="plot"
//! data-plot="...">` (`reliability`, `confusion`, `f1-diff`, `timeline`).
//!
//! * [`tables`]: summary, pairwise and per-specialist tables.
//! * [`intervals`]: intervals on every figure, per approach, per pair and
//!   per class (key pair).
//! * [`audit`]: the TOST / flip table and the figures without leaked rows.
//! * [`c_rule`]: each linear head's C and its spread over validation folds.
//! * [`reliability`]: reliability diagrams with a bin-count histogram.
//! * [`confusion`]: row-normalized confusion heatmaps.
//! * [`bars`]: per-class F1 difference bars and the scheduler timeline.
//! * [`text`]: HTML/XML escaping, NaN-safe number formatting, axis ticks.
//!
//! Everything is written by hand with `std::fmt::Write`. Every user string
//! (class, approach, job and dataset names, verdicts) goes through
//! [`text::Esc`]; every SVG coordinate through [`text::N`], which prints 0 for
//! a non-finite value, and every displayed metric through helpers that print
//! `—` for one, so the output never contains `NaN` or `inf`. A missing
//! approach, an empty timeline or a class without rows leaves a note in its
//! section instead of a broken plot.

/// `write!` into a `String`, which cannot fail.
macro_rules! w {
    ($o:expr, $($t:tt)*) => {{
        let _ = ::std::fmt::Write::write_fmt($o, format_args!($($t)*));
    }};
}

pub mod audit;
pub mod bars;
pub mod c_rule;
pub mod calibration;
pub mod confusion;
pub mod curves;
pub mod intervals;
pub mod open_set;
pub mod reliability;
pub mod shift;
pub mod study;
pub mod tables;
pub mod text;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sections;

use crate::metrics::compare::{ApproachResult, Comparison};
use text::Esc;

/// The approach the report is about: calibrated one-vs-rest specialists.
/// (Spelled here because table lookups are not `const`; a test checks it.)
pub const KEY_APPROACH: &str = "specialists-calibrated";
/// The baseline it is compared with first: the temperature-scaled multiclass head.
pub const KEY_BASELINE: &str = "multiclass-temperature";

/// Section ids, in page order.
pub const SECTION_IDS: [&str; 14] = [
    "summary",
    "pairs",
    "intervals",
    "equivalence",
    "calibration",
    "reliability",
    "confusion",
    "f1-diff",
    "specialists",
    "c-rule",
    "open-set",
    "shift",
    "deduplicated",
    "timeline",
];

/// The whole report page for one comparison.
pub fn render_html(c: &Comparison) -> String {
    let mut o = String::with_capacity(64 * 1024 + 300 * c.classes.len() * c.classes.len());
    let title = format!("ovr report: {} on {} ({})", c.ensemble, c.dataset, c.split);
    w!(
        &mut o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        Esc(&title)
    );
    header(&mut o, c);
    tables::summary_section(&mut o, c);
    tables::pairs_section(&mut o, c);
    intervals::section(&mut o, c);
    audit::equivalence_section(&mut o, c);
    calibration::section(&mut o, c);
    reliability::section(&mut o, c);
    confusion::section(&mut o, c);
    bars::f1_diff_section(&mut o, c);
    tables::specialists_section(&mut o, c);
    c_rule::section(&mut o, c);
    open_set::section(&mut o, c);
    shift::section(&mut o, c);
    audit::deduplicated_section(&mut o, c);
    bars::timeline_section(&mut o, c);
    w!(
        &mut o,
        "<footer>Written by <code>ovr</code>. Bootstrap: {} resamples, seed {}. \
         Self-contained: no scripts, no external resources.</footer>\n</main>\n</body>\n</html>\n",
        c.bootstrap_resamples,
        c.seed
    );
    o
}

/// The key verdict ([`KEY_APPROACH`] vs [`KEY_BASELINE`]) as one sentence, if
/// the comparison holds that pair.
pub fn headline(c: &Comparison) -> Option<String> {
    tables::ordered_pairs(c)
        .into_iter()
        .find(|p| p.key)
        .map(|p| p.verdict)
}

/// The approach named `name`, if the comparison has it.
pub fn approach<'a>(c: &'a Comparison, name: &str) -> Option<&'a ApproachResult> {
    c.approaches.iter().find(|a| a.name == name)
}

/// Class `i`'s name, or `#i` where the list is short.
pub(crate) fn class_name(c: &Comparison, i: usize) -> String {
    c.classes.get(i).cloned().unwrap_or_else(|| format!("#{i}"))
}

/// `<p class="note">` saying that approach `name` is missing.
pub(crate) fn missing_note(o: &mut String, name: &str, what: &str) {
    w!(
        o,
        "<p class=\"note missing\">Approach <code>{}</code> is not in this comparison: no {}.</p>\n",
        Esc(name),
        Esc(what)
    );
}

fn header(o: &mut String, c: &Comparison) {
    w!(
        o,
        "<header>\n<h1>One-vs-rest specialists vs multiclass: <span class=\"name\">{}</span></h1>\n\
         <dl class=\"facts\">\
         <div><dt>dataset</dt><dd>{}</dd></div>\
         <div><dt>backbone</dt><dd>{}</dd></div>\
         <div><dt>split</dt><dd>{}</dd></div>\
         <div><dt>rows (n)</dt><dd>{}</dd></div>\
         <div><dt>classes</dt><dd>{}</dd></div>\
         <div><dt>approaches</dt><dd>{}</dd></div>\
         </dl>\n",
        Esc(&c.ensemble),
        Esc(&c.dataset),
        Esc(&c.backbone),
        Esc(&c.split),
        c.n,
        c.classes.len(),
        c.approaches.len()
    );
    o.push_str("<p class=\"classes\"><span class=\"label\">Classes:</span> ");
    for (i, name) in c.classes.iter().enumerate() {
        if i > 0 {
            o.push_str(", ");
        }
        w!(o, "<span class=\"cls\">{}</span>", Esc(name));
    }
    o.push_str("</p>\n");
    match headline(c) {
        Some(v) => w!(
            o,
            "<p class=\"headline\"><span class=\"label\">Key result ({} vs {}):</span> {}</p>\n",
            KEY_APPROACH,
            KEY_BASELINE,
            Esc(&v)
        ),
        None => w!(
            o,
            "<p class=\"headline missing\">Key result unavailable: the comparison has no \
             {KEY_APPROACH} vs {KEY_BASELINE} pair.</p>\n"
        ),
    }
    o.push_str("<nav>");
    let labels = [
        "Summary",
        "Pairwise tests",
        "Intervals",
        "Equivalence",
        "Calibration",
        "Reliability",
        "Confusion",
        "Per-class F1",
        "Specialists",
        "C rule",
        "Open set",
        "Shift",
        "Without duplicates",
        "Timeline",
    ];
    for (id, label) in SECTION_IDS.iter().zip(labels) {
        w!(o, "<a href=\"#{id}\">{label}</a>");
    }
    o.push_str("</nav>\n</header>\n");
}

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1d2329;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1340px; margin: 0 auto; padding: 18px 22px 30px; }
header, section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px;
  padding: 14px 18px; margin-bottom: 16px; }
h1 { font-size: 21px; margin: 0 0 8px; }
h1 .name { color: #2a5d9f; }
h2 { font-size: 17px; margin: 0 0 8px; }
h3 { font-size: 14.5px; margin: 12px 0 6px; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
dl.facts { display: flex; flex-wrap: wrap; gap: 6px 26px; margin: 0 0 8px; }
dl.facts div { display: flex; gap: 6px; }
dt { color: #5f6b77; } dt::after { content: ":"; }
dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
p.classes { font-size: 12px; color: #444; margin: 4px 0 10px; }
.label { color: #5f6b77; font-weight: 600; }
p.headline { font-size: 16px; background: #eef4fb; border-left: 4px solid #2a5d9f;
  padding: 8px 12px; margin: 8px 0; }
p.headline.missing, p.note.missing { background: #fdf3e7; border-left: 4px solid #d9822b; }
p.note { color: #4d5660; font-size: 12.5px; margin: 6px 0; padding: 4px 8px; }
nav { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 13px; margin-top: 6px; }
nav a { color: #2a5d9f; text-decoration: none; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
th, td { padding: 4px 9px; border-bottom: 1px solid #e5e8ec; text-align: right;
  vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; white-space: nowrap; }
th.l, td.l { text-align: left; }
td code { white-space: nowrap; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { background: #e3f4e1; font-weight: 700; color: #1b5e20; }
td .desc { display: block; color: #66707a; font-size: 11.5px; font-weight: normal; }
tr.key td { background: #eef4fb; }
tr.key td.best { background: #e3f4e1; }
td.verdict { text-align: left; min-width: 340px; font-size: 12.5px; }
td.none { color: #9aa3ad; }
table.compact { font-size: 12px; }
table.compact td, table.compact th { padding: 2px 8px; }
.tables { display: flex; flex-wrap: wrap; gap: 0 28px; align-items: flex-start; }
.figs { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
figure { margin: 0; border: 1px solid #eceef1; border-radius: 4px; padding: 6px; background: #fff;
  display: table; }
figure.key { border-color: #9bbbe0; }
figcaption { display: table-caption; caption-side: bottom; font-size: 12.5px; color: #3b444d;
  padding: 2px 10px 6px; }
svg.plot { display: block; max-width: 100%; height: auto; }
svg.plot text { font-family: system-ui, "DejaVu Sans", Arial, sans-serif; }
footer { color: #7a838c; font-size: 12px; text-align: center; margin-top: 8px; }
"#;
