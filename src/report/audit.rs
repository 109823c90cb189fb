//! Report stage, the audit's figures on the comparison page: from a
//! `Comparison`, the TOST on every pair's accuracy difference with its flip
//! table (`metrics::equivalence`), and every approach and pair again on the
//! test images without a near-duplicate in train (`metrics::dedup`, filled
//! by `audit::leakage`).

use super::tables::ordered_pairs;
use super::text::{fixed, p_value, pct, signed, Esc};
use super::{KEY_APPROACH, KEY_BASELINE};
use crate::metrics::compare::Comparison;

/// `<section id="equivalence">`: per pair, flips and the TOST verdict.
pub fn equivalence_section(o: &mut String, c: &Comparison) {
    o.push_str("<section id=\"equivalence\">\n<h2>Equivalence and flips</h2>\n");
    if c.equivalence.is_empty() {
        o.push_str("<p class=\"note missing\">No pairs tested for equivalence.</p>\n</section>\n");
        return;
    }
    o.push_str(
        "<table class=\"compact equivalence\">\n<thead><tr><th class=\"l\">a</th><th class=\"l\">b</th>\
         <th title=\"a right, b wrong\">a only right</th><th title=\"a wrong, b right\">b only right</th>\
         <th>both right</th><th>both wrong</th><th title=\"accuracy a − b, points\">Δ acc.</th>\
         <th title=\"equivalence margin, points\">margin</th><th>TOST p</th><th class=\"l\">verdict</th></tr></thead>\n<tbody>\n",
    );
    for p in &c.equivalence {
        let (f, e) = (&p.flips, &p.equivalence);
        let names = [p.a.as_str(), p.b.as_str()];
        let key = names.contains(&KEY_APPROACH) && names.contains(&KEY_BASELINE);
        w!(
            o,
            "<tr{}><td class=\"l\"><code>{}</code></td><td class=\"l\"><code>{}</code></td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">±{}</td><td class=\"num\">{}</td><td class=\"verdict\">{}</td></tr>\n",
            if key { " class=\"key\"" } else { "" },
            Esc(&p.a),
            Esc(&p.b),
            f.a_only,
            f.b_only,
            f.both_right,
            f.both_wrong,
            signed(100.0 * e.difference, 2),
            fixed(100.0 * e.margin, 1),
            p_value(e.p_value),
            Esc(&p.sentence)
        );
    }
    o.push_str(
        "</tbody>\n</table>\n<p class=\"note\">TOST: two one-sided paired t-tests on per-image \
         correctness; \"equivalent\" when both reject at 5%, i.e. the 90% interval of the accuracy \
         difference lies inside ±margin. \"Not significant\" is not \"equivalent\".</p>\n</section>\n",
    );
}

/// `<section id="deduplicated">`: the figures without leaked test images.
pub fn deduplicated_section(o: &mut String, c: &Comparison) {
    o.push_str(
        "<section id=\"deduplicated\">\n<h2>Without near-duplicates of training images</h2>\n",
    );
    let Some(d) = &c.deduplicated else {
        o.push_str(
            "<p class=\"note\">No test image has a near-duplicate in train at the audit's threshold \
             (or no training features were at hand): nothing to remove.</p>\n</section>\n",
        );
        return;
    };
    w!(
        o,
        "<p class=\"note missing\">{} of the {} {} images have a near-duplicate in train \
         (cosine ≥ {}; <code>ovr audit</code> lists them). The figures on the other {} rows:</p>\n",
        d.leaked.len(),
        c.n,
        Esc(&c.split),
        d.threshold,
        d.rows_left
    );
    o.push_str(
        "<table class=\"compact dedup\">\n<thead><tr><th class=\"l\">approach</th><th>accuracy %</th>\
         <th>all rows</th><th>macro-F1 %</th><th>NLL</th><th>ECE %</th></tr></thead>\n<tbody>\n",
    );
    for a in &d.approaches {
        let all = c.approaches.iter().find(|x| x.name == a.name);
        w!(
            o,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            Esc(&a.name),
            pct(a.summary.accuracy),
            all.map_or_else(|| "—".to_string(), |x| pct(x.summary.accuracy)),
            pct(a.summary.macro_f1),
            fixed(a.summary.nll, 4),
            fixed(a.summary.ece, 2)
        );
    }
    o.push_str("</tbody>\n</table>\n<table class=\"compact dedup-pairs\">\n<thead><tr><th class=\"l\">pair</th><th class=\"l\">verdict on these rows</th><th class=\"l\">verdict on all rows</th></tr></thead>\n<tbody>\n");
    let all = ordered_pairs(c);
    for p in &d.pairs {
        let before = all
            .iter()
            .find(|v| (v.a == p.a && v.b == p.b) || (v.a == p.b && v.b == p.a))
            .map_or("—", |v| v.verdict.as_str());
        w!(
            o,
            "<tr><td class=\"l\"><code>{}</code> vs <code>{}</code></td><td class=\"verdict\">{}</td><td class=\"verdict\">{}</td></tr>\n",
            Esc(&p.a),
            Esc(&p.b),
            Esc(&p.verdict),
            Esc(before)
        );
    }
    o.push_str("</tbody>\n</table>\n</section>\n");
}
