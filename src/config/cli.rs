//! Config, command-line layer: the typed values of the shortcut flags
//! (`--device`, `extract --batch-size`, `train --lanes`, `run ROOT`, ...),
//! applied to the raw config after the file and every `--set`, so they win
//! over both. They are checked by the same resolver as every other field
//! (no `"k=v"` text in between) and saved with the config they produced.

use std::path::PathBuf;

use super::raw::{RawConfig, RawDataset};

/// Which dataset `ovr run ROOT` reads.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetChoice {
    /// A dataset `ovr` builds or finds itself (`emoji40`, `fashion-mnist`).
    Named(String),
    /// An ImageFolder tree (`root/<class>/<image>` or with split folders).
    Folder(PathBuf),
}

/// The dataset names `ovr run NAME` accepts besides a folder.
pub const NAMED_DATASETS: [&str; 2] = ["emoji40", "fashion-mnist"];

impl DatasetChoice {
    /// An existing directory is a folder; otherwise a known dataset name;
    /// anything else is `None`.
    pub fn from_arg(arg: &str) -> Option<DatasetChoice> {
        let path = super::expand_home(arg);
        if path.is_dir() {
            Some(DatasetChoice::Folder(path))
        } else if NAMED_DATASETS.contains(&arg) {
            Some(DatasetChoice::Named(arg.to_string()))
        } else {
            None
        }
    }
}

/// Every shortcut flag of one command line (`None`: not given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CliSettings {
    /// `--device` (top-level `device`).
    pub device: Option<String>,
    /// `extract --batch-size` (`extract.batch_size`).
    pub batch_size: Option<usize>,
    /// `extract --backbone` (`backbone.name`).
    pub backbone: Option<String>,
    /// `train --lanes` (`train.lanes`).
    pub lanes: Option<usize>,
    /// `train --fuse` (`train.fuse`).
    pub fuse: Option<usize>,
    /// `train --holdout-classes` (`train.holdout_classes`).
    pub holdout_classes: Option<usize>,
    /// `run ROOT` (`dataset.kind` and `dataset.root`).
    pub dataset: Option<DatasetChoice>,
}

/// A count as the raw layer's integer (saturating: the resolver rejects it).
fn int(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl RawConfig {
    /// Applies the shortcut flags over the file and the `--set` overrides.
    pub fn apply_cli(&mut self, cli: &CliSettings) {
        if let Some(d) = &cli.device {
            self.device = Some(d.clone());
        }
        if let Some(b) = cli.batch_size {
            self.extract.get_or_insert_with(Default::default).batch_size = Some(int(b));
        }
        if let Some(b) = &cli.backbone {
            self.backbone.get_or_insert_with(Default::default).name =
                Some(toml::Value::String(b.clone()));
        }
        let train = [cli.lanes, cli.fuse, cli.holdout_classes];
        if train.iter().any(Option::is_some) {
            let t = self.train.get_or_insert_with(Default::default);
            let [lanes, fuse, holdout] = train.map(|v| v.map(int));
            t.lanes = lanes.or(t.lanes);
            t.fuse = fuse.or(t.fuse);
            t.holdout_classes = holdout.or(t.holdout_classes);
        }
        if let Some(choice) = &cli.dataset {
            apply_dataset(self.dataset.get_or_insert_with(Default::default), choice);
        }
    }
}

fn apply_dataset(d: &mut RawDataset, choice: &DatasetChoice) {
    match choice {
        DatasetChoice::Named(name) => {
            d.kind = Some(name.clone());
            d.root = None;
        }
        DatasetChoice::Folder(root) => {
            d.kind = Some("image-folder".into());
            d.root = Some(root.display().to_string());
        }
    }
}
