//! Report stage, bar plots written from a `Comparison`: the per-class F1
//! difference (specialists-calibrated minus multiclass-temperature, sorted,
//! two colours) and the scheduler timeline (one row per lane, one bar per
//! job from its start to its end, time axis in seconds).

use super::text::{fixed, signed, text_width, ticks, truncate, Esc, N, PALETTE};
use super::{approach, class_name, missing_note, KEY_APPROACH, KEY_BASELINE};
use crate::metrics::compare::{ApproachResult, Comparison, TimelineEntry};

const POSITIVE: &str = "#2f6db5";
const NEGATIVE: &str = "#e0702b";

/// `<section id="f1-diff">`: per-class F1 of the key approach minus the baseline's.
pub fn f1_diff_section(o: &mut String, c: &Comparison) {
    o.push_str("<section id=\"f1-diff\">\n<h2>Per-class F1: specialists-calibrated − multiclass-temperature</h2>\n");
    let (Some(a), Some(b)) = (approach(c, KEY_APPROACH), approach(c, KEY_BASELINE)) else {
        for name in [KEY_APPROACH, KEY_BASELINE] {
            if approach(c, name).is_none() {
                missing_note(o, name, "per-class F1 difference");
            }
        }
        o.push_str("</section>\n");
        return;
    };
    let k = a.per_class.f1.len().min(b.per_class.f1.len());
    if k == 0 {
        o.push_str("<p class=\"note missing\">No per-class scores.</p>\n</section>\n");
        return;
    }
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let mut rows: Vec<(usize, f64)> = (0..k)
        .map(|i| (i, finite(a.per_class.f1[i]) - finite(b.per_class.f1[i])))
        .collect();
    rows.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    let support = |i: usize| a.per_class.support.get(i).copied().unwrap_or(0);
    let labels: Vec<String> = rows
        .iter()
        .map(|&(i, _)| {
            let name = truncate(&class_name(c, i), 28);
            if support(i) == 0 {
                format!("{name} (no rows)")
            } else {
                name
            }
        })
        .collect();

    diff_svg(o, c, (a, b), &rows, &labels);
    o.push_str(
        "<p class=\"note\">Classes sorted from the largest gain of the specialists to the largest \
         loss. A class with no row in the split has F1 0 for both.</p>\n</section>\n",
    );
}

/// The F1-difference plot: legend and ticks at the top, one bar per class
/// (`rows`: (class, difference), sorted; `labels` in that order).
fn diff_svg(
    o: &mut String,
    c: &Comparison,
    (a, b): (&ApproachResult, &ApproachResult),
    rows: &[(usize, f64)],
    labels: &[String],
) {
    let k = rows.len();
    let (font, rh) = (10.0, if k > 30 { 14.0 } else { 16.0 });
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1);
    let lw = text_width(longest, font) + 12.0;
    let width = 900.0f64.max(lw + 500.0);
    let (top, pad) = (44.0, 40.0);
    let (x0, x1) = (lw + pad, width - pad);
    // Axis from the most negative to the most positive difference (0 included).
    let lo = rows.iter().map(|r| r.1).fold(0.0, f64::min);
    let hi = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    let (lo, hi) = if hi - lo < 0.01 {
        (lo - 0.005, hi + 0.005)
    } else {
        (lo, hi)
    };
    let scale = (x1 - x0) / (hi - lo);
    let zero = x0 - lo * scale;
    let height = top + rh * k as f64 + 26.0;
    w!(
        o,
        "<svg class=\"plot\" data-plot=\"f1-diff\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">\n\
         <title>Per-class F1 difference</title>\n",
        N(width),
        N(height),
        N(width),
        N(height)
    );
    // Legend and axis ticks (percentage points) at the top.
    let second = x0 + 40.0 + text_width(KEY_APPROACH.len() + 7, 11.0);
    w!(
        o,
        "<g font-size=\"11\"><rect x=\"{}\" y=\"6\" width=\"11\" height=\"11\" fill=\"{POSITIVE}\"/>\
         <text x=\"{}\" y=\"16\">{KEY_APPROACH} better</text>\
         <rect x=\"{}\" y=\"6\" width=\"11\" height=\"11\" fill=\"{NEGATIVE}\"/>\
         <text x=\"{}\" y=\"16\">{KEY_BASELINE} better</text></g>\n",
        N(x0),
        N(x0 + 15.0),
        N(second),
        N(second + 15.0),
    );
    let (tv, dec) = ticks(lo * 100.0, hi * 100.0, 8);
    for t in tv {
        let xx = zero + t / 100.0 * scale;
        w!(
            o,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#eceef1\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\" fill=\"#5f6b77\">{}</text>\n",
            N(xx),
            N(top - 4.0),
            N(xx),
            N(top + rh * k as f64),
            N(xx),
            N(top - 8.0),
            signed(t, dec)
        );
    }
    let axis = DiffAxis {
        lw,
        rh,
        font,
        top,
        zero,
        scale,
    };
    diff_rows(o, c, (a, b), rows, labels, &axis);
    w!(
        o,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">F1 difference (percentage points)</text>\n</svg>\n",
        N(zero),
        N(top - 4.0),
        N(zero),
        N(top + rh * k as f64),
        N((x0 + x1) / 2.0),
        N(height - 6.0)
    );
}

