//! `ovr study FILE`: wiring for a list of arms (features x head x settings).
//! Each arm goes through the ordinary stages — cached features (extracted
//! once per backbone and reused across arms and runs), `train_ensemble` or
//! the fine-tune of the top blocks from cached activations, the ensemble's
//! calibrated outputs on test — then the metrics stage scores every arm and
//! compares it with the reference arm; the report stage prints the table.
//! Arms whose resolved configs are equal share one training run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};

use super::extract::{ensure_weights, extract_options, features_for};
use crate::assets::cache::{write_atomic, Cache};
use crate::calibration::{argmax_rows, Temperature};
use crate::config::study::{parse_study, Arm, ArmHead, Study};
use crate::config::train::HeadKind;
use crate::ensemble::build::{train_ensemble, TrainError};
use crate::ensemble::manifest::{head_seed, HeadRecord};
use crate::ensemble::predict::Approach;
use crate::ensemble::{Ensemble, Manifest};
use crate::features::backbone::Backbone;
use crate::features::efficientnet_lite::top::CutBackbone;
use crate::features::extract::{extract, ExtractError};
use crate::features::registry::load_lite;
use crate::features::store::FeatureSet;
use crate::heads::finetune::{finetune, finetune_logits, FinetuneSpec};
use crate::images::dataset::Split;
use crate::images::open_dataset;
use crate::metrics::{mcnemar_exact, paired_bootstrap, summarize, verdict};
use crate::progress::Verbosity;
use crate::report::study::{markdown, ArmResult, StudyOutcome, VsReference};
use crate::{Error, Result};

pub struct StudyArgs<'a> {
    pub file: &'a Path,
    /// Run only these arms (empty: all).
    pub arms: &'a [String],
    pub markdown: Option<&'a Path>,
    pub json: Option<&'a Path>,
}

/// One arm's test predictions and provenance.
struct ArmRun {
    labels: Vec<u32>,
    keys: Vec<String>,
    probs: Vec<f32>,
    preds: Vec<u32>,
    features: String,
    dim: usize,
    detail: String,
    train_seconds: f64,
    shared_with: Option<String>,
    /// Train and validation rows.
    sizes: (usize, usize),
}

/// Features of train/val/test, read once per feature config per run.
type FeatureMemo = HashMap<String, Arc<[FeatureSet; 3]>>;
/// Trained ensembles by resolved config: (ensemble, seconds, first arm).
type TrainMemo = HashMap<String, (Arc<Ensemble>, f64, String)>;

