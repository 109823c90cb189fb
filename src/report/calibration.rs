//! Report stage, how far each calibration figure can be trusted: from a
//! `Comparison`, one table of every approach's ECE with its bootstrap
//! interval beside the ECE a perfectly calibrated model with the same
//! confidences shows on this split, and the key pair's ECE / NLL / Brier
//! differences with paired intervals.

use super::tables::ordered_pairs;
use super::text::{fixed, p_value, signed, Esc};
use super::{KEY_APPROACH, KEY_BASELINE};
use crate::metrics::compare::Comparison;
use crate::metrics::Interval;

fn cell(i: &Interval, decimals: usize) -> String {
    format!(
        "{} <span class=\"desc\">[{}, {}]</span>",
        signed(i.observed, decimals),
        signed(i.low, decimals),
        signed(i.high, decimals)
    )
}

/// `<section id="calibration">`.
pub fn section(o: &mut String, c: &Comparison) {
    o.push_str("<section id=\"calibration\">\n<h2>How sure is each ECE</h2>\n");
    o.push_str(
        "<table class=\"calibration\">\n<thead><tr><th class=\"l\">approach</th><th>ECE %</th>\
         <th title=\"95% bootstrap percentile interval\">95% CI</th>\
         <th title=\"mean ECE of a model calibrated by construction (labels drawn from its own confidences)\">perfect-model ECE %</th>\
         <th>its 95th pct</th><th title=\"consistency-resampling test of: this approach is calibrated\">p</th>\
         <th title=\"every class's probability in 15 bins, mean over classes\">classwise ECE %</th>\
         <th title=\"15 equal-mass bins over the top confidence\">adaptive ECE %</th></tr></thead>\n<tbody>\n",
    );
    for a in &c.approaches {
        let u = &a.calibration;
        let key = a.name == KEY_APPROACH || a.name == KEY_BASELINE;
        w!(
            o,
            "<tr{}><td class=\"l\"><code>{}</code></td><td class=\"num\">{}</td>\
             <td class=\"num\">{} to {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            if key { " class=\"key\"" } else { "" },
            Esc(&a.name),
            fixed(u.ece.observed, 2),
            fixed(u.ece.low, 2),
            fixed(u.ece.high, 2),
            fixed(u.perfect_ece_mean, 2),
            fixed(u.perfect_ece_p95, 2),
            p_value(u.p_value),
            fixed(a.summary.classwise_ece, 2),
            fixed(a.summary.adaptive_ece, 2)
        );
    }
    o.push_str("</tbody>\n</table>\n");
    let key = ordered_pairs(c).into_iter().find(|p| p.key);
    let pair = key.and_then(|k| {
        c.pairs
            .iter()
            .find(|p| (p.a == k.a && p.b == k.b) || (p.a == k.b && p.b == k.a))
    });
    if let Some(p) = pair {
        // Oriented KEY_APPROACH − KEY_BASELINE, as the pairs table.
        let key_first = p.a == KEY_APPROACH;
        let orient = |i: &Interval| if key_first { *i } else { i.negated() };
        let d = &p.calibration;
        w!(
            o,
            "<p class=\"note\"><code>{KEY_APPROACH}</code> − <code>{KEY_BASELINE}</code> [95% CI]: \
             ECE {} points, NLL {}, Brier {}.</p>\n",
            cell(&orient(&d.ece), 2),
            cell(&orient(&d.nll), 4),
            cell(&orient(&d.brier), 4)
        );
    }
    w!(
        o,
        "<p class=\"note\">ECE (15 equal-width bins) is biased upwards on few rows: a model \
         calibrated by construction shows the \"perfect-model\" ECE on these {} rows. An ECE \
         inside that range is as calibrated as this sample can show; a small p says the \
         approach is mis-calibrated. Bootstrap: {} resamples, seed {}.</p>\n</section>\n",
        c.n,
        c.bootstrap_resamples,
        c.seed
    );
}
