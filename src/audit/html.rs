//! Audit stage, the page for people: an [`Audit`] -> one self-contained
//! HTML5 file (inline CSS, thumbnails embedded as base64 PNG `data:` URIs,
//! no scripts, no external resources): the nearest-neighbour similarity
//! distribution, the near-duplicate pairs of each pair of splits (the most
//! similar first, at most [`PAIRS_SHOWN`] each), the test images leaked
//! from train, and the likely label errors overall and per class.

use std::fmt::Write as _;

use super::duplicates::Pair;
use super::label_errors::Candidate;
use super::Audit;
use crate::report::text::Esc;

/// Pairs shown per pair of splits (the JSON lists more).
pub const PAIRS_SHOWN: usize = 60;

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fff}\
main{max-width:1200px;margin:0 auto;padding:1em 2em}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.cards{display:flex;flex-wrap:wrap;gap:8px}\
.card{border:1px solid #ccc;padding:4px;width:230px;font-size:12px;word-break:break-all}\
.card img{image-rendering:pixelated;width:96px;height:96px;object-fit:contain;background:#eee}\
.conflict{background:#fde2e2}.flag{color:#b00;font-weight:bold}";

/// The page. `thumb(key)` gives an image's `data:` URI (`None`: the key alone).
pub fn render(a: &Audit, thumb: &dyn Fn(&str) -> Option<String>) -> String {
    let mut o = String::with_capacity(256 * 1024);
    let title = format!("ovr audit: {} ({})", a.dataset, a.backbone);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n<p>{} train / {} val / {} test \
         images, {} classes; seed {}.</p>\n",
        Esc(&title),
        Esc(&title),
        a.rows[0],
        a.rows[1],
        a.rows[2],
        a.classes.len(),
        a.seed
    );
    duplicates_section(&mut o, a, thumb);
    labels_section(&mut o, a, thumb);
    o.push_str("<footer>Written by <code>ovr audit</code>. Self-contained: no scripts, no external resources.</footer>\n</main>\n</body>\n</html>\n");
    o
}

fn img(o: &mut String, key: &str, thumb: &dyn Fn(&str) -> Option<String>) {
    match thumb(key) {
        Some(uri) => {
            let _ = write!(o, "<img src=\"{uri}\" alt=\"{}\">", Esc(key));
        }
        None => o.push_str("<span>(no thumbnail)</span>"),
    }
}

fn duplicates_section(o: &mut String, a: &Audit, thumb: &dyn Fn(&str) -> Option<String>) {
    let d = &a.duplicates;
    let _ = write!(
        o,
        "<section id=\"duplicates\">\n<h2>Near-duplicates</h2>\n<p>Pairs whose feature vectors have a \
         cosine similarity of at least {} (<code>audit.duplicate_cosine</code>); exact search. \
         {} of {} test images have a near-duplicate in train.</p>\n\
         <table><tr><th>split</th><th>rows</th><th>nearest train image's cosine: percentiles</th>\
         <th>at or above threshold</th></tr>\n",
        d.threshold,
        d.test_leaked.len(),
        a.rows[2]
    );
    for n in &d.nearest_train {
        let q: Vec<String> = n
            .quantiles
            .iter()
            .map(|(p, v)| format!("p{p}: {v:.4}"))
            .collect();
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            Esc(&n.split),
            n.rows,
            Esc(&q.join(", ")),
            n.at_or_above
        );
    }
    o.push_str("</table>\n<table><tr><th>class</th><th>pairs inside a split</th><th>pairs across splits</th><th>test images leaked from train</th></tr>\n");
    for c in d
        .per_class
        .iter()
        .filter(|c| c.within_split + c.across_splits > 0)
    {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            Esc(&c.class),
            c.within_split,
            c.across_splits,
            c.test_leaked
        );
    }
    o.push_str("</table>\n");
    for sp in &d.split_pairs {
        let _ = writeln!(
            o,
            "<h3>{} &ndash; {}: {} pairs ({} with different labels)</h3>\n<div class=\"cards\">",
            Esc(&sp.split_a),
            Esc(&sp.split_b),
            sp.pairs,
            sp.label_conflicts
        );
        for p in sp.listed.iter().take(PAIRS_SHOWN) {
            pair_card(o, p, thumb);
        }
        o.push_str("</div>\n");
    }
    o.push_str("</section>\n");
}

fn pair_card(o: &mut String, p: &Pair, thumb: &dyn Fn(&str) -> Option<String>) {
    let class = if p.class_a == p.class_b {
        "card"
    } else {
        "card conflict"
    };
    let _ = write!(o, "<div class=\"{class}\">");
    img(o, &p.key_a, thumb);
    img(o, &p.key_b, thumb);
    let _ = writeln!(
        o,
        "<br>cosine {:.4}<br>{} ({})<br>{} ({})</div>",
        p.cosine,
        Esc(&p.key_a),
        Esc(&p.class_a),
        Esc(&p.key_b),
        Esc(&p.class_b)
    );
}

fn candidate_card(o: &mut String, c: &Candidate, thumb: &dyn Fn(&str) -> Option<String>) {
    o.push_str("<div class=\"card\">");
    img(o, &c.key, thumb);
    let _ = writeln!(
        o,
        "<br>#{} {}<br>given <b>{}</b>, p = {:.4}<br>suggested <b>{}</b>, margin {:+.4}<br>{}</div>",
        c.rank,
        if c.flagged {
            "<span class=\"flag\">flagged</span>"
        } else {
            ""
        },
        Esc(&c.given),
        c.self_confidence,
        Esc(&c.suggested),
        c.margin,
        Esc(&c.key)
    );
}

fn labels_section(o: &mut String, a: &Audit, thumb: &dyn Fn(&str) -> Option<String>) {
    let e = &a.label_errors;
    let cs: Vec<String> = e.c_per_fold.iter().map(|c| format!("{c}")).collect();
    let _ = write!(
        o,
        "<section id=\"label-errors\">\n<h2>Likely label errors</h2>\n<p>{}-fold out-of-fold \
         probabilities of the multiclass linear head over the training split (C per fold: {}; \
         out-of-fold accuracy {:.2}%). Ranked by {}. {} of {} training images are flagged by the \
         confident joint (another class reaches its per-class threshold and beats the given one).</p>\n\
         <h3>Overall</h3>\n<div class=\"cards\">",
        e.folds,
        Esc(&cs.join(", ")),
        100.0 * e.out_of_fold_accuracy,
        Esc(&e.ranking),
        e.flagged,
        a.rows[0]
    );
    for c in &e.top {
        candidate_card(o, c, thumb);
    }
    o.push_str("</div>\n<h3>Per class</h3>\n");
    for pc in &e.per_class {
        let _ = writeln!(
            o,
            "<h4>{}: {} images, {} flagged, threshold {:.3}</h4>\n<div class=\"cards\">",
            Esc(&pc.class),
            pc.rows,
            pc.flagged,
            pc.threshold
        );
        for c in &pc.candidates {
            candidate_card(o, c, thumb);
        }
        o.push_str("</div>\n");
    }
    o.push_str("</section>\n");
}
