//! Report stage for `ovr curves`: a [`Curves`] (per-class F1 by training
//! fraction, fitted slopes, overall accuracy) -> the ranked stdout table
//! "classes that would gain most from more images", the accuracy table, and
//! a self-contained HTML page (inline CSS and SVG, no scripts): overall
//! accuracy vs fraction, small multiples of F1 vs fraction for the top
//! classes (bars: min–max over seeds), and the full ranked table.

use super::text::{fixed, pct, signed, ticks, truncate, Esc, N, NONE, PALETTE};
use crate::curves::fit::Stat;
use crate::curves::{ranked, ClassCurve, Curves};

/// Classes drawn as small multiples in the HTML report.
pub const PLOT_CLASSES: usize = 8;

fn percent_label(f: f64) -> String {
    let p = f * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}%", p.round())
    } else {
        format!("{}%", fixed(p, 1))
    }
}

fn gain(c: &ClassCurve, approach: &str) -> String {
    match c.slope.get(approach) {
        Some(s) => match (s.gain_per_doubling, s.std) {
            (Some(g), Some(sd)) if s.per_seed.len() > 1 => {
                format!("{} ± {}", signed(g, 3), fixed(sd, 3))
            }
            (Some(g), _) => signed(g, 3),
            _ => NONE.to_string(),
        },
        None => NONE.to_string(),
    }
}

fn last_f1(c: &ClassCurve, approach: &str) -> String {
    c.f1_by_fraction
        .get(approach)
        .and_then(|v| v.last())
        .map_or(NONE.to_string(), |p| fixed(p.f1.mean, 3))
}

fn stat_pct(s: &Stat, seeds: usize) -> String {
    if seeds > 1 {
        format!("{} ± {}", pct(s.mean), pct(s.std))
    } else {
        pct(s.mean)
    }
}

/// The one-paragraph explanation above the ranked table.
fn explain(c: &Curves) -> String {
    let fitted: Vec<String> = c.fractions[c.fractions.len() - c.fit_points..]
        .iter()
        .map(|&f| percent_label(f))
        .collect();
    format!(
        "gain = least-squares slope of the class's test F1 against log2(fraction of its \
         training images) over {}: the F1 expected from doubling the images (every class \
         subsampled together); mean ± std over {} seed(s); ranked by the mean gain of the approaches",
        fitted.join(", "),
        c.seeds
    )
}

