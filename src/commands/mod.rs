//! Wiring only: resolves the config and cache, then hands each subcommand to
//! the stage functions that do the work. `compare` and `score` start from the
//! config saved with the ensemble instead of `--config`.

mod audit;
mod bench;
mod bench_decode;
mod classify;
mod compare;
mod curves;
mod extract;
mod fetch;
mod open_set;
mod score;
mod shift;
mod study;
mod train;

use crate::assets::cache::Cache;
use crate::cli::{Args, BenchWhat, Command};
use crate::config::Config;
use crate::Result;

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
    let verbosity = args.verbosity();
    let overrides = args.overrides();
    let cache_dir = args.cache_dir.as_deref();
    let setup = || -> Result<(Config, Cache)> {
        let config = Config::load(args.config.as_deref(), &overrides)?;
        let cache = Cache::from_env(cache_dir.or(config.cache_dir.as_deref()))?;
        Ok((config, cache))
    };
    match &args.command {
        Command::Fetch { what } => {
            let (config, cache) = setup()?;
            fetch::run(what, &config, &cache, verbosity)
        }
        Command::Extract { .. } => {
            let (config, cache) = setup()?;
            extract::run(&config, &cache, verbosity)
        }
        Command::Classify { images, top } => {
            let (config, cache) = setup()?;
            classify::run(images, *top, &config, &cache)
        }
        Command::Bench { what } => {
            let (config, cache) = setup()?;
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
                BenchWhat::Train { lanes, fuse } => {
                    bench::train(&config, &cache, verbosity, lanes, fuse)
                }
            }
        }
        Command::Train { name, out, .. } => {
            let (config, cache) = setup()?;
            train::run(&config, &cache, verbosity, name.as_deref(), out)
        }
        Command::Curves {
            fractions,
            seeds,
            json,
            report,
        } => {
            let (config, cache) = setup()?;
            let a = curves::CurvesArgs {
                fractions,
                seeds: *seeds,
                json: json.as_deref(),
                report: report.as_deref(),
            };
            curves::run(&config, &cache, verbosity, &a)
        }
        Command::Audit { json, report } => {
            let (config, cache) = setup()?;
            let a = audit::AuditArgs {
                json: json.as_deref(),
                report: report.as_deref(),
            };
            audit::run(&config, &cache, verbosity, &a)
        }
        Command::Compare {
            ensemble,
            split,
            json,
            csv,
            report,
            resamples,
            equivalence_margin,
            seed,
            unknown,
            against,
        } => {
            let a = compare::CompareArgs {
                ensemble,
                split,
                json: json.as_deref(),
                csv: csv.as_deref(),
                report: report.as_deref(),
                resamples: *resamples,
                equivalence_margin: *equivalence_margin,
                seed: *seed,
                unknown: unknown.as_deref(),
                against: against.as_deref(),
            };
            compare::run(&a, &overrides, cache_dir, verbosity)
        }
        Command::Study {
            file,
            arms,
            markdown,
            json,
        } => {
            let a = study::StudyArgs {
                file,
                arms,
                markdown: markdown.as_deref(),
                json: json.as_deref(),
            };
            study::run(&a, &overrides, cache_dir, verbosity)
        }
        Command::Score {
            ensemble,
            input,
            approach,
            out,
            jsonl,
            top_k,
            abstain,
        } => {
            let a = score::ScoreArgs {
                ensemble,
                input,
                approach: approach.as_deref(),
                out: out.as_deref(),
                jsonl: *jsonl,
                top_k: *top_k,
                abstain: *abstain,
            };
            score::run(&a, &overrides, cache_dir, verbosity)
        }
    }
}
