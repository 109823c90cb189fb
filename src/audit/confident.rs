//! Audit stage, the numeric core of the label-error ranking: out-of-fold
//! probabilities `[N, K]` and the given labels -> per row the label-quality
//! scores and the confident-learning flag, as cleanlab 2.9 computes them
//! (checked against it: `tests/reference/make_label_error_fixtures.py`,
//! `tests/fixtures/audit/label_errors.json`).
//!
//! * Self-confidence: p_given (`cleanlab.rank.get_label_quality_scores(
//!   method="self_confidence")`).
//! * Normalized margin: (p_given - max other p + 1) / 2, in [0, 1]
//!   (`method="normalized_margin"`); [`Scores::margin`] keeps the raw
//!   difference, in [-1, 1].
//! * Flag: `cleanlab.filter.find_label_issues(filter_by=
//!   "confident_learning")`. Class j's threshold t_j is the mean p_j over
//!   the rows labelled j (2, never reached, for a class without rows;
//!   at least 2e-6). A class is confident for a row when p_j >= t_j - 1e-6.
//!   The row's guessed true class is the confident class when exactly one
//!   is, the overall argmax when several are; a row with none is not
//!   counted. It is flagged when the guess differs from the given label,
//!   unless its argmax (with 1e-6 added to p_given) is the given label.
//!
//! Northcutt et al. (2021, eq. 1) write the guess as the most probable of
//! the confident classes, without the tolerance or the final argmax check;
//! ovr used that rule before and now follows cleanlab's, the one users
//! compare against. The two part on rows where exactly one class is
//! confident but another is the argmax, where several are confident but the
//! argmax is not among them, and within 1e-6 of a threshold (the fixture
//! holds such rows and the test checks that they are there).

/// cleanlab's `FLOATING_POINT_COMPARISON`.
const TOLERANCE: f64 = 1e-6;
/// cleanlab's `CONFIDENT_THRESHOLDS_LOWER_BOUND`.
const THRESHOLD_FLOOR: f64 = 2.0 * TOLERANCE;
/// The threshold of a class no row is labelled with (never reached).
const ABSENT_CLASS: f64 = 2.0;

/// Every row's scores and flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// Per class, t_j.
    pub thresholds: Vec<f64>,
    /// Per row, p_given.
    pub self_confidence: Vec<f64>,
    /// Per row, p_given minus the largest other probability.
    pub margin: Vec<f64>,
    /// Per row, flagged by the confident joint.
    pub flagged: Vec<bool>,
}

impl Scores {
    /// cleanlab's normalized margin of row `i`, (margin + 1) / 2.
    pub fn normalized_margin(&self, i: usize) -> f64 {
        (self.margin[i] + 1.0) / 2.0
    }

    /// Rows by ascending self-confidence, ties by row.
    pub fn ranking(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.self_confidence.len()).collect();
        let sc = &self.self_confidence;
        order.sort_by(|&a, &b| sc[a].total_cmp(&sc[b]).then(a.cmp(&b)));
        order
    }
}

/// t_j for every class.
pub fn thresholds(labels: &[u32], probs: &[f32], k: usize) -> Vec<f64> {
    let mut sum = vec![0.0f64; k];
    let mut count = vec![0usize; k];
    for (i, &y) in labels.iter().enumerate() {
        let y = y as usize;
        sum[y] += f64::from(probs[i * k + y]);
        count[y] += 1;
    }
    (0..k)
        .map(|j| match count[j] {
            0 => ABSENT_CLASS,
            c => (sum[j] / c as f64).max(THRESHOLD_FLOOR),
        })
        .collect()
}

/// First index of the largest value (of the nudged f64 row; the plain
/// rows go through [`crate::metrics::argmax`]).
fn first_max(v: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (j, x) in v.enumerate() {
        if x > best.1 {
            best = (j, x);
        }
    }
    best.0
}

/// The confident-learning flag of one row (module header).
fn flag(p: &[f32], y: usize, t: &[f64]) -> bool {
    let confident: Vec<usize> = (0..p.len())
        .filter(|&j| f64::from(p[j]) >= t[j] - TOLERANCE)
        .collect();
    let guess = match confident.as_slice() {
        [] => return false,
        [only] => *only,
        _ => crate::metrics::argmax(p),
    };
    let nudged = p
        .iter()
        .enumerate()
        .map(|(j, &v)| f64::from(v) + if j == y { TOLERANCE } else { 0.0 });
    guess != y && first_max(nudged) != y
}