/// Where the F1-difference bars go: label width, row height, font, top, the
/// x of a zero difference and pixels per unit of difference.
#[derive(Clone, Copy)]
struct DiffAxis {
    lw: f64,
    rh: f64,
    font: f64,
    top: f64,
    zero: f64,
    scale: f64,
}

/// One labelled bar per class, with the difference printed at its end.
fn diff_rows(
    o: &mut String,
    c: &Comparison,
    (a, b): (&ApproachResult, &ApproachResult),
    rows: &[(usize, f64)],
    labels: &[String],
    g: &DiffAxis,
) {
    let support = |i: usize| a.per_class.support.get(i).copied().unwrap_or(0);
    let DiffAxis {
        lw,
        rh,
        font,
        top,
        zero,
        scale,
    } = *g;
    for (row, (&(i, d), label)) in rows.iter().zip(labels).enumerate() {
        let yy = top + row as f64 * rh;
        let end = zero + d * scale;
        let (bx, bw) = (end.min(zero), (end - zero).abs());
        let (fill, anchor, tx) = if d >= 0.0 {
            (POSITIVE, "start", end + 3.0)
        } else {
            (NEGATIVE, "end", end - 3.0)
        };
        let grey = if support(i) == 0 {
            " fill=\"#8a939c\" font-style=\"italic\""
        } else {
            ""
        };
        w!(
            o,
            "<g><title>{}: F1 {} % ({KEY_APPROACH}) vs {} % ({KEY_BASELINE}), {} points, support {}</title>\
             <text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"end\"{grey}>{}</text>\
             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"{anchor}\" fill=\"#3b444d\">{}</text></g>\n",
            Esc(&class_name(c, i)),
            fixed(a.per_class.f1[i] * 100.0, 1),
            fixed(b.per_class.f1[i] * 100.0, 1),
            signed(d * 100.0, 1),
            support(i),
            N(lw),
            N(yy + rh / 2.0 + 3.5),
            N(font),
            Esc(label),
            N(bx),
            N(yy + 2.0),
            N(bw.max(0.5)),
            N(rh - 4.0),
            N(tx),
            N(yy + rh / 2.0 + 3.0),
            signed(d * 100.0, 1)
        );
    }
}

/// `<section id="timeline">`: the training jobs on the scheduler's lanes.
pub fn timeline_section(o: &mut String, c: &Comparison) {
    o.push_str("<section id=\"timeline\">\n<h2>Scheduler timeline</h2>\n");
    if c.timeline.is_empty() {
        o.push_str("<p class=\"note missing\">No scheduler timeline was recorded for this ensemble.</p>\n</section>\n");
        return;
    }
    timeline_svg(o, &c.timeline);
    let mut lanes: Vec<usize> = c.timeline.iter().map(|b| b.lane).collect();
    lanes.sort_unstable();
    lanes.dedup();
    let (lo, hi) = span(&c.timeline);
    let busy: f64 = c.timeline.iter().map(dur).sum();
    let wall = hi - lo;
    w!(
        o,
        "<p class=\"note\">{} jobs on {} lanes; wall time {} s, busy {} s",
        c.timeline.len(),
        lanes.len(),
        fixed(wall, 2),
        fixed(busy, 2)
    );
    if wall > 0.0 {
        w!(
            o,
            " ({} % lane utilization)",
            fixed(busy / (wall * lanes.len() as f64) * 100.0, 0)
        );
    } else {
        o.push_str(" (zero-length timeline: every job took 0 s)");
    }
    o.push_str(". Hover a bar for its job.</p>\n</section>\n");
}

