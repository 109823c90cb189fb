//! Report stage, confusion heatmaps written from a `Comparison`: the
//! `confusion[true][pred]` counts of the two key approaches -> inline SVG
//! heatmaps with each row divided by its support, class names on both axes
//! (column labels rotated), a `<title>` tooltip with the counts on every
//! cell and a colour legend. Rows of classes without support are grey.

use super::text::{blues, fixed, text_width, truncate, Esc, N};
use super::{approach, class_name, missing_note, KEY_APPROACH, KEY_BASELINE};
use crate::metrics::compare::Comparison;

/// Longest class label drawn on an axis (the tooltip has the full name).
const MAX_LABEL: usize = 24;

/// `<section id="confusion">`: heatmaps of the two key approaches.
pub fn section(o: &mut String, c: &Comparison) {
    o.push_str("<section id=\"confusion\">\n<h2>Confusion matrices</h2>\n<div class=\"figs\">\n");
    let mut notes = String::new();
    for name in [KEY_BASELINE, KEY_APPROACH] {
        match approach(c, name) {
            Some(a) => {
                o.push_str("<figure class=\"key\">\n");
                svg(o, c, &a.name, &a.confusion);
                w!(
                    o,
                    "<figcaption><code>{}</code>: rows = true class, columns = predicted class, \
                     each row divided by its support</figcaption>\n</figure>\n",
                    Esc(&a.name)
                );
            }
            None => missing_note(&mut notes, name, "confusion matrix"),
        }
    }
    o.push_str("</div>\n");
    o.push_str(&notes);
    o.push_str(
        "<p class=\"note\">Colour = share of the true class's rows predicted as each class \
         (the diagonal is the recall). Grey rows: classes with no row in this split. Hover a \
         cell for its count.</p>\n</section>\n",
    );
}

/// One heatmap as `<svg class="plot" data-plot="confusion">`. `m` is
/// `[true][pred]`; a ragged or empty matrix is drawn as far as it goes.
pub fn svg(o: &mut String, c: &Comparison, name: &str, m: &[Vec<usize>]) {
    let k = m.len().max(m.iter().map(Vec::len).max().unwrap_or(0));
    let cell = (440.0 / k.max(1) as f64).floor().clamp(10.0, 44.0);
    let font = if cell >= 20.0 { 11.0 } else { 9.0 };
    let labels: Vec<String> = (0..k)
        .map(|i| truncate(&class_name(c, i), MAX_LABEL))
        .collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1);
    let lw = text_width(longest, font) + 8.0;
    let (left, top) = (lw + 24.0, 34.0);
    let side = cell * k as f64;
    let title_w = text_width(name.chars().count(), 13.0) * 1.15 + 24.0;
    let width = (left + side + 10.0).max(title_w + LEGEND_W + 16.0);
    let height = top + side + lw + 34.0;
    w!(
        o,
        "<svg class=\"plot\" data-plot=\"confusion\" data-approach=\"{}\" width=\"{}\" height=\"{}\" \
         viewBox=\"0 0 {} {}\" role=\"img\">\n<title>Confusion matrix of {} (rows normalized)</title>\n\
         <text x=\"4\" y=\"20\" font-size=\"13\" font-weight=\"600\">{}</text>\n",
        Esc(name),
        N(width),
        N(height),
        N(width),
        N(height),
        Esc(name),
        Esc(name)
    );
    let g = Geom {
        left,
        top,
        cell,
        side,
        font,
        height,
    };
    cells(o, c, m, &g);
    // Diagonal outline and frame.
    w!(
        o,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#8a939c\"/>\n",
        N(left),
        N(top),
        N(side),
        N(side)
    );
    axis_labels(o, c, m, &labels, &g);
    legend(o, width - LEGEND_W - 4.0);
    o.push_str("</svg>\n");
}

/// Where the heatmap sits: its top-left corner, cell size, side, label
/// font size and the picture's height.
struct Geom {
    left: f64,
    top: f64,
    cell: f64,
    side: f64,
    font: f64,
    height: f64,
}

