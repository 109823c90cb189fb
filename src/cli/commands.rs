//! Command line, subcommand payloads: one `#[derive(Args)]` struct per
//! subcommand, passed to its `commands::*::run` unchanged (no field is
//! unpacked and repacked on the way). Config shortcuts (`--lanes`, ...)
//! are read from here by [`super::Args::cli_settings`].

use std::path::PathBuf;

use clap::Args;

use crate::config::choice::clap_parser;
use crate::config::{CliSettings, DatasetChoice};
use crate::images::dataset::Split;

#[derive(Debug, Clone, Args)]
pub struct ExtractArgs {
    /// Shortcut for `--set extract.batch_size=N`.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Shortcut for `--set backbone.name=NAME`.
    #[arg(long)]
    pub backbone: Option<String>,
    /// Embed only shard K of N (0-based: 0/4 .. 3/4), the images whose
    /// content hash falls in it, into the shared cache; writes a
    /// done-marker, no split files (see docs/scale.md).
    #[arg(long, value_name = "K/N", conflicts_with = "merge")]
    pub shard: Option<crate::features::shard::ShardSpec>,
    /// Compute nothing: write the split files once every image is cached,
    /// else fail naming the shards that lack images.
    #[arg(long)]
    pub merge: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ClassifyArgs {
    /// Image files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[arg(long, default_value_t = 5)]
    pub top: usize,
}

/// The `[train]` shortcuts shared by `train` and `run`.
#[derive(Debug, Clone, Default, Args)]
pub struct TrainShortcuts {
    /// Shortcut for `--set train.lanes=N`.
    #[arg(long)]
    pub lanes: Option<usize>,
    /// Shortcut for `--set train.fuse=N` (0: split jobs evenly over lanes).
    #[arg(long)]
    pub fuse: Option<usize>,
    /// Shortcut for `--set train.holdout_classes=K`: leave K seeded classes
    /// out of training; `compare` scores their test images as unknown.
    #[arg(long, value_name = "K")]
    pub holdout_classes: Option<usize>,
}

impl TrainShortcuts {
    pub fn apply(&self, c: &mut CliSettings) {
        c.lanes = self.lanes;
        c.fuse = self.fuse;
        c.holdout_classes = self.holdout_classes;
    }
}

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Ensemble name (default: the dataset name); saved to `<out>/<name>/`.
    #[arg(long)]
    pub name: Option<String>,
    /// Directory holding saved ensembles.
    #[arg(long, default_value = "ensembles")]
    pub out: PathBuf,
    #[command(flatten)]
    pub shortcuts: TrainShortcuts,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// An ImageFolder tree (`ROOT/<class>/<image>`, split by the seed, or
    /// `ROOT/{train,val,test}/<class>/<image>`), or a dataset ovr builds
    /// itself: `emoji40`, `fashion-mnist` (a folder of that name wins).
    pub root: String,
    /// Where the HTML report goes.
    #[arg(long, value_name = "FILE", default_value = "report.html")]
    pub report: PathBuf,
    /// Ensemble name (default: the dataset name); saved to `<out>/<name>/`.
    #[arg(long)]
    pub name: Option<String>,
    /// Directory holding saved ensembles.
    #[arg(long, default_value = "ensembles")]
    pub out: PathBuf,
    #[command(flatten)]
    pub shortcuts: TrainShortcuts,
}

impl RunArgs {
    /// The dataset ROOT names.
    pub fn dataset(&self) -> Result<DatasetChoice, crate::Error> {
        DatasetChoice::from_arg(&self.root).ok_or_else(|| {
            crate::Error::Usage(format!(
                "`ovr run {}`: no such folder, and not a dataset ovr builds itself ({})",
                self.root,
                crate::config::cli::NAMED_DATASETS.join(", ")
            ))
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct CurvesArgs {
    /// Fractions of each class's training images (comma-separated, in (0, 1]).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.25,0.5,1")]
    pub fractions: Vec<f64>,
    /// Seeded subsets per fraction (each nested in the next fraction's).
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// Write every number as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with the curves here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Write every finding as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with thumbnails here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The saved ensemble, e.g. ensembles/emoji40.
    #[arg(long)]
    pub ensemble: PathBuf,
    /// train, val or test.
    #[arg(long, default_value = "test", value_parser = clap_parser::<Split>())]
    pub split: Split,
    /// Write all results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write one CSV row per approach.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write a self-contained HTML report with plots.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Paired bootstrap resamples.
    #[arg(long, default_value_t = crate::metrics::RESAMPLES_DEFAULT)]
    pub resamples: usize,
    /// Margin of the TOST equivalence test on accuracy differences, in
    /// percentage points ("equivalent within ±M points").
    #[arg(long, default_value_t = 1.0, value_name = "POINTS")]
    pub equivalence_margin: f64,
    /// Seed of the bootstrap and calibration resampling (default: the
    /// ensemble's seed). `--set seed=` would re-split the dataset and is refused.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Images of classes the ensemble never saw (a folder or list, as
    /// `score` takes): adds the open-set figures ("none of these").
    #[arg(long, value_name = "INPUT")]
    pub unknown: Option<PathBuf>,
    /// A second dataset config (e.g. configs/emoji40-style-shift.toml):
    /// every approach on its test split beside the in-domain one.
    #[arg(long, value_name = "CONFIG")]
    pub against: Option<PathBuf>,
}

impl CompareArgs {
    /// `compare` of a freshly saved ensemble with every other flag at its
    /// default (what `ovr run` prints).
    pub fn of(ensemble: PathBuf, report: Option<PathBuf>) -> CompareArgs {
        CompareArgs {
            ensemble,
            split: Split::Test,
            json: None,
            csv: None,
            report,
            resamples: crate::metrics::RESAMPLES_DEFAULT,
            equivalence_margin: 1.0,
            seed: None,
            unknown: None,
            against: None,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct StudyArgs {
    /// The study file, e.g. configs/classic-question.toml.
    pub file: PathBuf,
    /// Run only these arms (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub arms: Vec<String>,
    /// Also write the Markdown section here.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write every number as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// The saved ensemble, e.g. ensembles/emoji40.
    #[arg(long)]
    pub ensemble: PathBuf,
    /// A folder of class folders (labelled), a flat folder of images, or a
    /// list file with `path` or `path,label` lines.
    pub input: PathBuf,
    /// multiclass-raw, multiclass-temperature, specialists-calibrated
    /// (default: the calibrated argmax), or `specialists-<combiner>`.
    #[arg(long)]
    pub approach: Option<String>,
    /// Write the rows here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// JSON Lines instead of CSV.
    #[arg(long)]
    pub jsonl: bool,
    /// Classes listed per row.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Predict `unknown` when the approach's maximum probability is below
    /// P (`compare` suggests P from the calibration split).
    #[arg(long, value_name = "P")]
    pub abstain: Option<f32>,
}
