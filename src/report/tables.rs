//! Report stage, the tables of the page written from a `Comparison`: the
//! per-approach summary (best value per column highlighted), the pairwise
//! significance table (key pair first, oriented specialists-calibrated minus
//! multiclass-temperature) and the per-specialist one-vs-rest scores.

use super::text::{fixed, p_value, pct, signed, Esc, NONE};
use super::{class_name, KEY_APPROACH, KEY_BASELINE};
use crate::metrics::compare::Comparison;
use crate::metrics::{verdict, Interval, McNemar, Summary};

/// One column of the summary table.
struct Column {
    head: &'static str,
    title: &'static str,
    get: fn(&Summary) -> f64,
    higher_is_better: bool,
    show: fn(f64) -> String,
}

const COLUMNS: [Column; 8] = [
    Column {
        head: "accuracy %",
        title: "fraction of rows whose predicted class is right",
        get: |s| s.accuracy,
        higher_is_better: true,
        show: pct,
    },
    Column {
        head: "top-5 %",
        title: "true class among the 5 most probable",
        get: |s| s.top5,
        higher_is_better: true,
        show: pct,
    },
    Column {
        head: "macro-F1 %",
        title: "mean per-class F1 over all classes",
        get: |s| s.macro_f1,
        higher_is_better: true,
        show: pct,
    },
    Column {
        head: "balanced acc. %",
        title: "mean recall over the classes present",
        get: |s| s.balanced_accuracy,
        higher_is_better: true,
        show: pct,
    },
    Column {
        head: "NLL",
        title: "mean negative log-likelihood of the true class (nats)",
        get: |s| s.nll,
        higher_is_better: false,
        show: |v| fixed(v, 4),
    },
    Column {
        head: "Brier",
        title: "multiclass Brier score, sum over classes (0 to 2)",
        get: |s| s.brier,
        higher_is_better: false,
        show: |v| fixed(v, 4),
    },
    Column {
        head: "ECE %",
        title: "expected calibration error, 15 equal-width bins",
        get: |s| s.ece,
        higher_is_better: false,
        show: |v| fixed(v, 2),
    },
    Column {
        head: "MCE %",
        title: "maximum calibration error over non-empty bins",
        get: |s| s.mce,
        higher_is_better: false,
        show: |v| fixed(v, 2),
    },
];

/// `<section id="summary">`: one row per approach.
pub fn summary_section(o: &mut String, c: &Comparison) {
    o.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n");
    if c.approaches.is_empty() {
        o.push_str("<p class=\"note missing\">The comparison holds no approach.</p>\n</section>\n");
        return;
    }
    // Best value of each column among the finite ones, compared as displayed.
    let best: Vec<Option<String>> = COLUMNS
        .iter()
        .map(|col| {
            let vals = c.approaches.iter().map(|a| (col.get)(&a.summary));
            let finite = vals.filter(|v| v.is_finite());
            let b = if col.higher_is_better {
                finite.fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            } else {
                finite.fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))
            };
            b.map(col.show)
        })
        .collect();
    o.push_str("<table class=\"summary\">\n<thead><tr><th class=\"l\">approach</th>");
    for col in &COLUMNS {
        w!(o, "<th title=\"{}\">{}</th>", Esc(col.title), Esc(col.head));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    for a in &c.approaches {
        let key = a.name == KEY_APPROACH || a.name == KEY_BASELINE;
        w!(
            o,
            "<tr{}><td class=\"l\"><code>{}</code><span class=\"desc\">{}</span></td>",
            if key { " class=\"key\"" } else { "" },
            Esc(&a.name),
            Esc(&a.description)
        );
        for (col, b) in COLUMNS.iter().zip(&best) {
            let shown = (col.show)((col.get)(&a.summary));
            let is_best = shown != NONE && b.as_deref() == Some(shown.as_str());
            w!(
                o,
                "<td class=\"num{}\">{}</td>",
                if is_best { " best" } else { "" },
                shown
            );
        }
        o.push_str("</tr>\n");
    }
    w!(
        o,
        "</tbody>\n</table>\n<p class=\"note\">n = {} rows. Accuracy, top-5, macro-F1 and balanced \
         accuracy in percent; NLL in nats; Brier summed over classes; ECE / MCE in percent. \
         Best value per column highlighted (highest for the first four, lowest for the rest).</p>\n\
         </section>\n",
        c.n
    );
}

/// A pair as the report shows it: differences are `a - b`.
#[derive(Debug, Clone)]
pub struct PairView {
    pub a: String,
    pub b: String,
    pub accuracy: Interval,
    pub macro_f1: Interval,
    pub mcnemar: McNemar,
    pub verdict: String,
    /// The key pair: [`KEY_APPROACH`] (a) vs [`KEY_BASELINE`] (b).
    pub key: bool,
}

