//! `ovr study FILE`: wiring only. The file is checked into arms
//! (`config::study`), each arm runs through the study stage
//! (`study::run_arm`: cached features, training or fine-tuning, test
//! outputs), the study stage scores them against the reference arm, and the
//! export stage writes the Markdown (stdout, `--markdown`) and `--json`.

use super::Global;
use crate::cli::StudyArgs;
use crate::config::study::{parse_study_cli, Study};
use crate::export::{self, Document, Format};
use crate::progress::Verbosity;
use crate::study::{run_arm, score, Memo};
use crate::util::choice::Choice;
use crate::{Error, Result};

pub fn run(args: &StudyArgs, g: &Global) -> Result<()> {
    let text =
        std::fs::read_to_string(&args.file).map_err(|source| crate::config::ConfigError::Read {
            path: args.file.to_path_buf(),
            source,
        })?;
    let origin = args.file.display().to_string();
    let mut study = parse_study_cli(&text, &origin, g.set, &g.cli)?;
    select_arms(&mut study, &args.arms)?;
    let cache = g.cache(&study.base)?;
    let stop = super::stop_flag("then the study stops");
    let verbosity = g.verbosity;
    let mut memo = Memo::default();
    let mut runs = Vec::new();
    for arm in &study.arms {
        if verbosity > Verbosity::Quiet {
            eprintln!("arm {}: {} ({})", arm.name, arm.title, arm.head.name());
        }
        let r = run_arm(arm, &cache, verbosity, &stop, &mut memo)?;
        if verbosity > Verbosity::Quiet {
            eprintln!(
                "arm {}: test accuracy {:.2}%, trained in {:.1} s",
                arm.name,
                100.0 * r.accuracy(),
                r.train_seconds
            );
        }
        runs.push(r);
    }
    let mut command = format!("ovr study {}", args.file.display());
    if !args.arms.is_empty() {
        command.push_str(&format!(" --arms {}", args.arms.join(",")));
    }
    let outcome = score(&study, &runs, command)?;
    let doc = Document::Study(&outcome);
    crate::output::print(&export::render(Format::Markdown, doc)?)?;
    if let Some(p) = &args.markdown {
        export::to_file(p, Format::Markdown, doc)?;
    }
    if let Some(p) = &args.json {
        export::to_file(p, Format::Json, doc)?;
    }
    Ok(())
}

/// Keeps the arms named in `only` (all when empty), in file order.
fn select_arms(study: &mut Study, only: &[String]) -> Result<()> {
    if only.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = study.arms.iter().map(|a| a.name.clone()).collect();
    if let Some(bad) = only.iter().find(|o| !names.contains(o)) {
        return Err(Error::Usage(format!(
            "--arms: no arm `{bad}`; the study has {}",
            names.join(", ")
        )));
    }
    let reference = names[study.reference].clone();
    study.arms.retain(|a| only.contains(&a.name));
    study.reference = study
        .arms
        .iter()
        .position(|a| a.name == reference)
        .unwrap_or(0);
    Ok(())
}
