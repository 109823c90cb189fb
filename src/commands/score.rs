//! `ovr score`: new images -> features (through the cache) -> a saved
//! ensemble -> one row per image (CSV or JSON Lines), and the metrics when
//! the images carry labels. Classes the ensemble does not know are
//! reported, not silently dropped.

use std::fmt::Write as _;
use std::path::Path;

use super::compare::open_ensemble;
use super::extract::input_features;
use crate::assets::cache::write_atomic;
use crate::ensemble::predict::Approach;
use crate::metrics::summarize;
use crate::progress::Verbosity;
use crate::{Error, Result};

pub struct ScoreArgs<'a> {
    pub ensemble: &'a Path,
    pub input: &'a Path,
    pub approach: Option<&'a str>,
    pub out: Option<&'a Path>,
    pub jsonl: bool,
    pub top_k: usize,
    /// Known-ness threshold: below it the prediction is `unknown`.
    pub abstain: Option<f32>,
}

/// What an abstaining row predicts.
pub const UNKNOWN: &str = "unknown";

pub fn run(
    args: &ScoreArgs,
    overrides: &[String],
    cache_dir: Option<&Path>,
    verbosity: Verbosity,
) -> Result<()> {
    if let Some(p) = args.abstain {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Usage(format!(
                "--abstain {p}: a probability in 0..=1 is needed (the approach's maximum probability)"
            )));
        }
    }
    let (e, config, cache) = open_ensemble(args.ensemble, overrides, cache_dir)?;
    let approach = match args.approach {
        None => Approach::SpecialistsCalibrated,
        Some(a) => Approach::parse(a).ok_or_else(|| {
            Error::Usage(format!(
                "unknown approach `{a}`; allowed: {}",
                Approach::names().join(", ")
            ))
        })?,
    };
    let (input, set) = input_features(args.input, &config, &cache, verbosity)?;
    e.check_compatible(&set.backbone, &set.weights_sha256, set.dim)?;
    let out = e.head_outputs(&set.features, set.len())?;
    let pred = e.approach(&out, approach);
    let classes = &e.manifest.classes;
    let k = classes.len();
    // Dataset label id -> ensemble class id (None: class unknown to the ensemble).
    let to_ens: Vec<Option<u32>> = input
        .dataset
        .classes
        .iter()
        .map(|c| classes.iter().position(|x| x == c).map(|i| i as u32))
        .collect();
    let mut text = String::new();
    if !args.jsonl {
        text.push_str("path,label,predicted,probability,top_k\n");
    }
    for i in 0..set.len() {
        let row = &pred.probs[i * k..(i + 1) * k];
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        let p = pred.preds[i] as usize;
        let abstained = args.abstain.is_some_and(|t| row[p] < t);
        let predicted = if abstained {
            UNKNOWN
        } else {
            classes[p].as_str()
        };
        let label = if input.labelled {
            input.dataset.classes[set.labels[i] as usize].as_str()
        } else {
            ""
        };
        let top: Vec<(&str, f32)> = order
            .iter()
            .take(args.top_k)
            .map(|&c| (classes[c].as_str(), row[c]))
            .collect();
        if args.jsonl {
            let v = serde_json::json!({
                "path": set.keys[i],
                "label": if input.labelled { Some(label) } else { None },
                "predicted": predicted,
                "probability": row[p],
                "abstained": abstained,
                "top": top.iter().map(|(c, q)| serde_json::json!({"class": c, "probability": q})).collect::<Vec<_>>(),
            });
            let _ = writeln!(text, "{v}");
        } else {
            let tops: Vec<String> = top.iter().map(|(c, q)| format!("{c}:{q:.6}")).collect();
            let _ = writeln!(
                text,
                "{},{},{},{:.6},{}",
                csv_field(&set.keys[i]),
                csv_field(label),
                predicted,
                row[p],
                tops.join(";")
            );
        }
    }
    match args.out {
        Some(p) => write_atomic(p, text.as_bytes())?,
        None => crate::output::print(&text)?,
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
        let kept = (0..set.len())
            .filter(|&i| pred.probs[i * k + pred.preds[i] as usize] >= t)
            .count();
        say(format!(
            "abstained on {} of {} images (maximum probability below {t}): predicted `{UNKNOWN}`",
            set.len() - kept,
            set.len()
        ));
    }
    if input.labelled {
        let known: Vec<usize> = (0..set.len())
            .filter(|&i| to_ens[set.labels[i] as usize].is_some())
            .collect();
        let unknown: Vec<&String> = input
            .dataset
            .classes
            .iter()
            .zip(&to_ens)
            .filter(|(_, m)| m.is_none())
            .map(|(c, _)| c)
            .collect();
        if !unknown.is_empty() {
            say(format!(
                "{} image(s) in classes unknown to the ensemble (scored, left out of the metrics): {}",
                set.len() - known.len(),
                unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        if !known.is_empty() {
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
        }
    }
    Ok(())
}

/// Quotes a CSV field when it holds a comma, quote or newline.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
