//! Report stage, an interval on every figure: from a `Comparison`'s
//! intervals (metrics stage, `metrics::intervals`), a compact table of each
//! approach's ECE, MCE, NLL and Brier with 95 % paired-bootstrap intervals,
//! every pair's differences on the same resamples, and a per-class table of
//! the key pair's F1 with intervals (specialists-calibrated,
//! multiclass-temperature and their difference).

use super::text::{fixed, signed, Esc};
use super::{class_name, KEY_APPROACH, KEY_BASELINE};
use crate::metrics::compare::Comparison;
use crate::metrics::intervals::FigureIntervals;
use crate::metrics::Interval;

/// `value [low, high]`, scaled; signed for differences.
fn cell(i: &Interval, scale: f64, d: usize, diff: bool) -> String {
    let f = |v: f64| {
        if diff {
            signed(v * scale, d)
        } else {
            fixed(v * scale, d)
        }
    };
    let excl = diff && (i.low > 0.0 || i.high < 0.0);
    format!(
        "<td class=\"num{}\">{} <span class=\"desc\">[{}, {}]</span></td>",
        if excl { " best" } else { "" },
        f(i.observed),
        f(i.low),
        f(i.high)
    )
}

fn figures_cells(o: &mut String, f: &FigureIntervals, diff: bool) {
    for (i, d) in [(&f.ece, 2), (&f.mce, 2), (&f.nll, 4), (&f.brier, 4)] {
        o.push_str(&cell(i, 1.0, d, diff));
    }
}

const HEAD: &str = "<th title=\"15 equal-width bins, percent\">ECE %</th>\
    <th title=\"largest bin gap, percent\">MCE %</th><th>NLL</th><th>Brier</th>";

/// `<section id="intervals">`.
pub fn section(o: &mut String, c: &Comparison) {
    let iv = &c.intervals;
    o.push_str("<section id=\"intervals\">\n<h2>Intervals on every figure</h2>\n");
    if iv.approaches.is_empty() {
        o.push_str("<p class=\"note missing\">No approach, no intervals.</p>\n</section>\n");
        return;
    }
    w!(
        o,
        "<table class=\"compact intervals\">\n<thead><tr><th class=\"l\">approach</th>{HEAD}</tr></thead>\n<tbody>\n"
    );
    for a in &iv.approaches {
        let key = a.name == KEY_APPROACH || a.name == KEY_BASELINE;
        w!(
            o,
            "<tr{}><td class=\"l\"><code>{}</code></td>",
            if key { " class=\"key\"" } else { "" },
            Esc(&a.name)
        );
        figures_cells(o, &a.figures, false);
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
    w!(
        o,
        "<table class=\"compact interval-pairs\">\n<thead><tr><th class=\"l\">a</th><th class=\"l\">b</th>{HEAD}\
         <th title=\"classes whose F1 difference interval lies above / below 0\">F1 classes a&gt;b / a&lt;b</th></tr></thead>\n<tbody>\n"
    );
    for p in &iv.pairs {
        let d = &p.difference;
        let above = d.f1.iter().filter(|i| i.low > 0.0).count();
        let below = d.f1.iter().filter(|i| i.high < 0.0).count();
        w!(
            o,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\"><code>{}</code></td>",
            Esc(&p.a),
            Esc(&p.b)
        );
        figures_cells(o, d, true);
        w!(o, "<td class=\"num\">{above} / {below}</td></tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
    per_class(o, c);
    w!(
        o,
        "<p class=\"note\">95% percentile intervals of a paired bootstrap: {} resamples of the {} rows, \
         seed {}, every approach scored on the same resampled rows, so a difference's interval is \
         paired. ECE / MCE in percent (differences in points), 15 equal-width bins; a class absent \
         from a resample scores F1 0 there. MCE (and, less, ECE) is biased upward under resampling: \
         a resample's sparse bins have larger gaps, so its percentile interval can lie above the \
         observed value; read it as the spread, not as a confidence set for the observed MCE. \
         Green: a difference whose interval excludes 0.</p>\n</section>\n",
        iv.resamples,
        c.n,
        iv.seed
    );
}

/// The key pair's per-class F1 with intervals, one row per class.
fn per_class(o: &mut String, c: &Comparison) {
    let iv = &c.intervals;
    let find = |n: &str| iv.approaches.iter().find(|a| a.name == n);
    let pair = iv.pairs.iter().find(|p| {
        (p.a == KEY_APPROACH && p.b == KEY_BASELINE) || (p.a == KEY_BASELINE && p.b == KEY_APPROACH)
    });
    let (Some(a), Some(b), Some(p)) = (find(KEY_APPROACH), find(KEY_BASELINE), pair) else {
        w!(
            o,
            "<p class=\"note missing\">No per-class F1 intervals: the comparison lacks {KEY_APPROACH} or {KEY_BASELINE}.</p>\n"
        );
        return;
    };
    // Oriented KEY_APPROACH − KEY_BASELINE.
    let key_first = p.a == KEY_APPROACH;
    let orient = |i: &Interval| if key_first { *i } else { i.negated() };
    w!(
        o,
        "<h3>Per-class F1 (%), {KEY_APPROACH} vs {KEY_BASELINE}</h3>\n\
         <table class=\"compact per-class-f1\">\n<thead><tr><th class=\"l\">class</th>\
         <th>{KEY_APPROACH}</th><th>{KEY_BASELINE}</th><th>difference</th></tr></thead>\n<tbody>\n"
    );
    let k = a
        .figures
        .f1
        .len()
        .min(b.figures.f1.len())
        .min(p.difference.f1.len());
    for i in 0..k {
        w!(o, "<tr><td class=\"l\">{}</td>", Esc(&class_name(c, i)));
        o.push_str(&cell(&a.figures.f1[i], 100.0, 1, false));
        o.push_str(&cell(&b.figures.f1[i], 100.0, 1, false));
        o.push_str(&cell(&orient(&p.difference.f1[i]), 100.0, 1, true));
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table>\n");
}
