//! Ensemble stage, training rounds: the lanes opened on the configured
//! device, every head's jobs run through the scheduler with a progress bar
//! ([`super::plan`] builds them and decodes their fits), each round's
//! candidates scored on validation ([`super::select::losses`]), and
//! extension rounds until no best C sits on an end it may still move past.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel;

use super::manifest::TimelineEntry;
use super::params::TrainParams;
use super::plan::{self, Tried};
use super::select::{self, Val};
use super::train_error::TrainError;
use crate::heads::FitOptions;
use crate::progress::{bar, Verbosity};
use crate::scheduler::lane::{Rows, TrainRows};
use crate::scheduler::{self, Event, Job, JobOutcome, Lane};

/// Every candidate trained, its validation loss, and the scheduler timeline.
pub struct Trained {
    pub tried: Vec<Tried>,
    pub loss: Vec<f64>,
    pub timeline: Vec<TimelineEntry>,
}

/// What every training round shares.
pub struct Rounds<'a> {
    pub lanes: &'a [Lane],
    pub labels: &'a [u32],
    pub cfg: &'a TrainParams,
    pub stop: &'a Arc<AtomicBool>,
    pub verbosity: Verbosity,
}

fn opts(cfg: &TrainParams) -> FitOptions {
    FitOptions {
        max_iter: cfg.max_iter,
        tol: cfg.tol,
        history: 10,
    }
}

impl Rounds<'_> {
    /// Runs one round of jobs with a progress bar; outcomes in job order.
    fn run(&self, jobs: &[Job], k: usize, label: &'static str) -> Vec<Option<JobOutcome>> {
        let total: usize = jobs.iter().map(Job::heads).sum();
        let pb = bar(total as u64, label, self.verbosity);
        let (ev_tx, ev_rx) = channel::unbounded::<Event>();
        let outcomes = std::thread::scope(|s| {
            let pb = &pb;
            s.spawn(move || {
                for ev in ev_rx.iter() {
                    if let Event::Finished { heads, .. } = ev {
                        pb.inc(heads as u64);
                    }
                }
            });
            let o = opts(self.cfg);
            let stop = Arc::clone(self.stop);
            scheduler::run(jobs, self.lanes, self.labels, k, &o, Some(ev_tx), stop)
        });
        pb.finish_and_clear();
        outcomes
    }

    /// Every head over its grid, then extension rounds until no best C sits
    /// on an end it may still move past.
    pub fn train(&self, v: &Val, seed: u64) -> Result<Trained, TrainError> {
        let (k, cfg) = (v.k, self.cfg);
        let t0 = Instant::now();
        let mut jobs = plan::initial_jobs(cfg, k, seed);
        let (mut tried, mut loss, mut timeline) = (Vec::new(), Vec::new(), Vec::new());
        let mut label = "train";
        loop {
            let offset = t0.elapsed().as_secs_f64();
            let outcomes = self.run(&jobs, k, label);
            timeline.extend(timeline_entries(&jobs, &outcomes, offset));
            let round = plan::decode(&jobs, outcomes, k).ok_or(TrainError::Interrupted)??;
            // Only this round's candidates are new; earlier losses stand.
            let new =
                select::losses(&round, v, cfg).map_err(|e| TrainError::Selection(Box::new(e)))?;
            tried.extend(round);
            loss.extend(new);
            let best = select::best(&tried, &loss, k + 1);
            jobs = plan::extension_jobs(cfg, k, &select::extensions(&tried, &best, cfg, k));
            if jobs.is_empty() {
                return Ok(Trained {
                    tried,
                    loss,
                    timeline,
                });
            }
            label = "extend grid";
        }
    }
}

/// When and where each job of a round ran, shifted by the `offset` seconds
/// earlier rounds took.
fn timeline_entries(
    jobs: &[Job],
    outcomes: &[Option<JobOutcome>],
    offset: f64,
) -> Vec<TimelineEntry> {
    jobs.iter()
        .zip(outcomes)
        .filter_map(|(job, o)| {
            let o = o.as_ref()?;
            Some(TimelineEntry {
                job: job.describe(),
                lane: o.lane,
                start_s: plan::shifted(o.start, offset),
                end_s: plan::shifted(o.end, offset),
                heads: job.heads(),
            })
        })
        .collect()
}

/// One lane per device (on CUDA each has its own stream) over the training
/// rows (standardized in memory, or the mapped split streamed in blocks)
/// and the standardized validation rows.
pub fn open_lanes(cfg: &TrainParams, train: &TrainRows, v: &Val) -> Result<Vec<Lane>, TrainError> {
    let rows_va = Rows {
        x: v.x,
        n: v.n,
        d: v.d,
        labels: v.labels,
    };
    let devices = cfg.device.open_lanes(cfg.lanes)?;
    let lanes = devices
        .iter()
        .enumerate()
        .map(|(i, dev)| Lane::with_rows(i, dev, train, &rows_va))
        .collect::<Result<_, _>>()?;
    Ok(lanes)
}