/// One cell per (true, predicted) pair, shaded by the row share (a grey
/// row where the split has no rows of that class).
fn cells(o: &mut String, c: &Comparison, m: &[Vec<usize>], g: &Geom) {
    for (t, row) in m.iter().enumerate() {
        let support: usize = row.iter().sum();
        let true_name = class_name(c, t);
        let yy = g.top + t as f64 * g.cell;
        if support == 0 {
            w!(
                o,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#e6e8eb\"><title>true {}: no rows \
                 in this split</title></rect>\n",
                N(g.left),
                N(yy),
                N(g.side),
                N(g.cell),
                Esc(&true_name)
            );
            continue;
        }
        for (p, &count) in row.iter().enumerate() {
            let share = count as f64 / support as f64;
            let xx = g.left + p as f64 * g.cell;
            w!(
                o,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"#ffffff\" \
                 stroke-width=\"0.5\"><title>true {} → predicted {}: {} of {} rows ({} %)</title></rect>\n",
                N(xx),
                N(yy),
                N(g.cell),
                N(g.cell),
                blues(share),
                Esc(&true_name),
                Esc(&class_name(c, p)),
                count,
                support,
                fixed(share * 100.0, 1)
            );
            if g.cell >= 24.0 && count > 0 {
                w!(
                    o,
                    "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"{}\" \
                     pointer-events=\"none\">{}</text>\n",
                    N(xx + g.cell / 2.0),
                    N(yy + g.cell / 2.0 + 3.5),
                    if share > 0.55 { "#ffffff" } else { "#1d2329" },
                    count
                );
            }
        }
    }
}

/// Class names: rows on the left, columns below, and the axis titles.
fn axis_labels(o: &mut String, c: &Comparison, m: &[Vec<usize>], labels: &[String], g: &Geom) {
    // Axis labels: rows on the left, columns below, rotated to read upwards.
    w!(o, "<g font-size=\"{}\">\n", N(g.font));
    for (i, label) in labels.iter().enumerate() {
        let full = class_name(c, i);
        let empty = m.get(i).is_some_and(|r| r.iter().sum::<usize>() == 0);
        let style = if empty {
            " fill=\"#8a939c\" font-style=\"italic\""
        } else {
            ""
        };
        let mid = i as f64 * g.cell + g.cell / 2.0;
        w!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"{style}><title>{}</title>{}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" transform=\"rotate(-90 {} {})\"><title>{}</title>{}</text>\n",
            N(g.left - 4.0),
            N(g.top + mid + g.font * 0.35),
            Esc(&full),
            Esc(label),
            N(g.left + mid + g.font * 0.35),
            N(g.top + g.side + 4.0),
            N(g.left + mid + g.font * 0.35),
            N(g.top + g.side + 4.0),
            Esc(&full),
            Esc(label)
        );
    }
    o.push_str("</g>\n");
    w!(
        o,
        "<text x=\"10\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 10 {})\">true class</text>\n\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">predicted class</text>\n",
        N(g.top + g.side / 2.0),
        N(g.top + g.side / 2.0),
        N(g.left + g.side / 2.0),
        N(g.height - 8.0)
    );
}

/// Width of the colour legend drawn at the top right.
const LEGEND_W: f64 = 34.0 + 11.0 * 12.0 + 34.0;

/// Eleven colour boxes from 0 % to 100 % in one row, right of the title.
fn legend(o: &mut String, x: f64) {
    w!(
        o,
        "<g font-size=\"9\" fill=\"#3b444d\"><text x=\"{}\" y=\"19\" text-anchor=\"end\">row 0 %</text>\n",
        N(x + 31.0)
    );
    for i in 0..=10 {
        w!(
            o,
            "<rect x=\"{}\" y=\"9\" width=\"12\" height=\"12\" fill=\"{}\" stroke=\"#c8cdd3\" stroke-width=\"0.5\"/>",
            N(x + 34.0 + i as f64 * 12.0),
            blues(i as f64 / 10.0)
        );
    }
    w!(
        o,
        "\n<text x=\"{}\" y=\"19\">100 %</text></g>\n",
        N(x + 34.0 + 11.0 * 12.0 + 3.0)
    );
}