/// The stdout text: the ranked class table, then accuracy per fraction.
pub fn text(c: &Curves) -> String {
    use std::fmt::Write as _;
    let top = percent_label(c.fractions.last().copied().unwrap_or(1.0));
    let mut s = format!(
        "classes that would gain most from more images ({}):\n\n",
        explain(c)
    );
    let mut head = String::from("| rank | class | train images | test images |");
    let mut rule = String::from("|---:|---|---:|---:|");
    for a in &c.approaches {
        let _ = write!(head, " {a} F1 at {top} | {a} gain per doubling |");
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for i in ranked(&c.classes) {
        let k = &c.classes[i];
        let _ = write!(
            s,
            "| {} | {} | {} | {} |",
            k.rank, k.name, k.train_images, k.test_images
        );
        for a in &c.approaches {
            let _ = write!(s, " {} | {} |", last_f1(k, a), gain(k, a));
        }
        s.push('\n');
    }
    let _ = write!(
        s,
        "\ntest accuracy (%) by fraction of the training images:\n\n| fraction | train images |"
    );
    for o in &c.overall {
        let _ = write!(s, " {} |", o.approach);
    }
    let pair = (c.approaches.len() == 2).then(|| (&c.approaches[0], &c.approaches[1]));
    if let Some((a, b)) = pair {
        let _ = write!(s, " {a} - {b} (points) | seeds {a} ahead |");
    }
    s.push_str("\n|---:|---:|");
    s.push_str(&"---:|".repeat(c.overall.len() + if pair.is_some() { 2 } else { 0 }));
    s.push('\n');
    for (fi, &f) in c.fractions.iter().enumerate() {
        let n = c
            .runs
            .iter()
            .find(|r| r.fraction == f)
            .map_or(0, |r| r.train_images);
        let _ = write!(s, "| {} | {n} |", percent_label(f));
        for o in &c.overall {
            let _ = write!(s, " {} |", stat_pct(&o.accuracy[fi], c.seeds));
        }
        if let Some((a, b)) = pair {
            let d: Vec<f64> = c
                .runs
                .iter()
                .filter(|r| r.fraction == f)
                .filter_map(|r| Some(r.accuracy.get(a)? - r.accuracy.get(b)?))
                .collect();
            let ahead = d.iter().filter(|&&v| v > 0.0).count();
            let _ = write!(
                s,
                " {} | {ahead}/{} |",
                signed(100.0 * Stat::of(&d).mean, 2),
                d.len()
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "\n{} trainings ({} fraction(s) x {} seed(s), repeated subsets trained once) in {:.1} s",
        c.trainings,
        c.fractions.len(),
        c.seeds,
        c.seconds
    );
    s
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fff}\
main{max-width:1100px;margin:auto;padding:1em 1.5em}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}\
table{border-collapse:collapse;margin:.6em 0}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:right}\
td.l,th.l{text-align:left}.note{color:#555}.grid{display:flex;flex-wrap:wrap;gap:.6em}\
svg.plot{background:#fafafa;border:1px solid #eee}svg text{font-size:11px;fill:#333}footer{margin-top:2em;color:#777;font-size:.9em}";

/// One line per approach: (label, colour, dashed, points per fraction).
type Series<'a> = (&'a str, &'static str, bool, Vec<Stat>);

/// A panel of y vs log2(fraction) with min–max bars; y in [lo, hi].
fn panel(
    o: &mut String,
    kind: &str,
    title: &str,
    fractions: &[f64],
    series: &[Series],
    y: (f64, f64),
    size: (f64, f64),
) {
    let (w, h) = size;
    let (l, r, t, b) = (44.0, 20.0, 22.0, 30.0);
    let lx: Vec<f64> = fractions.iter().map(|f| f.log2()).collect();
    let (x0, x1) = (
        lx.first().copied().unwrap_or(-1.0),
        lx.last().copied().unwrap_or(0.0),
    );
    let span = if x1 > x0 { x1 - x0 } else { 1.0 };
    let px = |x: f64| l + (x - x0) / span * (w - l - r);
    let py =
        |v: f64| t + (1.0 - (super::text::clamp(v, y.0, y.1) - y.0) / (y.1 - y.0)) * (h - t - b);
    w!(
        o,
        "<svg class=\"plot\" data-plot=\"{kind}\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">\
         <title>{}</title><text x=\"{}\" y=\"14\" font-weight=\"bold\">{}</text>",
        N(w), N(h), N(w), N(h), Esc(title), N(l), Esc(title)
    );
    let (yt, dec) = ticks(y.0, y.1, 4);
    for v in yt {
        w!(
            o,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{yy}\" y2=\"{yy}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            N(l), N(w - r), N(l - 4.0), N(py(v) + 4.0), fixed(v, dec), yy = N(py(v))
        );
    }
    for (&f, &x) in fractions.iter().zip(&lx) {
        w!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            N(px(x)),
            N(h - b + 14.0),
            Esc(&percent_label(f))
        );
    }
    for (label, colour, dashed, pts) in series {
        let dash = if *dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let path: Vec<String> = pts
            .iter()
            .zip(&lx)
            .map(|(p, &x)| format!("{},{}", N(px(x)), N(py(p.mean))))
            .collect();
        w!(
            o,
            "<polyline class=\"series\" data-approach=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            Esc(label), path.join(" ")
        );
        for (p, &x) in pts.iter().zip(&lx) {
            w!(
                o,
                "<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"{colour}\"/><circle cx=\"{0}\" cy=\"{3}\" r=\"2.5\" fill=\"{colour}\"/>",
                N(px(x)), N(py(p.min)), N(py(p.max)), N(py(p.mean))
            );
        }
    }
    o.push_str("</svg>\n");
}

fn legend(o: &mut String, c: &Curves) {
    o.push_str("<p class=\"note\">");
    for (i, a) in c.approaches.iter().enumerate() {
        let dash = if i > 0 { " (dashed)" } else { "" };
        w!(
            o,
            "<span style=\"color:{}\">■</span> <code>{}</code>{dash} &nbsp; ",
            PALETTE[i % PALETTE.len()],
            Esc(a)
        );
    }
    o.push_str("Points: mean over seeds; bars: min–max. x axis: fraction of each class's training images (log scale).</p>\n");
}

/// Every class in rank order: its sizes, and each approach's F1 at the
/// largest fraction and gain per doubling.
fn ranking_table(o: &mut String, c: &Curves, order: &[usize]) {
    w!(o, "<p class=\"note\">{}.</p>\n<table>\n<tr><th>rank</th><th class=\"l\">class</th><th>train images</th><th>test images</th>", Esc(&explain(c)));
    let top = percent_label(c.fractions.last().copied().unwrap_or(1.0));
    for a in &c.approaches {
        w!(
            o,
            "<th>{} F1 at {}</th><th>gain per doubling</th>",
            Esc(a),
            Esc(&top)
        );
    }
    o.push_str("</tr>\n");
    for &i in order {
        let k = &c.classes[i];
        w!(
            o,
            "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>",
            k.rank,
            Esc(&k.name),
            k.train_images,
            k.test_images
        );
        for a in &c.approaches {
            w!(
                o,
                "<td>{}</td><td>{}</td>",
                Esc(&last_f1(k, a)),
                Esc(&gain(k, a))
            );
        }
        o.push_str("</tr>\n");
    }
}

/// The whole HTML page.
pub fn render_html(c: &Curves) -> String {
    let mut o = String::with_capacity(32 * 1024);
    let title = format!("ovr learning curves: {} ({})", c.dataset, c.backbone);
    w!(
        &mut o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n\
         <p>{} train / {} val / {} test images, {} classes; fractions {}; {} seed(s); run seed {}. \
         Validation (C selection, calibration) and test are whole in every run.</p>\n",
        Esc(&title), Esc(&title), c.train_images, c.val_images, c.test_images, c.classes.len(),
        Esc(&c.fractions.iter().map(|&f| percent_label(f)).collect::<Vec<_>>().join(", ")),
        c.seeds, c.seed
    );
    let series = |f: &dyn Fn(usize) -> Vec<Stat>| -> Vec<Series> {
        c.approaches
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), PALETTE[i % PALETTE.len()], i > 0, f(i)))
            .collect()
    };
    o.push_str("<section id=\"accuracy\">\n<h2>Test accuracy vs training images</h2>\n");
    legend(&mut o, c);
    let acc = series(&|i| c.overall[i].accuracy.clone());
    let lo = acc
        .iter()
        .flat_map(|s| s.3.iter().map(|p| p.min))
        .filter(|v| v.is_finite())
        .fold(1.0, f64::min);
    let lo = (lo * 10.0).floor() / 10.0;
    panel(
        &mut o,
        "accuracy",
        "test accuracy",
        &c.fractions,
        &acc,
        (lo.min(0.9), 1.0),
        (520.0, 300.0),
    );
    o.push_str("</section>\n<section id=\"classes\">\n");
    let order = ranked(&c.classes);
    w!(
        &mut o,
        "<h2>F1 vs training images: the {} classes that would gain most</h2>\n",
        PLOT_CLASSES.min(order.len())
    );
    legend(&mut o, c);
    o.push_str("<div class=\"grid\">\n");
    for &i in order.iter().take(PLOT_CLASSES) {
        let k = &c.classes[i];
        let s = series(&|a| {
            k.f1_by_fraction
                .get(&c.approaches[a])
                .map(|v| v.iter().map(|p| p.f1).collect())
                .unwrap_or_default()
        });
        let t = format!(
            "{}. {} ({} images)",
            k.rank,
            truncate(&k.name, 18),
            k.train_images
        );
        panel(
            &mut o,
            "class-f1",
            &t,
            &c.fractions,
            &s,
            (0.0, 1.0),
            (260.0, 190.0),
        );
    }
    o.push_str("</div>\n</section>\n<section id=\"ranking\">\n<h2>Every class, ranked</h2>\n");
    ranking_table(&mut o, c, &order);
    w!(
        &mut o,
        "</table>\n</section>\n<footer>Written by <code>ovr curves</code>: {} trainings in {:.1} s. Self-contained: no scripts, no external resources.</footer>\n</main>\n</body>\n</html>\n",
        c.trainings, c.seconds
    );
    o
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::curves::fit::Slope;
    use crate::curves::{FractionPoint, OverallCurve, RunRecord};

    fn point(fraction: f64, images: usize, v: f64) -> FractionPoint {
        FractionPoint {
            fraction,
            images,
            f1: Stat::of(&[v]),
            per_seed: vec![v],
        }
    }

    fn class(name: &str, gain: Option<f64>, rank: usize) -> ClassCurve {
        let approaches = ["specialists-calibrated", "multiclass-temperature"];
        ClassCurve {
            name: name.into(),
            train_images: 2,
            test_images: 1,
            f1_by_fraction: approaches
                .iter()
                .map(|a| (a.to_string(), vec![point(0.5, 1, 0.5), point(1.0, 2, 0.75)]))
                .collect(),
            slope: approaches
                .iter()
                .map(|a| {
                    let s = Slope {
                        gain_per_doubling: gain,
                        std: gain.map(|_| 0.0),
                        per_seed: vec![gain],
                        fitted_fractions: vec![0.5, 1.0],
                    };
                    (a.to_string(), s)
                })
                .collect(),
            rank,
        }
    }

    fn curves() -> Curves {
        let overall = ["specialists-calibrated", "multiclass-temperature"]
            .iter()
            .map(|a| OverallCurve {
                approach: a.to_string(),
                accuracy: vec![Stat::of(&[0.5]), Stat::of(&[f64::NAN])],
                macro_f1: vec![Stat::of(&[0.5]), Stat::of(&[0.6])],
            })
            .collect();
        let run = |fraction: f64, n: usize| RunRecord {
            fraction,
            seed: 0,
            train_images: n,
            combiner: "platt".into(),
            accuracy: BTreeMap::from([
                ("specialists-calibrated".to_string(), 0.6),
                ("multiclass-temperature".to_string(), 0.5),
            ]),
            seconds: 0.1,
            reused: false,
        };
        Curves {
            dataset: "d<1>".into(),
            backbone: "b".into(),
            seed: 1,
            fractions: vec![0.5, 1.0],
            seeds: 1,
            fit_points: 2,
            approaches: vec![
                "specialists-calibrated".into(),
                "multiclass-temperature".into(),
            ],
            train_images: 4,
            val_images: 2,
            test_images: 2,
            trainings: 2,
            seconds: 0.2,
            runs: vec![run(0.5, 2), run(1.0, 4)],
            overall,
            classes: vec![class("<b>&\"x\"", Some(0.25), 1), class("flat", None, 2)],
        }
    }

    #[test]
    fn text_ranks_and_marks_missing_slopes() {
        let t = text(&curves());
        let first = t.find("| 1 | <b>&\"x\"").expect("ranked first");
        let second = t.find("| 2 | flat |").expect("ranked second");
        assert!(first < second, "{t}");
        assert!(
            t.contains("+0.250") && t.contains("| 2 | flat | 2 | 1 | 0.750 | — |"),
            "{t}"
        );
        assert!(
            t.contains("| 50% | 2 | 50.00 | 50.00 | +10.00 | 1/1 |"),
            "{t}"
        );
        assert!(t.contains("| 100% | 4 | — | — | +10.00 | 1/1 |"), "{t}");
    }

    #[test]
    fn html_escapes_and_never_prints_nan() {
        let h = render_html(&curves());
        assert!(h.contains("&lt;b&gt;&amp;&quot;x&quot;") && !h.contains("<b>&"));
        assert!(h.contains("d&lt;1&gt;"));
        assert!(!h.contains("NaN") && !h.contains("inf") && !h.contains("<script"));
        assert_eq!(h.matches("data-plot=\"class-f1\"").count(), 2);
        assert_eq!(h.matches("data-plot=\"accuracy\"").count(), 1);
        assert!(!h.contains("http"), "self-contained");
    }
}
