//! `ovr fetch weights NAME` / `ovr fetch dataset NAME`: assets stage wiring.

use crate::assets::cache::Cache;
use crate::assets::weights::fetch_weights;
use crate::cli::FetchWhat;
use crate::config::Config;
use crate::images::{emoji40, idx};
use crate::progress::Verbosity;
use crate::{Error, Result};

pub fn run(what: &FetchWhat, _config: &Config, cache: &Cache, verbosity: Verbosity) -> Result<()> {
    match what {
        FetchWhat::Weights { name } => {
            if verbosity > Verbosity::Quiet {
                eprintln!(
                    "fetching {name} weights into {}",
                    cache.weights_dir().display()
                );
            }
            let w = fetch_weights(cache, name)?;
            if w.converted_now {
                println!(
                    "{name}: converted {} tensors ({} parameters) to {}",
                    w.tensors,
                    w.parameters,
                    w.path.display()
                );
            } else {
                println!("{name}: already cached at {}", w.path.display());
            }
            Ok(())
        }
        FetchWhat::Dataset { name } => {
            match name.as_str() {
                "emoji40" => {
                    let s = emoji40::build_emoji40(cache, &emoji40::Emoji40Options::default())
                        .map_err(crate::images::OpenDatasetError::from)?;
                    let [tr, va, te] = s.images_per_split;
                    let state = if s.already_present {
                        "already built"
                    } else {
                        "built"
                    };
                    println!("emoji40 {state} at {}: {} classes, {tr} train / {va} val / {te} test images", s.root.display(), s.classes.len());
                    if verbosity == Verbosity::Verbose {
                        for (c, n) in &s.classes {
                            println!("  {c:<24} {n} emojis");
                        }
                    }
                    if !s.missing_images.is_empty() {
                        eprintln!(
                            "warning: {} images listed in emoji.json are missing from the packages",
                            s.missing_images.len()
                        );
                    }
                    Ok(())
                }
                "fashion-mnist" => {
                    let f = idx::locate_fashion_mnist(cache)
                        .map_err(crate::images::OpenDatasetError::from)?;
                    let dir = f
                        .train_images
                        .parent()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    println!("fashion-mnist IDX files at {dir}");
                    Ok(())
                }
                other => Err(Error::Usage(format!(
                    "unknown dataset `{other}`; allowed: emoji40, fashion-mnist"
                ))),
            }
        }
    }
}
