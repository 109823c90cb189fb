//! Report stage, the cost of a style shift: from a `Comparison`'s shift
//! part (`compare --against`), every approach in domain and shifted with its
//! losses and intervals, and the key approaches' reliability diagrams under
//! shift. Without a second dataset the section says how to get one.

use super::text::{fixed, pct, signed, Esc};
use super::{reliability, KEY_APPROACH, KEY_BASELINE};
use crate::metrics::compare::Comparison;
use crate::metrics::Interval;

fn cell(i: &Interval, scale: f64, d: usize) -> String {
    format!(
        "{} <span class=\"desc\">[{}, {}]</span>",
        signed(i.observed * scale, d),
        signed(i.low * scale, d),
        signed(i.high * scale, d)
    )
}

/// `<section id="shift">`.
pub fn section(o: &mut String, c: &Comparison) {
    o.push_str("<section id=\"shift\">\n<h2>Under a style shift</h2>\n");
    let Some(r) = &c.shift else {
        o.push_str(
            "<p class=\"note\">No second dataset in this comparison: run \
             <code>compare --against CONFIG</code> (e.g. configs/emoji40-google.toml).</p>\n</section>\n",
        );
        return;
    };
    w!(
        o,
        "<p class=\"note\">In domain: {} / {} ({} rows). Shifted: {} / {} ({} rows; {} rows of unknown \
         classes left out). Losses are in-domain minus shifted (NLL and ECE: shifted minus in-domain), \
         with 95% intervals of an unpaired bootstrap ({} resamples, seed {}).</p>\n",
        Esc(&c.dataset), Esc(&c.split), c.n, Esc(&r.dataset), Esc(&r.split), r.rows, r.rows_left_out,
        r.resamples, r.seed
    );
    o.push_str(
        "<table class=\"compact\">\n<thead><tr><th class=\"l\">approach</th><th>accuracy % in / shifted</th>\
         <th>accuracy loss, points</th><th>macro-F1 loss, points</th><th>NLL rise</th>\
         <th>ECE % in / shifted</th><th>ECE rise, points</th></tr></thead>\n<tbody>\n",
    );
    for x in &r.results {
        w!(
            o,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td></tr>\n",
            Esc(&x.approach),
            pct(x.in_domain.accuracy),
            pct(x.shifted.accuracy),
            cell(&x.accuracy_drop, 100.0, 1),
            cell(&x.macro_f1_drop, 100.0, 1),
            cell(&x.nll_rise, 1.0, 3),
            fixed(x.in_domain.ece, 2),
            fixed(x.shifted.ece, 2),
            cell(&x.ece_rise, 1.0, 2)
        );
    }
    o.push_str("</tbody>\n</table>\n<div class=\"plots\">\n");
    for x in r
        .results
        .iter()
        .filter(|x| x.approach == KEY_APPROACH || x.approach == KEY_BASELINE)
    {
        reliability::svg(
            o,
            &format!("{} (shifted)", x.approach),
            &x.reliability_shifted,
        );
    }
    o.push_str("</div>\n</section>\n");
}
