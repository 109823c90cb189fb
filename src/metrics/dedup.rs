//! Metrics stage, the comparison without leaked rows: the figures `compare`
//! reports on the test images that have no near-duplicate in train. The
//! audit stage (`audit::leakage`) finds the rows and fills these in; they
//! live here because [`super::compare::Comparison`] carries them.

use serde::Serialize;

use super::{Interval, Summary};

/// An evaluation row with a training near-duplicate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leak {
    pub row: usize,
    pub key: String,
    pub train_key: String,
    pub cosine: f64,
}

/// One approach on the test rows without a training near-duplicate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DedupApproach {
    pub name: String,
    pub summary: Summary,
}

/// A pair's verdict on those rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DedupPair {
    pub a: String,
    pub b: String,
    /// Paired bootstrap of A - B on these rows (fractions).
    pub accuracy: Interval,
    pub macro_f1: Interval,
    pub verdict: String,
}

/// The comparison without the leaked test images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deduplicated {
    pub threshold: f64,
    /// Test images with a near-duplicate in train (removed below).
    pub leaked: Vec<Leak>,
    pub rows_left: usize,
    pub approaches: Vec<DedupApproach>,
    pub pairs: Vec<DedupPair>,
}
