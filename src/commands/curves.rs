//! `ovr curves`: wiring of the learning curves. Cached train/val/test
//! features (extracting what is missing, as `train` does) -> `curves`
//! (nested subsets, the training pipeline in memory, test scores, slopes)
//! -> `report::curves` (ranked table on stdout, `--json`, `--report`).
//! Nothing is saved but the files asked for.

use crate::assets::cache::Cache;
use crate::cli::CurvesArgs;
use crate::config::Config;
use crate::configured::features::all_splits;
use crate::curves::{learning_curves, CurveSpec, CurvesError};
use crate::export::{self, Document, Format};
use crate::progress::{bar, Verbosity};
use crate::{Error, Result};

pub fn run(config: &Config, cache: &Cache, verbosity: Verbosity, args: &CurvesArgs) -> Result<()> {
    let spec = CurveSpec::new(args.fractions.to_vec(), args.seeds).map_err(|e| match e {
        CurvesError::Spec(m) => Error::Usage(m),
        other => Error::Curves(other),
    })?;
    let [train, val, test] = all_splits(config, cache, verbosity)?;
    let stop = super::stop_flag("nothing will be written");
    let total = spec.fractions.len() * spec.seeds;
    if verbosity > Verbosity::Quiet {
        eprintln!(
            "learning curves: {} fraction(s) x {} seed(s) of {} training images ({} classes), \
             each run trains every head on {} lane(s); scored on {} test images",
            spec.fractions.len(),
            spec.seeds,
            train.len(),
            train.classes.len(),
            config.train.lanes,
            test.len()
        );
    }
    let pb = bar(total as u64, "curves", verbosity);
    let mut on_run = |r: &crate::curves::RunRecord| {
        pb.inc(1);
        if verbosity >= Verbosity::Verbose {
            let acc: Vec<String> = r
                .accuracy
                .iter()
                .map(|(a, v)| format!("{a} {:.2}%", 100.0 * v))
                .collect();
            pb.suspend(|| {
                eprintln!(
                    "  {:.0}% seed {}: {} images, {}{}",
                    100.0 * r.fraction,
                    r.seed,
                    r.train_images,
                    acc.join(", "),
                    if r.reused {
                        " (same subset as an earlier run: reused)".to_string()
                    } else {
                        format!(", trained in {:.1} s", r.seconds)
                    }
                )
            });
        }
    };
    let curves = learning_curves([&train, &val, &test], config, &spec, &stop, &mut on_run);
    pb.finish_and_clear();
    let curves = curves?;
    let doc = Document::Curves(&curves);
    if let Some(p) = &args.json {
        export::to_file(p, Format::Json, doc)?;
    }
    if let Some(p) = &args.report {
        export::to_file(p, Format::Html, doc)?;
    }
    crate::output::print(&export::render(Format::Table, doc)?)?;
    Ok(())
}