/// Scores and flags of every row (`probs` row-major `[labels.len(), k]`).
pub fn score(labels: &[u32], probs: &[f32], k: usize) -> Scores {
    let t = thresholds(labels, probs, k);
    let n = labels.len();
    let (mut sc, mut margin, mut flagged) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (i, &y) in labels.iter().enumerate() {
        let (p, y) = (&probs[i * k..(i + 1) * k], y as usize);
        let other = p
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != y)
            .map(|(_, &v)| f64::from(v))
            .fold(f64::NEG_INFINITY, f64::max);
        sc.push(f64::from(p[y]));
        margin.push(f64::from(p[y]) - other.max(0.0));
        flagged.push(flag(p, y, &t));
    }
    Scores {
        thresholds: t,
        self_confidence: sc,
        margin,
        flagged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Fixture {
        classes: usize,
        labels: Vec<u32>,
        probs: Vec<Vec<f64>>,
        flipped: Vec<usize>,
        thresholds: Vec<f64>,
        self_confidence: Vec<f64>,
        normalized_margin: Vec<f64>,
        ranking: Vec<usize>,
        flags: Vec<bool>,
        ranked_issues: Vec<usize>,
        paper_flags: Vec<bool>,
    }

    fn fixture() -> Fixture {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/audit/label_errors.json"
        );
        let text = std::fs::read_to_string(path).expect("read the label-error fixture");
        serde_json::from_str(&text).expect("parse the label-error fixture")
    }

    fn ours(f: &Fixture) -> Scores {
        // The fixture's probabilities are float32 values written as f64.
        let probs: Vec<f32> = f.probs.iter().flatten().map(|&v| v as f32).collect();
        assert!(f.probs.iter().flatten().all(|&v| f64::from(v as f32) == v));
        score(&f.labels, &probs, f.classes)
    }

    fn close(a: &[f64], b: &[f64], tol: f64, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol, "{what}[{i}]: {x} vs cleanlab {y}");
        }
    }

    #[test]
    fn scores_ranking_and_flags_equal_cleanlabs() {
        let f = fixture();
        let s = ours(&f);
        close(&s.thresholds, &f.thresholds, 1e-12, "thresholds");
        close(
            &s.self_confidence,
            &f.self_confidence,
            1e-9,
            "self-confidence",
        );
        let nm: Vec<f64> = (0..f.labels.len())
            .map(|i| s.normalized_margin(i))
            .collect();
        close(&nm, &f.normalized_margin, 1e-9, "normalized margin");
        assert_eq!(s.ranking(), f.ranking);
        assert_eq!(s.flagged, f.flags);
        // cleanlab's issues ranked by self-confidence: our flagged rows in our order.
        let ranked: Vec<usize> = s.ranking().into_iter().filter(|&i| s.flagged[i]).collect();
        assert_eq!(ranked, f.ranked_issues);
    }

    #[test]
    fn the_fixture_holds_rows_where_cleanlab_and_the_paper_part() {
        // Otherwise the equality above would not tell the two rules apart.
        let f = fixture();
        let differ = f
            .flags
            .iter()
            .zip(&f.paper_flags)
            .filter(|(a, b)| a != b)
            .count();
        assert!(differ >= 3, "{differ}");
        let s = ours(&f);
        assert_ne!(s.flagged, f.paper_flags);
        // The planted flips mostly rank in the top fifth.
        let top: Vec<usize> = s.ranking().into_iter().take(f.labels.len() / 5).collect();
        let hit = f.flipped.iter().filter(|i| top.contains(i)).count();
        assert!(hit * 2 > f.flipped.len(), "{hit} of {}", f.flipped.len());
    }

    #[test]
    fn a_class_without_rows_is_never_confident() {
        // Class 2 has no rows: its threshold is 2, so the first row (argmax
        // 2, nothing else confident) is not flagged.
        let probs = [0.1, 0.2, 0.7, 0.9, 0.05, 0.05, 0.05, 0.9, 0.05];
        let s = score(&[0, 0, 1], &probs, 3);
        assert_eq!(s.thresholds[2], ABSENT_CLASS);
        assert_eq!(s.flagged, vec![false, false, false]);
        assert!((s.margin[0] - (0.1f32 as f64 - 0.7f32 as f64)).abs() < 1e-12);
    }
}
