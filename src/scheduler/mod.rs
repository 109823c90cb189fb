//! Between features and heads: the scheduler that trains many heads at once.
//!
//! Training jobs (groups of fused binary specialists, multiclass grid points)
//! go through one crossbeam queue to **lanes**. A lane is one execution
//! context: on the CPU a worker thread (candle's matmuls inside use the
//! shared rayon pool), with `--features cuda` one CUDA stream of its own
//! (`crate::device::DeviceSpec::open_lanes`). Each lane owns its copy of the
//! standardized training matrix on its device, or (`train.block_rows`)
//! streams it block by block from the mapped split file (`lane.rs`). A panic inside a job becomes
//! an error for that job's heads, not a crash of the run; a stop flag
//! (Ctrl-C) makes lanes finish the job in hand and take no more; progress
//! events go through one channel to one renderer.

pub mod lane;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel;

use crate::heads::{ClassWeighting, FitOptions, HeadError, HeadParams, LinearFit, MlpSpec};
pub use lane::Lane;

/// One one-vs-rest head followed along a path of C values.
#[derive(Debug, Clone)]
pub struct BinaryColumn {
    pub class: u32,
    pub weighting: ClassWeighting,
    /// The C of each step, in the order they are solved.
    pub cs: Vec<f64>,
    /// The first step's starting point (`None`: zero).
    pub start: Option<LinearFit>,
}

/// One unit of work for a lane.
#[derive(Debug, Clone)]
pub enum Job {
    /// One-vs-rest heads fused in one `[D, columns]` matrix, along their C
    /// paths: step t trains every column at its `cs[t]`, each column
    /// warm-started from its own step t - 1 when `warm` (else from zero).
    /// Every column has the same number of steps. Fits come back step-major.
    BinaryPath {
        columns: Vec<BinaryColumn>,
        warm: bool,
    },
    /// The multiclass softmax head along a path of C values (same rules).
    SoftmaxPath {
        cs: Vec<f64>,
        weighting: ClassWeighting,
        start: Option<LinearFit>,
        warm: bool,
    },
    /// One binary MLP specialist (early stopping on the validation rows).
    MlpBinary {
        class: u32,
        spec: MlpSpec,
        seed: u64,
        weighting: ClassWeighting,
    },
    /// The multiclass MLP head.
    MlpSoftmax {
        spec: MlpSpec,
        seed: u64,
        weighting: ClassWeighting,
    },
}

/// Why a job failed: its heads' error, or a panic inside the lane.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error("panicked: {message}")]
    Panicked { message: String },
    #[error("{job} trains on the whole training matrix in memory, and this lane streams its rows (train.block_rows): unset train.block_rows or use linear heads")]
    NeedsMatrix { job: String },
}

impl Job {
    /// Heads this job trains (for progress): one per column and step.
    pub fn heads(&self) -> usize {
        match self {
            Job::BinaryPath { columns, .. } => {
                columns.len() * columns.first().map_or(0, |c| c.cs.len())
            }
            Job::SoftmaxPath { cs, .. } => cs.len(),
            Job::MlpBinary { .. } | Job::MlpSoftmax { .. } => 1,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Job::BinaryPath { columns, .. } if columns.len() == 1 => format!(
                "specialist {} ({} C)",
                columns[0].class,
                columns[0].cs.len()
            ),
            Job::BinaryPath { columns, .. } => format!(
                "{} fused specialists x {} C",
                columns.len(),
                columns.first().map_or(0, |c| c.cs.len())
            ),
            Job::SoftmaxPath { cs, .. } => format!("multiclass head ({} C)", cs.len()),
            Job::MlpBinary { class, spec, .. } => {
                format!("MLP specialist {class} {:?}", spec.hidden)
            }
            Job::MlpSoftmax { spec, .. } => format!("multiclass MLP head {:?}", spec.hidden),
        }
    }
}

/// What happened to one job.
#[derive(Debug)]
pub struct JobOutcome {
    pub job_index: usize,
    pub lane: usize,
    /// Start and end, relative to the start of the run.
    pub start: Duration,
    pub end: Duration,
    /// One fit per head of the job, or why the job failed.
    pub result: Result<Vec<HeadParams>, JobError>,
}

/// A progress event, sent to the one renderer.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        job_index: usize,
        lane: usize,
    },
    Finished {
        job_index: usize,
        lane: usize,
        heads: usize,
        ok: bool,
    },
}

/// Groups columns into fused path jobs of at most `fuse` columns
/// (`fuse == 0`: one group). Grouping keeps the given order.
pub fn fuse_columns(columns: Vec<BinaryColumn>, fuse: usize, warm: bool) -> Vec<Job> {
    let size = if fuse == 0 {
        columns.len().max(1)
    } else {
        fuse
    };
    columns
        .chunks(size)
        .map(|c| Job::BinaryPath {
            columns: c.to_vec(),
            warm,
        })
        .collect()
}

