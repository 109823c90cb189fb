//! Report stage, "none of these": from a `Comparison`'s open-set part, the
//! known-ness table (AUROC, FPR at 95 % TPR, AURC), the risk–coverage
//! curves of the key scores and a known/unknown histogram per key score.
//! Without unknown images the section says how to get them.

use super::text::{fixed, signed, Esc, N};
use crate::metrics::compare::Comparison;
use crate::metrics::open_set::{OpenSetReport, OpenSetResult};

const W: f64 = 380.0;
const H: f64 = 240.0;
const LEFT: f64 = 44.0;
const TOP: f64 = 28.0;
const PW: f64 = 316.0;
const PH: f64 = 170.0;
const COLORS: [&str; 4] = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b"];

/// The scores plotted: (approach, score).
const KEY: [(&str, &str); 4] = [
    (super::KEY_APPROACH, "max-probability"),
    (super::KEY_BASELINE, "max-probability"),
    ("specialists", "max-sigmoid"),
    ("multiclass", "energy"),
];

fn key_results(o: &OpenSetReport) -> Vec<&OpenSetResult> {
    KEY.iter()
        .filter_map(|(a, s)| o.results.iter().find(|r| r.approach == *a && r.score == *s))
        .collect()
}

fn frame(o: &mut String, plot: &str, title: &str, y_max: f64, x_label: &str) {
    w!(
        o,
        "<svg class=\"plot\" data-plot=\"{plot}\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">\n\
         <title>{}</title>\n<text x=\"{}\" y=\"18\" font-size=\"13\" font-weight=\"600\">{}</text>\n\
         <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fafbfc\" stroke=\"#c8cdd3\"/>\n",
        N(W), N(H), N(W), N(H), Esc(title), N(LEFT), Esc(title), N(LEFT), N(TOP), N(PW), N(PH)
    );
    for i in 0..=4 {
        let v = i as f64 / 4.0;
        let yy = TOP + PH * (1.0 - v);
        w!(
            o,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e4e7eb\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>\n",
            N(LEFT),
            N(yy),
            N(LEFT + PW),
            N(yy),
            N(LEFT - 4.0),
            N(yy + 3.5),
            fixed(v * y_max, 2)
        );
    }
    w!(
        o,
        "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\n",
        N(LEFT + PW / 2.0),
        N(TOP + PH + 26.0),
        Esc(x_label)
    );
}

fn risk_coverage(o: &mut String, rs: &[&OpenSetResult]) {
    let y_max = rs
        .iter()
        .flat_map(|r| r.risk_coverage.iter().map(|p| p.1))
        .fold(0.05f64, f64::max)
        .min(1.0);
    frame(
        o,
        "risk-coverage",
        "Risk vs coverage (known rows)",
        y_max,
        "coverage (most known-looking first)",
    );
    for (i, r) in rs.iter().enumerate() {
        let pts: Vec<String> = r
            .risk_coverage
            .iter()
            .map(|&(c, risk)| {
                format!(
                    "{},{}",
                    N(LEFT + c * PW),
                    N(TOP + PH * (1.0 - (risk / y_max).min(1.0)))
                )
            })
            .collect();
        w!(
            o,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" points=\"{}\"><title>{} / {}: AURC {}</title></polyline>\n\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"{}\">{} / {}</text>\n",
            COLORS[i % 4], pts.join(" "), Esc(&r.approach), Esc(&r.score), fixed(r.aurc, 4),
            N(LEFT + 6.0), N(TOP + 12.0 + 11.0 * i as f64), COLORS[i % 4], Esc(&r.approach), Esc(&r.score)
        );
    }
    o.push_str("</svg>\n");
}

fn histogram(o: &mut String, r: &OpenSetResult) {
    let (nk, nu) = (
        r.known_hist.iter().sum::<usize>().max(1) as f64,
        r.unknown_hist.iter().sum::<usize>().max(1) as f64,
    );
    let frac = |h: &[usize], n: f64| -> Vec<f64> { h.iter().map(|&c| c as f64 / n).collect() };
    let (fk, fu) = (frac(&r.known_hist, nk), frac(&r.unknown_hist, nu));
    let y_max = fk.iter().chain(&fu).fold(0.05f64, |a, &b| a.max(b));
    let title = format!(
        "{} / {}: known (blue) vs unknown (orange)",
        r.approach, r.score
    );
    let lo = r.hist_edges.first().copied().unwrap_or(0.0);
    let hi = r.hist_edges.last().copied().unwrap_or(1.0);
    frame(
        o,
        "knownness-histogram",
        &title,
        y_max,
        &format!("score {} … {}", fixed(lo, 3), fixed(hi, 3)),
    );
    let bw = PW / fk.len().max(1) as f64;
    for (b, (k, u)) in fk.iter().zip(&fu).enumerate() {
        for (j, (v, color)) in [(k, COLORS[0]), (u, COLORS[3])].into_iter().enumerate() {
            let h = PH * (v / y_max).min(1.0);
            w!(
                o,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{color}\" fill-opacity=\"0.8\"/>\n",
                N(LEFT + b as f64 * bw + j as f64 * bw / 2.0 + 0.5),
                N(TOP + PH - h),
                N((bw / 2.0 - 1.0).max(0.5)),
                N(h)
            );
        }
    }
    o.push_str("</svg>\n");
}

/// `<section id="open-set">`.
pub fn section(o: &mut String, c: &Comparison) {
    o.push_str("<section id=\"open-set\">\n<h2>None of these: known vs unknown images</h2>\n");
    let Some(os) = &c.open_set else {
        o.push_str(
            "<p class=\"note\">No unknown images in this comparison: train with \
             <code>--holdout-classes K</code> or run <code>compare --unknown INPUT</code>.</p>\n</section>\n",
        );
        return;
    };
    w!(
        o,
        "<p class=\"note\">{} known rows, {} unknown ({}).</p>\n<table class=\"compact\">\n<thead><tr>\
         <th class=\"l\">approach</th><th class=\"l\">known-ness</th><th>AUROC</th><th>FPR at 95% TPR</th>\
         <th title=\"area under the risk-coverage curve of the known rows (lower is better)\">AURC</th></tr></thead>\n<tbody>\n",
        os.known_rows,
        os.unknown_rows,
        Esc(&os.unknown_sources.join("; "))
    );
    for r in &os.results {
        w!(
            o,
            "<tr><td class=\"l\"><code>{}</code></td><td class=\"l\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            Esc(&r.approach), Esc(&r.score), fixed(r.auroc, 4), fixed(r.fpr_at_95_tpr, 4), fixed(r.aurc, 4)
        );
    }
    o.push_str("</tbody>\n</table>\n");
    for p in &os.pairs {
        let d = &p.auroc_difference;
        w!(
            o,
            "<p class=\"note\">AUROC <code>{}</code> − <code>{}</code>: {} (95% CI {} to {}, paired bootstrap, {} resamples).</p>\n",
            Esc(&p.a), Esc(&p.b), signed(d.observed, 4), signed(d.low, 4), signed(d.high, 4), os.resamples
        );
    }
    let keys = key_results(os);
    o.push_str("<div class=\"plots\">\n");
    risk_coverage(o, &keys);
    for r in keys.iter().filter(|r| r.score != "energy").take(2) {
        histogram(o, r);
    }
    o.push_str("</div>\n</section>\n");
}
