//! Wiring only: resolves the config and cache once, then hands each
//! subcommand to the stage functions that do the work.

mod bench;
mod classify;
mod extract;
mod fetch;
mod train;

use crate::assets::cache::Cache;
use crate::cli::{Args, BenchWhat, Command};
use crate::config::Config;
use crate::{Error, Result};

/// Runs one parsed command line.
pub fn run(args: Args) -> Result<()> {
    let verbosity = args.verbosity();
    let config = Config::load(args.config.as_deref(), &args.overrides())?;
    let cache = Cache::from_env(args.cache_dir.as_deref().or(config.cache_dir.as_deref()))?;
    match &args.command {
        Command::Fetch { what } => fetch::run(what, &config, &cache, verbosity),
        Command::Extract { .. } => extract::run(&config, &cache, verbosity),
        Command::Classify { images, top } => classify::run(images, *top, &config, &cache),
        Command::Bench {
            what:
                BenchWhat::Extract {
                    batch_sizes,
                    images,
                    depthwise,
                },
        } => bench::extract(&config, &cache, batch_sizes, *images, depthwise),
        Command::Bench {
            what: BenchWhat::Train { lanes, fuse },
        } => bench::train(&config, &cache, verbosity, lanes, fuse),
        Command::Train { name, out, .. } => {
            train::run(&config, &cache, verbosity, name.as_deref(), out)
        }
        Command::Compare { .. } => Err(Error::NotImplemented {
            command: "compare",
            issue: "issue #4",
        }),
        Command::Score { .. } => Err(Error::NotImplemented {
            command: "score",
            issue: "issue #4",
        }),
    }
}