/// Something that can run a job: a [`Lane`] (a CPU worker or a CUDA stream).
pub trait Runner: Sync {
    fn run(
        &self,
        job: &Job,
        labels: &[u32],
        k: usize,
        opts: &FitOptions,
    ) -> Result<Vec<HeadParams>, JobError>;
}

/// Runs every job on the lanes; outcomes come back in job order.
/// `events` receives progress; `stop` is checked before each job.
pub fn run<R: Runner>(
    jobs: &[Job],
    lanes: &[R],
    labels: &[u32],
    k: usize,
    opts: &FitOptions,
    events: Option<channel::Sender<Event>>,
    stop: Arc<AtomicBool>,
) -> Vec<Option<JobOutcome>> {
    let t0 = Instant::now();
    let (job_tx, job_rx) = channel::unbounded::<usize>();
    for i in 0..jobs.len() {
        // Unbounded and the receiver is alive: send cannot fail.
        let _ = job_tx.send(i);
    }
    drop(job_tx);
    let (out_tx, out_rx) = channel::unbounded::<JobOutcome>();
    std::thread::scope(|s| {
        for (li, lane) in lanes.iter().enumerate() {
            let (job_rx, out_tx, events, stop) = (
                job_rx.clone(),
                out_tx.clone(),
                events.clone(),
                Arc::clone(&stop),
            );
            s.spawn(move || {
                for ji in job_rx.iter() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Some(ev) = &events {
                        let _ = ev.send(Event::Started {
                            job_index: ji,
                            lane: li,
                        });
                    }
                    let start = t0.elapsed();
                    let job = &jobs[ji];
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        lane.run(job, labels, k, opts)
                    }))
                    .unwrap_or_else(|p| {
                        Err(JobError::Panicked {
                            message: panic_text(&p),
                        })
                    });
                    let end = t0.elapsed();
                    if let Some(ev) = &events {
                        let _ = ev.send(Event::Finished {
                            job_index: ji,
                            lane: li,
                            heads: job.heads(),
                            ok: result.is_ok(),
                        });
                    }
                    let _ = out_tx.send(JobOutcome {
                        job_index: ji,
                        lane: li,
                        start,
                        end,
                        result,
                    });
                }
            });
        }
    });
    drop(out_tx);
    let mut out: Vec<Option<JobOutcome>> = (0..jobs.len()).map(|_| None).collect();
    for o in out_rx.iter() {
        let i = o.job_index;
        out[i] = Some(o);
    }
    out
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky;

    impl Runner for Flaky {
        fn run(
            &self,
            job: &Job,
            _: &[u32],
            _: usize,
            _: &FitOptions,
        ) -> Result<Vec<HeadParams>, JobError> {
            match job {
                Job::SoftmaxPath { cs, .. } if cs[0] < 0.5 => panic!("boom at C={}", cs[0]),
                _ => Ok(vec![]),
            }
        }
    }

    fn opts() -> FitOptions {
        FitOptions {
            max_iter: 1,
            tol: 1e-3,
            history: 1,
        }
    }

    fn softmax(c: f64) -> Job {
        Job::SoftmaxPath {
            cs: vec![c],
            weighting: ClassWeighting::None,
            start: None,
            warm: true,
        }
    }

    #[test]
    fn a_panicking_job_becomes_an_error_for_that_job_only() {
        let jobs = vec![softmax(1.0), softmax(0.1), softmax(2.0)];
        let out = run(
            &jobs,
            &[Flaky, Flaky],
            &[],
            2,
            &opts(),
            None,
            Arc::new(AtomicBool::new(false)),
        );
        let r: Vec<_> = out.into_iter().map(|o| o.unwrap().result).collect();
        assert!(r[0].is_ok() && r[2].is_ok());
        let e = r[1].as_ref().unwrap_err();
        assert!(matches!(e, JobError::Panicked { message } if message == "boom at C=0.1"));
    }

    #[test]
    fn stop_flag_leaves_jobs_undone() {
        let jobs = vec![softmax(1.0); 4];
        let out = run(
            &jobs,
            &[Flaky],
            &[],
            2,
            &opts(),
            None,
            Arc::new(AtomicBool::new(true)),
        );
        assert!(out.iter().all(Option::is_none));
    }

    #[test]
    fn fusing_groups_in_order() {
        let cols: Vec<BinaryColumn> = (0..5)
            .map(|class| BinaryColumn {
                class,
                weighting: ClassWeighting::Balanced,
                cs: vec![0.1, 1.0],
                start: None,
            })
            .collect();
        let jobs = fuse_columns(cols.clone(), 2, true);
        let sizes: Vec<usize> = jobs.iter().map(Job::heads).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        match &jobs[2] {
            Job::BinaryPath { columns, .. } => assert_eq!(columns[0].class, 4),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(fuse_columns(cols, 0, true).len(), 1);
    }
}
