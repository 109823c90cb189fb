//! Export, table: the interval section of a comparison's stdout table —
//! every approach's ECE, MCE, NLL and Brier with 95 % paired-bootstrap
//! intervals, every pair's differences on the same resamples, and how many
//! classes' F1 differences exclude 0 (the per-class intervals themselves are
//! in the JSON and the HTML report).

use std::fmt::Write as _;

use crate::metrics::compare::Comparison;
use crate::metrics::intervals::FigureIntervals;
use crate::metrics::Interval;
use crate::report::text::{fixed, signed};

fn ci(i: &Interval, d: usize, sign: bool) -> String {
    let f = |v: f64| if sign { signed(v, d) } else { fixed(v, d) };
    format!("{} ({} to {})", f(i.observed), f(i.low), f(i.high))
}

/// Classes whose F1 difference interval lies above 0 / below 0.
pub(crate) fn f1_excluding_zero(d: &FigureIntervals) -> (Vec<usize>, Vec<usize>) {
    let above = (0..d.f1.len()).filter(|&c| d.f1[c].low > 0.0).collect();
    let below = (0..d.f1.len()).filter(|&c| d.f1[c].high < 0.0).collect();
    (above, below)
}

/// The interval tables.
pub(super) fn section(s: &mut String, c: &Comparison) {
    let iv = &c.intervals;
    if iv.approaches.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "intervals: 95% paired bootstrap ({} resamples, seed {}; every approach scored on the same resampled rows), ECE / MCE in % with 15 bins; MCE is biased upward under resampling, so its interval can lie above the point",
        iv.resamples, iv.seed
    );
    let _ = writeln!(s, "| approach | ECE % | MCE % | NLL | Brier |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for a in &iv.approaches {
        let f = &a.figures;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            a.name,
            ci(&f.ece, 2, false),
            ci(&f.mce, 2, false),
            ci(&f.nll, 4, false),
            ci(&f.brier, 4, false)
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "differences a - b on the same resamples (ECE / MCE in points); per-class F1: classes whose 95% interval of the difference lies above / below 0"
    );
    let _ = writeln!(
        s,
        "| a | b | ECE | MCE | NLL | Brier | F1 classes a > b / a < b |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
    for p in &iv.pairs {
        let d = &p.difference;
        let (above, below) = f1_excluding_zero(d);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} / {} |",
            p.a,
            p.b,
            ci(&d.ece, 2, true),
            ci(&d.mce, 2, true),
            ci(&d.nll, 4, true),
            ci(&d.brier, 4, true),
            above.len(),
            below.len()
        );
    }
    let _ = writeln!(s);
}