pub fn run(
    args: &StudyArgs,
    overrides: &[String],
    cache_dir: Option<&Path>,
    verbosity: Verbosity,
) -> Result<()> {
    let text =
        std::fs::read_to_string(args.file).map_err(|source| crate::config::ConfigError::Read {
            path: args.file.to_path_buf(),
            source,
        })?;
    let mut study = parse_study(&text, &args.file.display().to_string(), overrides)?;
    select_arms(&mut study, args.arms)?;
    let cache = Cache::from_env(cache_dir.or(study.base.cache_dir.as_deref()))?;
    let stop = super::stop_flag("then the study stops");
    let (mut fmemo, mut tmemo) = (FeatureMemo::new(), TrainMemo::new());
    let mut runs: Vec<ArmRun> = Vec::new();
    for arm in &study.arms {
        if verbosity > Verbosity::Quiet {
            eprintln!("arm {}: {} ({})", arm.name, arm.title, arm.head.as_str());
        }
        let r = match (arm.head, &arm.finetune) {
            (ArmHead::Finetune, Some(spec)) => finetune_arm(arm, spec, &cache, verbosity)?,
            _ => ensemble_arm(arm, &cache, verbosity, &stop, &mut fmemo, &mut tmemo)?,
        };
        if verbosity > Verbosity::Quiet {
            let acc = r
                .preds
                .iter()
                .zip(&r.labels)
                .filter(|(p, y)| p == y)
                .count() as f64
                / r.labels.len().max(1) as f64;
            eprintln!(
                "arm {}: test accuracy {:.2}%, trained in {:.1} s",
                arm.name,
                100.0 * acc,
                r.train_seconds
            );
        }
        runs.push(r);
    }
    let outcome = score(&study, &runs, args)?;
    let md = markdown(&outcome);
    print!("{md}");
    if let Some(p) = args.markdown {
        write_atomic(p, md.as_bytes())?;
    }
    if let Some(p) = args.json {
        let json = serde_json::to_string_pretty(&outcome).map_err(|source| Error::Json {
            what: "the study outcome",
            source,
        })?;
        write_atomic(p, json.as_bytes())?;
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

/// The metrics of every arm and its paired comparison with the reference.
fn score(study: &Study, runs: &[ArmRun], args: &StudyArgs) -> Result<StudyOutcome> {
    let reference = &runs[study.reference];
    let classes = reference.probs.len() / reference.labels.len().max(1);
    let mut arms = Vec::new();
    for (arm, r) in study.arms.iter().zip(runs) {
        if r.keys != reference.keys {
            return Err(Error::Usage(format!(
                "arm `{}` was scored on other test images than the reference arm (an image unreadable for one backbone?)",
                arm.name
            )));
        }
        let summary = summarize(&r.labels, &r.probs, &r.preds, classes)
            .map_err(|e| Error::Usage(format!("arm `{}`: {e}", arm.name)))?;
        let vs_reference = if std::ptr::eq(r, reference) {
            None
        } else {
            let bad = Error::Metric;
            let correct =
                |p: &[u32]| -> Vec<bool> { p.iter().zip(&r.labels).map(|(a, y)| a == y).collect() };
            let m = mcnemar_exact(&correct(&r.preds), &correct(&reference.preds)).map_err(bad)?;
            let b = paired_bootstrap(
                &r.labels,
                &r.preds,
                &reference.preds,
                classes,
                study.resamples,
                study.base.seed,
            )
            .map_err(bad)?;
            let ref_name = &study.arms[study.reference].name;
            Some(VsReference {
                verdict: verdict(
                    &format!("arm {}", arm.name),
                    &format!("arm {ref_name}"),
                    &b.accuracy,
                    &m,
                ),
                bootstrap: b,
                mcnemar: m,
            })
        };
        arms.push(ArmResult {
            name: arm.name.clone(),
            title: arm.title.clone(),
            head: arm.head.as_str().to_string(),
            features: r.features.clone(),
            dim: r.dim,
            detail: r.detail.clone(),
            summary,
            train_seconds: r.train_seconds,
            shared_training_with: r.shared_with.clone(),
            vs_reference,
        });
    }
    let base = &study.base;
    let mut command = format!("ovr study {}", args.file.display());
    if !args.arms.is_empty() {
        command.push_str(&format!(" --arms {}", args.arms.join(",")));
    }
    Ok(StudyOutcome {
        study: study.name.clone(),
        dataset: base.dataset.name.clone(),
        classes,
        train_images: reference.sizes.0,
        val_images: reference.sizes.1,
        test_images: reference.labels.len(),
        reference: study.arms[study.reference].name.clone(),
        resamples: study.resamples,
        seed: base.seed,
        command,
        arms,
    })
}

fn head_word(h: &HeadRecord) -> String {
    match (h.kind, h.c) {
        (HeadKind::Linear, Some(c)) => format!("C = {c}"),
        _ => format!(
            "{} epochs (best {})",
            h.iterations,
            h.best_epoch.unwrap_or(0)
        ),
    }
}

/// Median of the specialists' chosen C or epochs, in words.
fn specialists_word(hs: &[HeadRecord]) -> String {
    let mut cs: Vec<f64> = hs.iter().filter_map(|h| h.c).collect();
    if cs.len() == hs.len() && !cs.is_empty() {
        cs.sort_by(f64::total_cmp);
        return format!("{} specialists, median C = {}", hs.len(), cs[cs.len() / 2]);
    }
    let mut e: Vec<usize> = hs.iter().map(|h| h.iterations).collect();
    e.sort_unstable();
    format!(
        "{} specialists, median {} epochs",
        hs.len(),
        e.get(e.len() / 2).copied().unwrap_or(0)
    )
}

/// Linear or MLP heads on cached (possibly stacked) features.
fn ensemble_arm(
    arm: &Arm,
    cache: &Cache,
    verbosity: Verbosity,
    stop: &Arc<AtomicBool>,
    fmemo: &mut FeatureMemo,
    tmemo: &mut TrainMemo,
) -> Result<ArmRun> {
    let cfg = &arm.config;
    let fkey = serde_json::json!([&cfg.dataset, &cfg.backbone, &cfg.extract, cfg.seed]).to_string();
    let sets = match fmemo.get(&fkey) {
        Some(s) => Arc::clone(s),
        None => {
            let v = features_for(
                cfg,
                cache,
                verbosity,
                &[Split::Train, Split::Val, Split::Test],
            )?;
            let arr: [FeatureSet; 3] = v
                .try_into()
                .map_err(|_| Error::Usage("train, val and test features are required".into()))?;
            let arc = Arc::new(arr);
            fmemo.insert(fkey, Arc::clone(&arc));
            arc
        }
    };
    let [train, val, test] = &*sets;
    // The training memo's key: a failure must not make every arm share one key.
    let tkey = serde_json::to_string(cfg).map_err(|source| Error::Json {
        what: "the arm's config (the training memo key)",
        source,
    })?;
    let (ens, secs, shared_with) = match tmemo.get(&tkey) {
        Some((e, s, first)) => (Arc::clone(e), *s, Some(first.clone())),
        None => {
            let o = train_ensemble(
                train,
                val,
                &cfg.train,
                cfg.seed,
                Arc::clone(stop),
                verbosity,
            )?;
            let manifest = Manifest::from_training(&format!("study-{}", arm.name), cfg, train, &o)?;
            let e = Arc::new(Ensemble {
                dir: PathBuf::from(format!("(study arm {})", arm.name)),
                manifest,
                weights: o.weights,
            });
            tmemo.insert(tkey, (Arc::clone(&e), o.train_seconds, arm.name.clone()));
            (e, o.train_seconds, None)
        }
    };
    let out = ens.head_outputs(&test.features, test.len())?;
    let (approach, detail) = match arm.head {
        ArmHead::MulticlassLinear | ArmHead::MulticlassMlp => (
            Approach::MulticlassTemperature,
            format!(
                "{}, temperature {:.3}",
                head_word(&ens.manifest.multiclass),
                ens.manifest.calibration.multiclass.t
            ),
        ),
        _ => (
            Approach::SpecialistsCalibrated,
            format!(
                "{}, calibrated argmax ({})",
                specialists_word(&ens.manifest.specialists),
                ens.manifest.combiner.name()
            ),
        ),
    };
    let input = ens.approach(&out, approach);
    Ok(ArmRun {
        labels: test.labels.clone(),
        keys: test.keys.clone(),
        probs: input.probs,
        preds: input.preds,
        features: test.backbone.clone(),
        dim: test.dim,
        detail,
        train_seconds: secs,
        shared_with,
        sizes: (train.len(), val.len()),
    })
}

fn tensor(set: &FeatureSet) -> Result<Tensor> {
    Tensor::from_slice(&set.features, (set.len(), set.dim), &Device::Cpu).map_err(|source| {
        Error::Train(TrainError::Candle {
            head: "fine-tuned top".into(),
            source: Box::new(source),
        })
    })
}

/// The top `spec.blocks` blocks + head conv + a new linear head, trained
/// from the activations entering the first trainable block (cached per image).
fn finetune_arm(
    arm: &Arm,
    spec: &FinetuneSpec,
    cache: &Cache,
    verbosity: Verbosity,
) -> Result<ArmRun> {
    let cfg = &arm.config;
    if !cfg.backbone.stack.is_empty() {
        return Err(Error::Usage(format!(
            "arm `{}`: fine-tuning uses one backbone, not a stack",
            arm.name
        )));
    }
    ensure_weights(cfg, cache, verbosity)?;
    let net = load_lite(&cfg.backbone, cache)?.ok_or_else(|| {
        Error::Usage(format!(
            "arm `{}`: fine-tuning needs an EfficientNet-Lite backbone, not `{}`",
            arm.name, cfg.backbone.name
        ))
    })?;
    let n_blocks = net.block_count();
    if spec.blocks > n_blocks {
        return Err(Error::Usage(format!(
            "arm `{}`: finetune.blocks = {} but {} has {n_blocks} blocks",
            arm.name, spec.blocks, cfg.backbone.name
        )));
    }
    let cut = n_blocks - spec.blocks;
    let top = net.top_weights(cut)?;
    let bottom = CutBackbone::new(net, cut)?;
    let ds = open_dataset(&cfg.dataset, cache, cfg.seed)?;
    let r = extract(&ds, &bottom, cache, &extract_options(cfg, verbosity))?;
    let load = |split: Split| -> Result<FeatureSet> {
        let (_, path, _) = r.outputs.iter().find(|o| o.0 == split).ok_or_else(|| {
            Error::Usage(format!(
                "dataset `{}` has no {} images",
                ds.name,
                split.as_str()
            ))
        })?;
        Ok(FeatureSet::load(path).map_err(ExtractError::from)?)
    };
    let (train, val, test) = (load(Split::Train)?, load(Split::Val)?, load(Split::Test)?);
    let k = train.classes.len();
    let (x_tr, x_va, x_te) = (tensor(&train)?, tensor(&val)?, tensor(&test)?);
    let t0 = Instant::now();
    let fit = finetune(
        top,
        (&x_tr, &train.labels),
        (&x_va, &val.labels),
        k,
        cfg.train.multiclass_class_weight,
        spec,
        head_seed(cfg.seed, k as u64 + 1),
        &|epoch, train_loss, val_loss| {
            if verbosity > Verbosity::Quiet {
                eprintln!(
                    "  fine-tune epoch {epoch}/{}: training loss {train_loss:.4}, validation loss {val_loss:.4}",
                    spec.epochs
                );
            }
        },
    )?;
    let secs = t0.elapsed().as_secs_f64();
    let cal_err = |source| {
        Error::Train(TrainError::Calibration {
            head: "temperature of the fine-tuned head".into(),
            source,
        })
    };
    let t = Temperature::fit(&finetune_logits(&fit, &x_va)?, &val.labels, val.len(), k)
        .map_err(cal_err)?;
    let probs = t.probs(&finetune_logits(&fit, &x_te)?, test.len(), k);
    let preds = argmax_rows(&probs, test.len(), k);
    let h = &fit.history;
    let first = h.train_loss.first().copied().unwrap_or(f64::NAN);
    let last = h.train_loss.last().copied().unwrap_or(f64::NAN);
    Ok(ArmRun {
        labels: test.labels.clone(),
        keys: test.keys.clone(),
        probs,
        preds,
        features: format!("{} activations", bottom.id()),
        dim: test.dim,
        detail: format!(
            "cut before block {cut} of {n_blocks} ({} block(s) + head conv + linear head trained), {} epochs (best {}), training loss {first:.3} -> {last:.3}, lr {} / head lr {}, temperature {:.3}",
            spec.blocks, h.epochs, h.best_epoch, spec.lr, spec.head_lr, t.t
        ),
        train_seconds: secs,
        shared_with: None,
        sizes: (train.len(), val.len()),
    })
}
