//! Audit stage, the choice of near-duplicate search: the threshold and
//! `audit.index` -> the exact search of [`super::neighbours`] or the
//! approximate index of [`super::ivf`] (`auto`: approximate above
//! `audit.exact_max_rows` reference rows), and which one ran, for the
//! report.

use serde::Serialize;

use super::ivf::{search_ivf, IvfParams};
use super::neighbours::{search, Found, Unit};
use crate::config::audit::{AuditConfig, NeighbourIndex};

/// How near-duplicates are searched: the threshold and the index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearSearch {
    /// Cosine at or above which a pair is a near-duplicate.
    pub threshold: f64,
    pub index: NeighbourIndex,
    /// `auto` searches exactly up to this many reference rows.
    pub exact_max_rows: usize,
    pub ivf: IvfParams,
}

/// Which search ran, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchUsed {
    /// "exact" or "approximate".
    pub index: &'static str,
    /// Cells and probes of the approximate index (0 when exact).
    pub lists: usize,
    pub probes: usize,
}

impl NearSearch {
    /// The `[audit]` settings, the index seeded from the run seed.
    pub fn new(a: &AuditConfig, seed: u64) -> NearSearch {
        NearSearch {
            threshold: a.duplicate_cosine,
            index: a.index,
            exact_max_rows: a.exact_max_rows,
            ivf: IvfParams {
                lists: a.lists,
                probes: a.probes,
                seed,
            },
        }
    }

    /// Exact search, at the default settings (tests, small sets).
    pub fn exact(threshold: f64) -> NearSearch {
        NearSearch {
            threshold,
            index: NeighbourIndex::Exact,
            ..NearSearch::new(&AuditConfig::default(), 0)
        }
    }

    fn approximate_for(&self, reference_rows: usize) -> bool {
        match self.index {
            NeighbourIndex::Exact => false,
            NeighbourIndex::Approximate => true,
            NeighbourIndex::Auto => reference_rows > self.exact_max_rows,
        }
    }

    /// The search this runs against `reference_rows` rows.
    pub fn used(&self, reference_rows: usize) -> SearchUsed {
        match self.approximate_for(reference_rows) {
            true => SearchUsed {
                index: "approximate",
                lists: self.ivf.lists_for(reference_rows),
                probes: self.ivf.probes,
            },
            false => SearchUsed {
                index: "exact",
                lists: 0,
                probes: 0,
            },
        }
    }

    /// [`search`] or [`search_ivf`], as configured.
    pub fn run(&self, query: &Unit, reference: &Unit, same: bool) -> Vec<Found> {
        let t = self.threshold as f32;
        match self.approximate_for(reference.n) {
            true => search_ivf(query, reference, same, t, &self.ivf),
            false => search(query, reference, same, t),
        }
    }
}