fn dur(b: &TimelineEntry) -> f64 {
    let d = b.end_s - b.start_s;
    if d.is_finite() {
        d.max(0.0)
    } else {
        0.0
    }
}

/// (earliest start or 0, latest end), finite values only.
fn span(bars: &[TimelineEntry]) -> (f64, f64) {
    let lo = bars
        .iter()
        .map(|b| b.start_s)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::min);
    let hi = bars
        .iter()
        .flat_map(|b| [b.start_s, b.end_s])
        .filter(|v| v.is_finite())
        .fold(lo, f64::max);
    (lo, hi)
}

/// One bar per job as `<svg class="plot" data-plot="timeline">`.
pub fn timeline_svg(o: &mut String, bars: &[TimelineEntry]) {
    let mut lanes: Vec<usize> = bars.iter().map(|b| b.lane).collect();
    lanes.sort_unstable();
    lanes.dedup();
    let (lo, hi) = span(bars);
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
    let (width, left, right, top, rh) = (1200.0, 70.0, 24.0, 14.0, 28.0);
    let pw = width - left - right;
    let x = |t: f64| left + (if t.is_finite() { t } else { lo } - lo) / (hi - lo) * pw;
    let height = top + rh * lanes.len() as f64 + 40.0;
    w!(
        o,
        "<svg class=\"plot\" data-plot=\"timeline\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">\n\
         <title>Scheduler timeline</title>\n",
        N(width),
        N(height),
        N(width),
        N(height)
    );
    let bottom = top + rh * lanes.len() as f64;
    let (tv, dec) = ticks(lo, hi, 10);
    for t in tv {
        w!(
            o,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#eceef1\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#5f6b77\">{}</text>\n",
            N(x(t)),
            N(top),
            N(x(t)),
            N(bottom + 4.0),
            N(x(t)),
            N(bottom + 16.0),
            fixed(t, dec)
        );
    }
    for (r, lane) in lanes.iter().enumerate() {
        let yy = top + r as f64 * rh;
        w!(
            o,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">lane {}</text>\n",
            N(left),
            N(yy),
            N(pw),
            N(rh),
            if r % 2 == 0 { "#f7f8fa" } else { "#ffffff" },
            N(left - 8.0),
            N(yy + rh / 2.0 + 4.0),
            lane
        );
    }
    for (j, b) in bars.iter().enumerate() {
        let r = lanes.iter().position(|&l| l == b.lane).unwrap_or(0);
        let yy = top + r as f64 * rh + 3.0;
        let x0 = x(b.start_s);
        let bw = (x(b.start_s + dur(b)) - x0).max(1.0);
        let color = PALETTE[j % PALETTE.len()];
        w!(
            o,
            "<g><title>{}: lane {}, {} s → {} s ({} s)</title>\
             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{color}\" stroke=\"#ffffff\" stroke-width=\"0.75\"/>",
            Esc(&b.job),
            b.lane,
            fixed(b.start_s, 2),
            fixed(b.end_s, 2),
            fixed(dur(b), 2),
            N(x0),
            N(yy),
            N(bw),
            N(rh - 6.0)
        );
        // The name inside the bar where it fits (whole or shortened).
        let fit = ((bw - 6.0) / text_width(1, 10.0)).floor();
        if fit >= 4.0 {
            let label = truncate(&b.job, fit as usize);
            w!(
                o,
                "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#ffffff\">{}</text>",
                N(x0 + 3.0),
                N(yy + (rh - 6.0) / 2.0 + 3.5),
                Esc(&label)
            );
        }
        o.push_str("</g>\n");
    }
    w!(
        o,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#8a939c\"/>\n\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">time since the start (s)</text>\n</svg>\n",
        N(left),
        N(bottom),
        N(left + pw),
        N(bottom),
        N(left + pw / 2.0),
        N(height - 6.0)
    );
}
