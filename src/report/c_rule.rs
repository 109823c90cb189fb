//! Report stage, the C rule (`train.c_rule`): from a trained ensemble's
//! head records (ensemble stage, `select::c_rule`), per linear head the
//! chosen C and the spread of its validation criterion over the folds,
//! beside the C with the least fold mean, and how many heads took a smaller
//! C than that one. As text for `ovr train` ([`text`]) and as the report's
//! `c-rule` section ([`section`], from a `Comparison`).

use std::fmt::Write as _;

use super::text::Esc;
use crate::ensemble::manifest::CRuleRecord;
use crate::ensemble::Manifest;
use crate::metrics::compare::Comparison;
use crate::util::choice::Choice;

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.4}"))
}

/// `mean ± SE`, or `-` where undefined.
fn spread(mean: Option<f64>, se: Option<f64>) -> String {
    format!("{} ± {}", opt(mean), opt(se))
}

/// Heads whose chosen C is below the least-mean one.
fn moved(heads: &[(&str, &CRuleRecord)]) -> usize {
    heads
        .iter()
        .filter(|(_, r)| r.chosen_c < r.best_mean_c)
        .count()
}

/// The table `ovr train` prints, or nothing when no head has a C to choose.
pub fn text(m: &Manifest) -> String {
    let heads: Vec<(&str, &CRuleRecord)> = m
        .specialists
        .iter()
        .chain(std::iter::once(&m.multiclass))
        .filter_map(|h| h.c_rule.as_ref().map(|r| (h.name.as_str(), r)))
        .collect();
    let Some((_, first)) = heads.first() else {
        return String::new();
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nC rule `{}` over {} stratified validation folds (fold mean ± SE of the selection criterion):",
        first.rule.name(),
        first.folds
    );
    let _ = writeln!(
        s,
        "| head | chosen C | fold mean ± SE | least-mean C | its mean ± SE |\n|---|---:|---:|---:|---:|"
    );
    for (name, r) in &heads {
        let _ = writeln!(
            s,
            "| {name} | {:e} | {} | {:e} | {} |{}",
            r.chosen_c,
            spread(r.chosen_fold_mean, r.chosen_fold_se),
            r.best_mean_c,
            spread(r.best_fold_mean, r.best_fold_se),
            if r.fallback {
                " spread undefined: kept the least loss"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        s,
        "{} of {} linear heads chose a smaller C than the least-mean one",
        moved(&heads),
        heads.len()
    );
    s
}

/// `<section id="c-rule">`: the same per head, from the comparison.
pub fn section(o: &mut String, c: &Comparison) {
    o.push_str(
        "<section id=\"c-rule\">\n<h2>C per head and its spread over validation folds</h2>\n",
    );
    let heads: Vec<(&str, &CRuleRecord)> = c
        .c_rule
        .iter()
        .map(|h| (h.head.as_str(), &h.record))
        .collect();
    let Some((_, first)) = heads.first() else {
        o.push_str(
            "<p class=\"note\">No C rule recorded: the ensemble has no linear head, or was \
             trained before <code>train.c_rule</code> existed.</p>\n</section>\n",
        );
        return;
    };
    o.push_str(
        "<table class=\"compact c-rule\">\n<thead><tr><th class=\"l\">head</th><th>chosen C</th>\
         <th title=\"mean ± standard error over the validation folds\">fold mean ± SE</th>\
         <th title=\"the candidate with the least fold mean\">least-mean C</th><th>its mean ± SE</th></tr></thead>\n<tbody>\n",
    );
    for (name, r) in &heads {
        let smaller = r.chosen_c < r.best_mean_c;
        w!(
            o,
            "<tr{}><td class=\"l\">{}</td><td class=\"num\">{:e}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{:e}</td><td class=\"num\">{}</td></tr>\n",
            if smaller { " class=\"key\"" } else { "" },
            Esc(name),
            r.chosen_c,
            spread(r.chosen_fold_mean, r.chosen_fold_se),
            r.best_mean_c,
            spread(r.best_fold_mean, r.best_fold_se)
        );
    }
    w!(
        o,
        "</tbody>\n</table>\n<p class=\"note\">Rule <code>{}</code> over {} validation folds \
         stratified by class (seeded per head); the criterion is the head's selection loss, \
         computed per fold on the fixed candidates. {} of {} linear heads took a smaller C \
         (stronger L2) than the least-mean one (highlighted).</p>\n</section>\n",
        first.rule.name(),
        first.folds,
        moved(&heads),
        heads.len()
    );
}
