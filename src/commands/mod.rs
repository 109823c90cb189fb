//! Wiring only: resolves the config and cache, then hands each subcommand
//! (its clap payload as parsed) to the stage functions that do the work.
//! `compare` and `score` start from the config saved with the ensemble
//! instead of `--config` (`configured::ensemble`); `run` chains extract, train and
//! compare.

mod audit;
mod bench;
mod bench_decode;
mod bench_stream;
mod classify;
mod compare;
mod curves;
pub(crate) mod extract;
mod fetch;
mod open_set;
mod run;
mod score;
mod shift;
mod study;
mod train;

use std::path::Path;

use crate::assets::cache::Cache;
use crate::cli::{Args, BenchWhat, Command};
use crate::config::{CliSettings, Config};
use crate::progress::Verbosity;
use crate::Result;

/// The top-level flags every command starts from.
pub(crate) struct Global<'a> {
    /// `--config FILE`.
    pub config: Option<&'a Path>,
    /// Every `--set`, in command-line order.
    pub set: &'a [String],
    /// The typed shortcut flags.
    pub cli: CliSettings,
    /// `--cache-dir`.
    pub cache_dir: Option<&'a Path>,
    pub verbosity: Verbosity,
}

impl Global<'_> {
    /// The resolved config and its cache.
    pub fn setup(&self) -> Result<(Config, Cache)> {
        let config = Config::load_cli(self.config, self.set, &self.cli)?;
        let cache = self.cache(&config)?;
        Ok((config, cache))
    }

    /// `--cache-dir`, else the config's `cache_dir`, else `$OVR_CACHE`.
    pub fn cache(&self, config: &Config) -> Result<Cache> {
        Ok(Cache::from_env(
            self.cache_dir.or(config.cache_dir.as_deref()),
        )?)
    }
}

/// A flag set by the first Ctrl-C (long jobs finish the work in hand and
/// stop, saying `what` happens); a second Ctrl-C exits at once.
pub(crate) fn stop_flag(what: &'static str) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: finishing the jobs in hand, {what} (Ctrl-C again to quit now)");
    });
    stop
}

/// Runs one parsed command line.
pub fn run(args: Args) -> Result<()> {
    let g = Global {
        config: args.config.as_deref(),
        set: &args.set,
        cli: args.cli_settings()?,
        cache_dir: args.cache_dir.as_deref(),
        verbosity: args.verbosity(),
    };
    let v = g.verbosity;
    match &args.command {
        Command::Fetch { what } => {
            let (config, cache) = g.setup()?;
            fetch::run(what, &config, &cache, v)
        }
        Command::Run(a) => run::run(a, &g),
        Command::Extract(a) => {
            let (config, cache) = g.setup()?;
            let scope = match (a.shard, a.merge) {
                (Some(s), _) => crate::features::shard::Scope::Shard(s),
                (None, true) => crate::features::shard::Scope::Merge,
                (None, false) => crate::features::shard::Scope::All,
            };
            extract::run(&config, &cache, v, scope)
        }
        Command::Classify(a) => {
            let (config, cache) = g.setup()?;
            classify::run(&a.images, a.top, &config, &cache)
        }
        Command::Bench { what } => bench(what, &g),
        Command::Train(a) => {
            let (config, cache) = g.setup()?;
            train::run(&config, &cache, v, a.name.as_deref(), &a.out)
        }
        Command::Curves(a) => {
            let (config, cache) = g.setup()?;
            curves::run(&config, &cache, v, a)
        }
        Command::Audit(a) => {
            let (config, cache) = g.setup()?;
            let a = audit::AuditArgs {
                json: a.json.as_deref(),
                report: a.report.as_deref(),
            };
            audit::run(&config, &cache, v, &a)
        }
        Command::Compare(a) => compare::run(a, &g),
        Command::Study(a) => study::run(a, &g),
        Command::Score(a) => score::run(a, &g),
    }
}

/// `ovr bench ...` (its own flags, the run config's settings).
fn bench(what: &BenchWhat, g: &Global) -> Result<()> {
    let (config, cache) = g.setup()?;
    match what {
        BenchWhat::Extract {
            batch_sizes,
            images,
            depthwise,
        } => bench::extract(&config, &cache, batch_sizes, *images, depthwise),
        BenchWhat::Decode {
            dir,
            threads,
            repeat,
        } => bench_decode::decode(&config, dir, *threads, *repeat),
        BenchWhat::Train {
            lanes,
            fuse,
            stream,
        } => bench::train(&config, &cache, g.verbosity, lanes, fuse, stream),
    }
}
