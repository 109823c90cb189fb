//! `ovr`: one-vs-rest specialists vs a multiclass head on frozen pretrained features.
//!
//! Data flow (one folder per stage):
//! `assets` (fetch + verify + convert) -> `images` (datasets, decode, resize)
//! -> `features` (frozen backbones, cached embeddings) -> heads -> calibration
//! -> ensemble -> metrics/report. Each stage owns its checked parameter
//! types; `config` resolves TOML + CLI overrides into them (config imports
//! the stages, never the reverse) and `configured` runs the steps that need
//! a whole config; `cli` and `commands` only wire stages together.
//! `curves` reruns the heads stage on nested subsets of train (learning curves);
//! `scheduler` runs head-training jobs on lanes (CPU threads or CUDA streams);
//! `util` holds the few helpers several stages share (enum spellings, hex, f32 codec, names).

pub mod assets;
pub mod audit;
pub mod calibration;
pub mod cli;
pub mod commands;
pub mod config;
pub mod configured;
pub mod curves;
pub mod device;
pub mod ensemble;
pub mod error;
pub mod export;
pub mod features;
pub mod heads;
pub mod images;
pub mod metrics;
pub mod output;
pub mod progress;
pub mod report;
pub mod scheduler;
pub mod study;
pub mod util;

pub use error::{Error, Result};
