//! Report stage, reliability diagrams written from a `Comparison`: the
//! per-bin table of each approach's `Calibration` (metrics stage) -> one
//! inline SVG per approach: accuracy bars per confidence bin, the gap to the
//! mean confidence shaded, the diagonal of perfect calibration, and a
//! histogram of the bin counts underneath. ECE / MCE in the title.

use super::text::{clamp, fixed, Esc, N};
use super::{approach, missing_note, KEY_APPROACH, KEY_BASELINE};
use crate::metrics::compare::Comparison;
use crate::metrics::reliability::Calibration;

const W: f64 = 380.0;
const LEFT: f64 = 48.0;
const TOP: f64 = 34.0;
const PW: f64 = 318.0;
const PH: f64 = 200.0;
const GAP: f64 = 16.0;
const HH: f64 = 40.0;
const H: f64 = TOP + PH + GAP + HH + 36.0;

/// `<section id="reliability">`: the two key approaches first (a note where
/// one is missing), then every other approach of the comparison.
pub fn section(o: &mut String, c: &Comparison) {
    o.push_str(
        "<section id=\"reliability\">\n<h2>Reliability diagrams</h2>\n<div class=\"figs\">\n",
    );
    let mut notes = String::new();
    for name in [KEY_BASELINE, KEY_APPROACH] {
        match approach(c, name) {
            Some(a) => figure(o, &a.name, &a.reliability, true),
            None => missing_note(&mut notes, name, "reliability diagram"),
        }
    }
    for a in &c.approaches {
        if a.name != KEY_BASELINE && a.name != KEY_APPROACH {
            figure(o, &a.name, &a.reliability, false);
        }
    }
    o.push_str("</div>\n");
    o.push_str(&notes);
    o.push_str(
        "<p class=\"note\">Bars: accuracy of the rows whose top probability falls in each of \
         15 equal-width bins; shaded: the gap to the bins' mean confidence; dashed: perfect \
         calibration. The histogram underneath counts the rows per bin (hover for numbers). \
         Empty bins are left out.</p>\n</section>\n",
    );
}

fn figure(o: &mut String, name: &str, cal: &Calibration, key: bool) {
    w!(o, "<figure{}>\n", if key { " class=\"key\"" } else { "" });
    svg(o, name, cal);
    w!(
        o,
        "<figcaption><code>{}</code>: ECE {} %, MCE {} %, {} non-empty bins</figcaption>\n</figure>\n",
        Esc(name),
        fixed(cal.ece, 2),
        fixed(cal.mce, 2),
        cal.bins.len()
    );
}

fn x(v: f64) -> f64 {
    LEFT + clamp(v, 0.0, 1.0) * PW
}

fn y(v: f64) -> f64 {
    TOP + PH * (1.0 - clamp(v, 0.0, 1.0))
}

/// One reliability diagram as `<svg class="plot" data-plot="reliability">`.
pub fn svg(o: &mut String, name: &str, cal: &Calibration) {
    w!(
        o,
        "<svg class=\"plot\" data-plot=\"reliability\" data-approach=\"{}\" \
         width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">\n<title>Reliability diagram of {}</title>\n",
        Esc(name),
        N(W),
        N(H),
        N(W),
        N(H),
        Esc(name)
    );
    w!(
        o,
        "<text x=\"{}\" y=\"20\" font-size=\"13\" font-weight=\"600\">{} — ECE {} %</text>\n",
        N(LEFT),
        Esc(name),
        fixed(cal.ece, 2)
    );
    grid(o);
    bars(o, cal);
    legend(o);
    histogram(o, cal);
    o.push_str("</svg>\n");
}

/// The plot's frame, grid lines and tick labels on both axes.
fn grid(o: &mut String) {
    // Frame, grid and y ticks.
    w!(
        o,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fafbfc\" stroke=\"#c8cdd3\"/>\n",
        N(LEFT),
        N(TOP),
        N(PW),
        N(PH)
    );
    for i in 0..=5 {
        let v = i as f64 / 5.0;
        w!(
            o,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e4e7eb\"/>\
             <line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e4e7eb\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\n",
            N(LEFT),
            N(y(v)),
            N(LEFT + PW),
            N(y(v)),
            N(x(v)),
            N(TOP),
            N(x(v)),
            N(TOP + PH),
            N(LEFT - 5.0),
            N(y(v) + 3.5),
            fixed(v, 1),
            N(x(v)),
            N(TOP + PH + GAP + HH + 13.0),
            fixed(v, 1)
        );
    }
}

