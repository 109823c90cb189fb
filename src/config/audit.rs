//! Config, the audit stage's settings: the `[audit]` section of a config (raw serde
//! layer and the checked [`AuditConfig`]). The audit reads the cached
//! features (after the features stage) and trains multiclass heads through
//! the scheduler; these fields say how near a duplicate is, how neighbours
//! are searched and how the out-of-fold predictions are made.

use serde::{Deserialize, Serialize};

use crate::config::choice::choice;
use crate::config::{invalid, ConfigError};

/// Default cosine similarity at or above which two images are near-duplicates.
/// Chosen on emoji40's Lite0 features (docs/experiments.md, "Audit"): the
/// nearest-training-neighbour similarity of a test image has its bulk well
/// below it, and pairs above it are, by eye, the same picture.
pub const DUPLICATE_COSINE_DEFAULT: f64 = 0.95;
/// Default folds of the out-of-fold predictions over the training split.
pub const FOLDS_DEFAULT: usize = 5;
/// Default label-error candidates listed per class.
pub const CANDIDATES_DEFAULT: usize = 5;
/// `audit.index = "auto"` searches exactly up to this many reference rows
/// (20,000 x 20,000 x 1,280 is 5 x 10^11 multiply-adds, minutes on two cores).
pub const EXACT_MAX_ROWS_DEFAULT: usize = 20_000;
/// Default cells searched per query by the approximate index.
pub const PROBES_DEFAULT: usize = 8;

/// How the near-duplicate search finds neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighbourIndex {
    /// Exact up to `audit.exact_max_rows` reference rows, approximate above.
    Auto,
    /// Every pair compared (`audit::neighbours::search`).
    Exact,
    /// The inverted-file index (`audit::ivf`).
    Approximate,
}

impl crate::util::choice::Choice for NeighbourIndex {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("auto", NeighbourIndex::Auto),
        ("exact", NeighbourIndex::Exact),
        ("approximate", NeighbourIndex::Approximate),
    ];
    const UNKNOWN: &'static str = "unknown neighbour index";
}
crate::util::choice::choice_serde!(NeighbourIndex);

/// `[audit]` as written.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_cosine: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates_per_class: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_max_rows: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lists: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<i64>,
}

/// `[audit]` checked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditConfig {
    /// Cosine similarity (of the raw features) at or above which a pair is
    /// a near-duplicate, in (0, 1].
    pub duplicate_cosine: f64,
    /// k of the k-fold out-of-fold predictions, at least 2.
    pub folds: usize,
    /// Label-error candidates listed per class.
    pub candidates_per_class: usize,
    /// Exact or approximate neighbour search (default `auto`).
    pub index: NeighbourIndex,
    /// `auto` is exact up to this many reference rows.
    pub exact_max_rows: usize,
    /// Cells of the approximate index (0: the square root of the rows).
    pub lists: usize,
    /// Cells searched per query by the approximate index.
    pub probes: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            duplicate_cosine: DUPLICATE_COSINE_DEFAULT,
            folds: FOLDS_DEFAULT,
            candidates_per_class: CANDIDATES_DEFAULT,
            index: NeighbourIndex::Auto,
            exact_max_rows: EXACT_MAX_ROWS_DEFAULT,
            lists: 0,
            probes: PROBES_DEFAULT,
        }
    }
}

/// Checks `[audit]` and fills in the defaults.
pub fn resolve_audit(raw: Option<RawAudit>) -> Result<AuditConfig, ConfigError> {
    let r = raw.unwrap_or_default();
    let duplicate_cosine = r.duplicate_cosine.unwrap_or(DUPLICATE_COSINE_DEFAULT);
    if !(duplicate_cosine > 0.0 && duplicate_cosine <= 1.0) {
        return Err(invalid(
            "audit.duplicate_cosine",
            duplicate_cosine,
            "out of range",
            "a cosine similarity in (0, 1], e.g. 0.95",
        ));
    }
    let folds = match r.folds {
        None => FOLDS_DEFAULT,
        Some(v) if (2..=100).contains(&v) => v as usize,
        Some(v) => {
            return Err(invalid(
                "audit.folds",
                v,
                "out of range",
                "an integer in 2..=100",
            ))
        }
    };
    let candidates_per_class = match r.candidates_per_class {
        None => CANDIDATES_DEFAULT,
        Some(v) if (1..=10_000).contains(&v) => v as usize,
        Some(v) => {
            return Err(invalid(
                "audit.candidates_per_class",
                v,
                "out of range",
                "an integer in 1..=10000",
            ))
        }
    };
    let index = choice(
        "audit.index",
        r.index.as_deref(),
        NeighbourIndex::Auto,
        None,
    )?;
    let count = |field: &str, v: Option<i64>, default: usize, min: i64| match v {
        None => Ok(default),
        Some(v) if (min..=100_000_000).contains(&v) => Ok(v as usize),
        Some(v) => Err(invalid(
            field,
            v,
            "out of range",
            &format!("an integer in {min}..=100000000"),
        )),
    };
    Ok(AuditConfig {
        duplicate_cosine,
        folds,
        candidates_per_class,
        index,
        exact_max_rows: count(
            "audit.exact_max_rows",
            r.exact_max_rows,
            EXACT_MAX_ROWS_DEFAULT,
            1,
        )?,
        lists: count("audit.lists", r.lists, 0, 0)?,
        probes: count("audit.probes", r.probes, PROBES_DEFAULT, 1)?,
    })
}