/// Every pair of the comparison, the key pair first and oriented
/// `KEY_APPROACH - KEY_BASELINE` (its verdict re-worded for that order).
pub fn ordered_pairs(c: &Comparison) -> Vec<PairView> {
    let mut key = Vec::new();
    let mut rest = Vec::new();
    for p in &c.pairs {
        let view = PairView {
            a: p.a.clone(),
            b: p.b.clone(),
            accuracy: p.bootstrap.accuracy,
            macro_f1: p.bootstrap.macro_f1,
            mcnemar: p.mcnemar,
            verdict: p.verdict.clone(),
            key: false,
        };
        if p.a == KEY_APPROACH && p.b == KEY_BASELINE {
            key.push(PairView { key: true, ..view });
        } else if p.a == KEY_BASELINE && p.b == KEY_APPROACH {
            let accuracy = p.bootstrap.accuracy.negated();
            let mcnemar = McNemar {
                b: p.mcnemar.c,
                c: p.mcnemar.b,
                p_value: p.mcnemar.p_value,
            };
            key.push(PairView {
                a: p.b.clone(),
                b: p.a.clone(),
                verdict: verdict(&p.b, &p.a, &accuracy, &mcnemar),
                accuracy,
                macro_f1: p.bootstrap.macro_f1.negated(),
                mcnemar,
                key: true,
            });
        } else {
            rest.push(view);
        }
    }
    key.truncate(1);
    key.extend(rest);
    key
}

fn interval_cell(i: &Interval) -> String {
    format!(
        "{} <span class=\"desc\">[{}, {}]</span>",
        signed(i.observed * 100.0, 2),
        signed(i.low * 100.0, 2),
        signed(i.high * 100.0, 2)
    )
}

/// `<section id="pairs">`: paired tests, key pair first.
pub fn pairs_section(o: &mut String, c: &Comparison) {
    o.push_str("<section id=\"pairs\">\n<h2>Pairwise comparisons</h2>\n");
    let pairs = ordered_pairs(c);
    if pairs.is_empty() {
        o.push_str(
            "<p class=\"note missing\">No pairs: the comparison needs at least two approaches.</p>\n</section>\n",
        );
        return;
    }
    if !pairs[0].key {
        w!(
            o,
            "<p class=\"note missing\">The key pair ({KEY_APPROACH} vs {KEY_BASELINE}) is not in this comparison.</p>\n"
        );
    }
    o.push_str(
        "<table class=\"pairs\">\n<thead><tr><th class=\"l\">a</th><th class=\"l\">b</th>\
         <th title=\"a minus b, percentage points, 95% paired bootstrap interval\">Δ accuracy<br>a−b [95% CI]</th>\
         <th title=\"a minus b, percentage points, 95% paired bootstrap interval\">Δ macro-F1<br>a−b [95% CI]</th>\
         <th title=\"rows only a gets right / rows only b gets right\">McNemar<br>b / c</th>\
         <th>McNemar<br>p</th><th class=\"l\">verdict</th></tr></thead>\n<tbody>\n",
    );
    for p in &pairs {
        w!(
            o,
            "<tr{}><td class=\"l\"><code>{}</code></td><td class=\"l\"><code>{}</code></td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} / {}</td>\
             <td class=\"num\">{}</td><td class=\"verdict\">{}</td></tr>\n",
            if p.key { " class=\"key\"" } else { "" },
            Esc(&p.a),
            Esc(&p.b),
            interval_cell(&p.accuracy),
            interval_cell(&p.macro_f1),
            p.mcnemar.b,
            p.mcnemar.c,
            p_value(p.mcnemar.p_value),
            Esc(&p.verdict)
        );
    }
    w!(
        o,
        "</tbody>\n</table>\n<p class=\"note\">Differences are a − b in percentage points with \
         95% percentile intervals of a paired bootstrap ({} resamples, seed {}); McNemar's exact \
         test on the rows where exactly one of the two is right.</p>\n</section>\n",
        c.bootstrap_resamples,
        c.seed
    );
}

fn option_cell(v: Option<f64>) -> String {
    match v.map(|v| fixed(v, 4)) {
        Some(s) if s != NONE => format!("<td class=\"num\">{s}</td>"),
        _ => format!("<td class=\"num none\" title=\"undefined: no positive or no negative row\">{NONE}</td>"),
    }
}

/// `<section id="specialists">`: AUROC / AP / Brier of each binary specialist.
pub fn specialists_section(o: &mut String, c: &Comparison) {
    o.push_str("<section id=\"specialists\">\n<h2>Specialists, one class at a time</h2>\n");
    if c.specialists.is_empty() {
        o.push_str("<p class=\"note missing\">No per-specialist scores in this comparison.</p>\n</section>\n");
        return;
    }
    // Long lists go side by side: up to 3 tables of equal length.
    let len = c.specialists.len();
    let tables = if len <= 16 {
        1
    } else if len <= 80 {
        2
    } else {
        3
    };
    let per = len.div_ceil(tables);
    o.push_str("<div class=\"tables\">\n");
    for (t, chunk) in c.specialists.chunks(per).enumerate() {
        o.push_str(
            "<table class=\"compact specialists\">\n<thead><tr><th class=\"l\">class</th>\
             <th title=\"rows of this class in the split\">support</th><th>AUROC</th>\
             <th title=\"average precision\">AP</th><th title=\"Brier score of the calibrated probability\">Brier</th>\
             </tr></thead>\n<tbody>\n",
        );
        for (j, s) in chunk.iter().enumerate() {
            w!(
                o,
                "<tr><td class=\"l\">{}</td><td class=\"num\">{}</td>{}{}<td class=\"num\">{}</td></tr>\n",
                Esc(&class_name(c, t * per + j)),
                s.positives,
                option_cell(s.auroc),
                option_cell(s.average_precision),
                fixed(s.brier, 4)
            );
        }
        o.push_str("</tbody>\n</table>\n");
    }
    o.push_str(
        "</div>\n<p class=\"note\">Each specialist scores \"is this class\" against all \
         other rows: AUROC and average precision from its raw score, Brier from its calibrated \
         probability. — where the split has no row of the class (or only rows of it).</p>\n</section>\n",
    );
}
