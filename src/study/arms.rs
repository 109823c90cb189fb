//! Study stage, running one arm: linear or MLP heads on cached (possibly
//! stacked) features through `train_ensemble` (arms whose resolved configs
//! are equal share one training run), or the fine-tune of a Lite
//! backbone's top blocks from cached activations with a temperature on top.

use crate::util::choice::Choice;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};

use super::{head_word, specialists_word, ArmRun, StudyError};
use crate::assets::cache::Cache;
use crate::calibration::{argmax_rows, Temperature};
use crate::config::study::{Arm, ArmHead};
use crate::configured::features::{all_splits, ensure_weights, extract_options};
use crate::ensemble::build::{train_ensemble, TrainError};
use crate::ensemble::manifest::head_seed;
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
use crate::progress::Verbosity;
use crate::{Error, Result};

/// What arms share within one study run: features of train/val/test read
/// once per feature config, and trained ensembles by resolved config
/// (ensemble, seconds, first arm).
#[derive(Default)]
pub struct Memo {
    features: HashMap<String, Arc<[FeatureSet; 3]>>,
    trained: HashMap<String, (Arc<Ensemble>, f64, String)>,
}

/// Runs one arm: its test predictions and provenance.
pub fn run_arm(
    arm: &Arm,
    cache: &Cache,
    verbosity: Verbosity,
    stop: &Arc<AtomicBool>,
    memo: &mut Memo,
) -> Result<ArmRun> {
    match (arm.head, &arm.finetune) {
        (ArmHead::Finetune, Some(spec)) => finetune_arm(arm, spec, cache, verbosity),
        _ => ensemble_arm(arm, cache, verbosity, stop, memo),
    }
}

/// Linear or MLP heads on cached (possibly stacked) features.
fn ensemble_arm(
    arm: &Arm,
    cache: &Cache,
    verbosity: Verbosity,
    stop: &Arc<AtomicBool>,
    memo: &mut Memo,
) -> Result<ArmRun> {
    let cfg = &arm.config;
    let fkey = serde_json::to_string(&(&cfg.dataset, &cfg.backbone, &cfg.extract, cfg.seed))
        .map_err(|source| StudyError::MemoKey {
            arm: arm.name.clone(),
            source,
        })?;
    let sets = match memo.features.get(&fkey) {
        Some(s) => Arc::clone(s),
        None => {
            let arc = Arc::new(all_splits(cfg, cache, verbosity)?);
            memo.features.insert(fkey, Arc::clone(&arc));
            arc
        }
    };
    let [train, val, test] = &*sets;
    let tkey = serde_json::to_string(cfg).map_err(|source| StudyError::MemoKey {
        arm: arm.name.clone(),
        source,
    })?;
    let (ens, secs, shared_with) = match memo.trained.get(&tkey) {
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
            memo.trained
                .insert(tkey, (Arc::clone(&e), o.train_seconds, arm.name.clone()));
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
                split.name()
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
