//! `ovr audit`: wiring of the data audit. Cached train/val/test features
//! (extracting what is missing, as `train` does) -> `audit` (near-duplicates
//! and leakage, out-of-fold label-error ranking) -> the summary on stdout,
//! `--json`, and `--report` (thumbnails read from the dataset's images).
//! Nothing else is written.

use std::collections::HashMap;
use std::path::Path;

use crate::assets::cache::{write_atomic, Cache};
use crate::config::Config;
use crate::configured::features::all_splits;
use crate::progress::Verbosity;
use crate::{Error, Result};

pub struct AuditArgs<'a> {
    pub json: Option<&'a Path>,
    pub report: Option<&'a Path>,
}

pub fn run(config: &Config, cache: &Cache, verbosity: Verbosity, args: &AuditArgs) -> Result<()> {
    let [train, val, test] = all_splits(config, cache, verbosity)?;
    let stop = super::stop_flag("nothing will be written");
    if verbosity > Verbosity::Quiet {
        eprintln!(
            "audit: exact cosine neighbours of {} images; {} out-of-fold fits of the multiclass head",
            train.len() + val.len() + test.len(),
            config.audit.folds
        );
    }
    let a = crate::audit::audit([&train, &val, &test], config, &stop)?;
    if let Some(p) = args.json {
        let json = serde_json::to_string_pretty(&a).map_err(|source| Error::Json {
            what: "the audit",
            source,
        })?;
        write_atomic(p, json.as_bytes())?;
    }
    if let Some(p) = args.report {
        let ds = crate::images::open_dataset(&config.dataset, cache, config.seed)?;
        let sources: HashMap<&str, &crate::images::dataset::ImageSource> = ds
            .items
            .iter()
            .map(|it| (it.key.as_str(), &it.source))
            .collect();
        let thumb = |key: &str| {
            sources
                .get(key)
                .and_then(|s| crate::audit::thumbs::thumbnail(s))
        };
        write_atomic(p, crate::audit::html::render(&a, &thumb).as_bytes())?;
        if verbosity > Verbosity::Quiet {
            eprintln!("audit report written to {}", p.display());
        }
    }
    crate::output::print(&crate::audit::summary(&a))?;
    Ok(())
}
