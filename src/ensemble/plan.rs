//! Ensemble stage, the training plan: which scheduler jobs train which
//! heads, and how their fits come back. Heads are numbered `0..k` for the
//! specialists and `k` for the multiclass head. Every job describes its own
//! slots ([`slots`]), so building the jobs and decoding their results share
//! one rule instead of an index formula.
//!
//! Round 0 trains every head over its whole grid: each specialist once per
//! class weighting as a column of a fused C path (solved from the smallest C
//! up, each C warm-started from its neighbour), the multiclass head as one
//! C path. Later rounds ([`extension_jobs`]) extend the grid by one factor
//! of 10 for the heads whose best C sits on an end, warm-started from it.

use std::time::Duration;

use super::manifest::head_seed;
use super::params::{TrainParams, WeightChoice};
use crate::heads::HeadKind;
use crate::heads::{ClassWeighting, HeadParams};
use crate::scheduler::{fuse_columns, BinaryColumn, Job, JobError, JobOutcome};

/// What one returned fit is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    pub head: usize,
    pub weighting: ClassWeighting,
    /// The inverse L2 strength; `None` for MLP heads.
    pub c: Option<f64>,
}

/// One trained candidate of one head.
#[derive(Debug, Clone)]
pub struct Tried {
    pub slot: Slot,
    pub fit: HeadParams,
    /// Seconds of the job that trained it (shared by its fused heads).
    pub seconds: f64,
}

/// The slots of `job`'s fits, in the order the lane returns them.
pub fn slots(job: &Job, k: usize) -> Vec<Slot> {
    match job {
        Job::BinaryPath { columns, .. } => {
            let steps = columns.first().map_or(0, |c| c.cs.len());
            (0..steps)
                .flat_map(|t| {
                    columns.iter().map(move |col| Slot {
                        head: col.class as usize,
                        weighting: col.weighting,
                        c: Some(col.cs[t]),
                    })
                })
                .collect()
        }
        Job::SoftmaxPath { cs, weighting, .. } => cs
            .iter()
            .map(|&c| Slot {
                head: k,
                weighting: *weighting,
                c: Some(c),
            })
            .collect(),
        Job::MlpBinary {
            class, weighting, ..
        } => vec![Slot {
            head: *class as usize,
            weighting: *weighting,
            c: None,
        }],
        Job::MlpSoftmax { weighting, .. } => vec![Slot {
            head: k,
            weighting: *weighting,
            c: None,
        }],
    }
}

/// Columns per fused job: `fuse`, or (0) an even split over the lanes.
fn per_job(cfg: &TrainParams, columns: usize) -> usize {
    match cfg.fuse {
        0 => columns.div_ceil(cfg.lanes.max(1)).max(1),
        f => f,
    }
}

fn ascending(grid: &[f64]) -> Vec<f64> {
    let mut g = grid.to_vec();
    g.sort_by(f64::total_cmp);
    g.dedup();
    g
}

/// The weighting MLP specialists train with (`auto` trains linear heads
/// both ways; an MLP per class and weighting would double the slowest part).
fn mlp_weighting(w: WeightChoice) -> ClassWeighting {
    match w {
        WeightChoice::None => ClassWeighting::None,
        WeightChoice::Auto | WeightChoice::Balanced => ClassWeighting::Balanced,
    }
}

/// Round 0: every head over its whole grid; the multiclass job first (it is
/// the longest), then the specialists.
pub fn initial_jobs(cfg: &TrainParams, k: usize, seed: u64) -> Vec<Job> {
    let mut jobs = match cfg.multiclass_head {
        HeadKind::Linear => vec![Job::SoftmaxPath {
            cs: ascending(&cfg.multiclass_c_grid),
            weighting: cfg.multiclass_class_weight,
            start: None,
            warm: cfg.warm_start,
        }],
        HeadKind::Mlp => vec![Job::MlpSoftmax {
            spec: cfg.mlp.clone(),
            seed: head_seed(seed, k as u64),
            weighting: cfg.multiclass_class_weight,
        }],
    };
    match cfg.specialist_head {
        HeadKind::Linear => {
            let cs = ascending(&cfg.c_grid);
            let columns: Vec<BinaryColumn> = (0..k as u32)
                .flat_map(|class| {
                    let cs = cs.clone();
                    cfg.class_weight
                        .candidates()
                        .into_iter()
                        .map(move |weighting| BinaryColumn {
                            class,
                            weighting,
                            cs: cs.clone(),
                            start: None,
                        })
                })
                .collect();
            let size = per_job(cfg, columns.len());
            jobs.extend(fuse_columns(columns, size, cfg.warm_start));
        }
        HeadKind::Mlp => jobs.extend((0..k as u32).map(|class| Job::MlpBinary {
            class,
            spec: cfg.mlp.clone(),
            seed: head_seed(seed, class as u64),
            weighting: mlp_weighting(cfg.class_weight),
        })),
    }
    jobs
}

/// One step beyond a grid end for a head, warm-started from its edge fit.
#[derive(Debug, Clone)]
pub struct Extension {
    pub head: usize,
    pub weighting: ClassWeighting,
    pub c: f64,
    pub start: crate::heads::LinearFit,
}

/// The jobs of one extension round.
pub fn extension_jobs(cfg: &TrainParams, k: usize, ext: &[Extension]) -> Vec<Job> {
    let mut jobs: Vec<Job> = ext
        .iter()
        .filter(|e| e.head == k)
        .map(|e| Job::SoftmaxPath {
            cs: vec![e.c],
            weighting: e.weighting,
            start: Some(e.start.clone()),
            warm: cfg.warm_start,
        })
        .collect();
    let columns: Vec<BinaryColumn> = ext
        .iter()
        .filter(|e| e.head < k)
        .map(|e| BinaryColumn {
            class: e.head as u32,
            weighting: e.weighting,
            cs: vec![e.c],
            start: cfg.warm_start.then(|| e.start.clone()),
        })
        .collect();
    if !columns.is_empty() {
        let size = per_job(cfg, columns.len());
        jobs.extend(fuse_columns(columns, size, cfg.warm_start));
    }
    jobs
}

/// A job that failed, named by its description.
#[derive(Debug, thiserror::Error)]
#[error("head `{job}` failed")]
pub struct FailedJob {
    pub job: String,
    #[source]
    pub source: JobError,
}

/// Decodes outcomes (in job order) into candidates; `None` when a job did
/// not run (interrupted).
pub fn decode(
    jobs: &[Job],
    outcomes: Vec<Option<JobOutcome>>,
    k: usize,
) -> Option<Result<Vec<Tried>, FailedJob>> {
    let mut out = Vec::new();
    for (job, o) in jobs.iter().zip(outcomes) {
        let o = o?;
        let secs = (o.end - o.start).as_secs_f64();
        let fits = match o.result {
            Ok(f) => f,
            Err(source) => {
                return Some(Err(FailedJob {
                    job: job.describe(),
                    source,
                }))
            }
        };
        out.extend(
            slots(job, k)
                .into_iter()
                .zip(fits)
                .map(|(slot, fit)| Tried {
                    slot,
                    fit,
                    seconds: secs,
                }),
        );
    }
    Some(Ok(out))
}

/// Shifts a round's job times by the time earlier rounds took.
pub fn shifted(d: Duration, offset: f64) -> f64 {
    d.as_secs_f64() + offset
}
