//! `ovr run ROOT`: the first-time user's whole job in one command, wiring
//! the stages the separate commands run: weights fetched if missing and
//! features extracted (cached; `extract`), heads trained, calibrated and
//! saved (`train`), every approach compared on test with the HTML report
//! written (`compare`). ROOT sets `dataset.kind`/`dataset.root` over
//! `--config` and `--set`, which can still set any other field.

use super::Global;
use crate::cli::{CompareArgs, RunArgs};
use crate::ensemble::ensemble_dir;
use crate::progress::Verbosity;
use crate::Result;

pub fn run(args: &RunArgs, g: &Global) -> Result<()> {
    let (config, cache) = g.setup()?;
    let say = |step: &str| {
        if g.verbosity > Verbosity::Quiet {
            eprintln!("== ovr run: {step}");
        }
    };
    say(&format!(
        "extract {} with {}",
        config.dataset.name,
        config.backbone.names().join(" + ")
    ));
    super::extract::run(
        &config,
        &cache,
        g.verbosity,
        crate::features::shard::Scope::All,
    )?;
    let name = args.name.as_deref().unwrap_or(&config.dataset.name);
    say(&format!("train ensemble {name}"));
    super::train::run(&config, &cache, g.verbosity, Some(name), &args.out)?;
    let dir = ensemble_dir(&args.out, name)?;
    say(&format!("compare {} on test", dir.display()));
    println!();
    super::compare::run(&CompareArgs::of(dir, Some(args.report.clone())), g)
}
