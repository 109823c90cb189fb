//! `ovr score`: new images -> features (through the cache) -> a saved
//! ensemble (`configured::ensemble`) -> one row per image (CSV or JSON Lines,
//! export stage), and the metrics when the images carry labels. Classes the
//! ensemble does not know are reported, not silently dropped.

use super::Global;
use crate::cli::ScoreArgs;
use crate::configured::ensemble::open_ensemble;
use crate::configured::features::input_features;
use crate::ensemble::predict::Approach;
use crate::export::{self, Document, Format, ScoreRow, ScoreRows};
use crate::features::store::FeatureSet;
use crate::images::inputs::ScoreInput;
use crate::metrics::compare::ApproachInput;
use crate::metrics::summarize;
use crate::util::choice::Choice;
use crate::{Error, Result};

/// What an abstaining row predicts.
pub const UNKNOWN: &str = "unknown";

pub fn run(args: &ScoreArgs, g: &Global) -> Result<()> {
    if let Some(p) = args.abstain {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Usage(format!(
                "--abstain {p}: a probability in 0..=1 is needed (the approach's maximum probability)"
            )));
        }
    }
    let (e, config, cache) = open_ensemble(&args.ensemble, g.set, &g.cli, g.cache_dir)?;
    let approach = parse_approach(args.approach.as_deref())?;
    let (input, set) = input_features(&args.input, &config, &cache, g.verbosity)?;
    e.check_compatible(&set.backbone, &set.weights_sha256, set.dim)?;
    let out = e.head_outputs(&set.features, set.len())?;
    let pred = e.approach(&out, approach);
    let classes = &e.manifest.classes;
    let rows = score_rows(args, &input, &set, &pred, classes);
    let format = if args.jsonl {
        Format::Jsonl
    } else {
        Format::Csv
    };
    match &args.out {
        Some(p) => export::to_file(p, format, Document::Scores(&rows))?,
        None => crate::output::print(&export::render(format, Document::Scores(&rows))?)?,
    }
    // Diagnostics and metrics go to stdout only when the rows went to a file.
    let say = |s: String| {
        if args.out.is_some() {
            println!("{s}")
        } else {
            eprintln!("{s}")
        }
    };
    say(format!(
        "scored {} images with {} ({})",
        set.len(),
        approach.name(),
        e.manifest.name
    ));
    if let Some(t) = args.abstain {
        let abstained = rows.rows.iter().filter(|r| r.abstained).count();
        say(format!(
            "abstained on {abstained} of {} images (maximum probability below {t}): predicted `{UNKNOWN}`",
            set.len()
        ));
    }
    if input.labelled {
        labelled_metrics(&input, &set, &pred, classes, &say)?;
    }
    Ok(())
}

/// `--approach` (default: the calibrated argmax).
fn parse_approach(a: Option<&str>) -> Result<Approach> {
    match a {
        None => Ok(Approach::SpecialistsCalibrated),
        Some(a) => Approach::parse(a).ok_or_else(|| {
            Error::Usage(format!(
                "unknown approach `{a}`; allowed: {}",
                Approach::allowed()
            ))
        }),
    }
}

/// One row per image: prediction (or `unknown` below `--abstain`), its
/// probability and the `--top-k` classes (ties by class order).
fn score_rows(
    args: &ScoreArgs,
    input: &ScoreInput,
    set: &FeatureSet,
    pred: &ApproachInput,
    classes: &[String],
) -> ScoreRows {
    let k = classes.len();
    let rows = (0..set.len())
        .map(|i| {
            let row = &pred.probs[i * k..(i + 1) * k];
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            let p = pred.preds[i] as usize;
            let abstained = args.abstain.is_some_and(|t| row[p] < t);
            ScoreRow {
                path: set.keys[i].clone(),
                label: input
                    .labelled
                    .then(|| input.dataset.classes[set.labels[i] as usize].clone()),
                predicted: if abstained { UNKNOWN } else { &classes[p] }.to_string(),
                probability: row[p],
                abstained,
                top: order
                    .iter()
                    .take(args.top_k)
                    .map(|&c| (classes[c].clone(), row[c]))
                    .collect(),
            }
        })
        .collect();
    ScoreRows { rows }
}

/// The metrics over the images of classes the ensemble knows; the others
/// are named and left out.
fn labelled_metrics(
    input: &ScoreInput,
    set: &FeatureSet,
    pred: &ApproachInput,
    classes: &[String],
    say: &dyn Fn(String),
) -> Result<()> {
    let k = classes.len();
    // Dataset label id -> ensemble class id (None: class unknown to the ensemble).
    let to_ens: Vec<Option<u32>> = input
        .dataset
        .classes
        .iter()
        .map(|c| classes.iter().position(|x| x == c).map(|i| i as u32))
        .collect();
    let known: Vec<usize> = (0..set.len())
        .filter(|&i| to_ens[set.labels[i] as usize].is_some())
        .collect();
    let unknown: Vec<&str> = input
        .dataset
        .classes
        .iter()
        .zip(&to_ens)
        .filter(|(_, m)| m.is_none())
        .map(|(c, _)| c.as_str())
        .collect();
    if !unknown.is_empty() {
        say(format!(
            "{} image(s) in classes unknown to the ensemble (scored, left out of the metrics): {}",
            set.len() - known.len(),
            unknown.join(", ")
        ));
    }
    if known.is_empty() {
        return Ok(());
    }
    let labels: Vec<u32> = known
        .iter()
        .filter_map(|&i| to_ens[set.labels[i] as usize])
        .collect();
    let probs: Vec<f32> = known
        .iter()
        .flat_map(|&i| pred.probs[i * k..(i + 1) * k].to_vec())
        .collect();
    let preds: Vec<u32> = known.iter().map(|&i| pred.preds[i]).collect();
    let m = summarize(&labels, &probs, &preds, k)?;
    say(format!(
        "{} labelled images: accuracy {:.2}%, top-5 {:.2}%, macro-F1 {:.4}, NLL {:.4}, Brier {:.4}, ECE {:.2}%",
        labels.len(),
        100.0 * m.accuracy,
        100.0 * m.top5,
        m.macro_f1,
        m.nll,
        m.brier,
        m.ece
    ));
    Ok(())
}
