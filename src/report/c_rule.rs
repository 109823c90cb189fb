//! Report stage, `ovr train`'s C-rule table: from a trained ensemble's
//! manifest (ensemble stage, `select::c_rule`), per linear head the chosen
//! C and the spread of its validation loss over the folds, beside the C
//! with the least fold mean, and how many heads the rule moved.

use std::fmt::Write as _;

use crate::ensemble::Manifest;

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.4}"))
}

/// The table, or nothing when no head has a C to choose.
pub fn text(m: &Manifest) -> String {
    let heads: Vec<_> = m
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
        crate::util::choice::Choice::name(first.rule),
        first.folds
    );
    let _ = writeln!(
        s,
        "| head | chosen C | fold mean ± SE | least-mean C | its mean ± SE |\n|---|---:|---:|---:|---:|"
    );
    let mut moved = 0;
    for (name, r) in &heads {
        moved += usize::from(r.chosen_c < r.best_mean_c);
        let _ = writeln!(
            s,
            "| {name} | {:e} | {} ± {} | {:e} | {} ± {} |{}",
            r.chosen_c,
            opt(r.chosen_fold_mean),
            opt(r.chosen_fold_se),
            r.best_mean_c,
            opt(r.best_fold_mean),
            opt(r.best_fold_se),
            if r.fallback {
                " spread undefined: kept the least loss"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        s,
        "{moved} of {} linear heads chose a smaller C than the least-mean one",
        heads.len()
    );
    s
}
