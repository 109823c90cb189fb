//! Export, table: the audit figures of a comparison's stdout table — the
//! TOST and flip table of every pair, and the figures again without the
//! test images that have a near-duplicate in train (`audit::leakage`).

use std::fmt::Write as _;

use crate::metrics::dedup::Deduplicated;
use crate::metrics::equivalence::PairEquivalence;

/// Per pair, the flips and the TOST sentence.
pub(super) fn equivalence(s: &mut String, pairs: &[PairEquivalence]) {
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "equivalence and flips (TOST, paired t on per-image correctness; A right & B wrong / A wrong & B right):"
    );
    for p in pairs {
        let f = &p.flips;
        let _ = writeln!(
            s,
            "  {} vs {}: {} / {} flips (both right {}, both wrong {}); {}",
            p.a, p.b, f.a_only, f.b_only, f.both_right, f.both_wrong, p.sentence
        );
    }
    let _ = writeln!(s);
}

/// Every approach and pair on the rows without a training near-duplicate.
pub(super) fn deduplicated(s: &mut String, d: &Deduplicated, split: &str) {
    let _ = writeln!(
        s,
        "without the {} {split} image(s) that have a near-duplicate in train (cosine >= {}, `ovr audit` lists them): {} rows",
        d.leaked.len(),
        d.threshold,
        d.rows_left
    );
    let _ = writeln!(
        s,
        "| approach | accuracy | macro-F1 | NLL | ECE % |\n|---|---:|---:|---:|---:|"
    );
    for a in &d.approaches {
        let m = &a.summary;
        let _ = writeln!(
            s,
            "| {} | {:.2}% | {:.4} | {:.4} | {:.2} |",
            a.name,
            100.0 * m.accuracy,
            m.macro_f1,
            m.nll,
            m.ece
        );
    }
    for p in &d.pairs {
        let f = &p.macro_f1;
        let _ = writeln!(
            s,
            "  {} vs {}: {}; macro-F1 {:+.1} points (95% CI {:+.1} to {:+.1})",
            p.a,
            p.b,
            p.verdict,
            100.0 * f.observed,
            100.0 * f.low,
            100.0 * f.high
        );
    }
    let _ = writeln!(s);
}