/// Each bin's accuracy bar with the gap to its mean confidence shaded, and
/// the exact (Clopper–Pearson) 95 % interval of its accuracy.
fn bars(o: &mut String, cal: &Calibration) {
    // Bars (accuracy) and gap shading to the mean confidence.
    for b in &cal.bins {
        let (x0, x1) = (x(b.lower) + 0.75, x(b.upper) - 0.75);
        let bw = (x1 - x0).max(0.5);
        let (ya, yc) = (y(b.accuracy), y(b.confidence));
        w!(
            o,
            "<g><title>confidence {}–{}: {} rows, mean confidence {} %, accuracy {} %</title>\
             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#4e79a7\" fill-opacity=\"0.85\"/>\
             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#e15759\" fill-opacity=\"0.35\" \
             stroke=\"#e15759\" stroke-width=\"0.8\"/></g>\n",
            fixed(b.lower, 2),
            fixed(b.upper, 2),
            b.count,
            fixed(b.confidence * 100.0, 1),
            fixed(b.accuracy * 100.0, 1),
            N(x0),
            N(ya),
            N(bw),
            N(TOP + PH - ya),
            N(x0),
            N(ya.min(yc)),
            N(bw),
            N((ya - yc).abs()),
        );
    }
    // Exact (Clopper–Pearson) 95 % interval of each bin's accuracy.
    for b in &cal.bins {
        let xm = 0.5 * (x(b.lower) + x(b.upper));
        w!(
            o,
            "<line class=\"ci\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#1f2d3d\" stroke-width=\"1\"><title>accuracy 95% interval {}–{} %</title></line>\n",
            N(xm),
            N(y(b.accuracy_low)),
            N(xm),
            N(y(b.accuracy_high)),
            fixed(b.accuracy_low * 100.0, 1),
            fixed(b.accuracy_high * 100.0, 1)
        );
    }
    if cal.bins.is_empty() {
        w!(
            o,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\" fill=\"#8a939c\">no rows</text>\n",
            N(LEFT + PW / 2.0),
            N(TOP + PH / 2.0)
        );
    }
}

/// The diagonal, the legend and the axis titles.
fn legend(o: &mut String) {
    // Diagonal, legend, axis titles.
    w!(
        o,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555\" stroke-dasharray=\"5 4\"/>\n\
         <g font-size=\"10\"><rect x=\"{}\" y=\"{}\" width=\"74\" height=\"48\" fill=\"#fff\" fill-opacity=\"0.8\"/><rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"#4e79a7\"/>\
         <text x=\"{}\" y=\"{}\">accuracy</text>\
         <rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"#e15759\" fill-opacity=\"0.35\" stroke=\"#e15759\"/>\
         <text x=\"{}\" y=\"{}\">gap</text>\
         <line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{}\" y=\"{}\">perfect</text></g>\n",
        N(x(0.0)),
        N(y(0.0)),
        N(x(1.0)),
        N(y(1.0)),
        N(LEFT + 4.0),
        N(TOP + 4.0),
        N(LEFT + 8.0),
        N(TOP + 8.0),
        N(LEFT + 22.0),
        N(TOP + 17.0),
        N(LEFT + 8.0),
        N(TOP + 24.0),
        N(LEFT + 22.0),
        N(TOP + 33.0),
        N(LEFT + 8.0),
        N(TOP + 45.0),
        N(LEFT + 18.0),
        N(TOP + 45.0),
        N(LEFT + 22.0),
        N(TOP + 49.0),
    );
    w!(
        o,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 {} {})\">accuracy</text>\n\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">confidence (top probability)</text>\n",
        N(14.0),
        N(TOP + PH / 2.0),
        N(14.0),
        N(TOP + PH / 2.0),
        N(LEFT + PW / 2.0),
        N(H - 6.0)
    );
}

/// Row counts per bin under the diagram, with the count printed on each bar.
fn histogram(o: &mut String, cal: &Calibration) {
    let top = TOP + PH + GAP;
    let max = cal.bins.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    w!(
        o,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#c8cdd3\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"end\" fill=\"#5f6b77\">rows</text>\n",
        N(LEFT),
        N(top + HH),
        N(LEFT + PW),
        N(top + HH),
        N(LEFT - 5.0),
        N(top + HH / 2.0 + 3.0)
    );
    for b in &cal.bins {
        let (x0, x1) = (x(b.lower) + 0.75, x(b.upper) - 0.75);
        let h = (b.count as f64 / max * (HH - 10.0)).max(1.0);
        w!(
            o,
            "<g><title>{} rows with confidence {}–{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" \
             height=\"{}\" fill=\"#9aa6b2\"/><text x=\"{}\" y=\"{}\" font-size=\"8\" \
             text-anchor=\"middle\" fill=\"#3b444d\">{}</text></g>\n",
            b.count,
            fixed(b.lower, 2),
            fixed(b.upper, 2),
            N(x0),
            N(top + HH - h),
            N((x1 - x0).max(0.5)),
            N(h),
            N((x0 + x1) / 2.0),
            N(top + HH - h - 2.0),
            b.count
        );
    }
}
