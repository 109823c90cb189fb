//! Stage 2 (features): the extraction pipeline, images -> cached features.
//!
//! A crossbeam pipeline: decoder threads read each item, hash its content and
//! either report a cache hit or decode + resize it; the calling thread batches
//! decoded images through the backbone (whose ops use all cores) and appends
//! each batch to the per-content [`FeatureCache`] at once, so an interrupted
//! run loses at most one batch. Finally each split is written as a
//! [`FeatureSet`] in dataset order. Bad images are reported and skipped.
//! Decoders and the network share the cores through a [`CpuGate`], so
//! together they never run more threads than there are cores.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::Tensor;
use crossbeam::channel;
use sha2::{Digest, Sha256};

use super::backbone::{Backbone, BackboneError};
use super::cpu_gate::CpuGate;
use super::store::{FeatureCache, FeatureSet, StoreError};
use crate::assets::cache::Cache;
use crate::images::dataset::{Dataset, ImageSource, Item, Split};
use crate::images::decode::{gray_to_rgb, prepare, read_image_file, DecodeError, DecodeOptions};
use crate::images::orient::Orientation;
use crate::images::resize::to_input;
use crate::progress::{bar, Verbosity};

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Backbone(#[from] BackboneError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("feature extraction: {0}")]
    Pipeline(String),
}

#[derive(Debug, Clone, Copy)]
pub struct ExtractOptions {
    pub batch_size: usize,
    /// Decoder threads (they share the cores with the network, see [`CpuGate`]).
    pub decode_threads: usize,
    pub decode: DecodeOptions,
    pub verbosity: Verbosity,
    /// How the split files store features (`extract.dtype`).
    pub dtype: crate::features::feature_set::FeatureDtype,
}

/// What an extraction did.
#[derive(Debug, Clone)]
pub struct ExtractReport {
    /// Images run through the backbone in this run.
    pub computed: usize,
    /// Images whose features were already cached.
    pub reused: usize,
    /// Items skipped, with the reason.
    pub failed: Vec<(String, String)>,
    /// Written feature files: split, path, rows.
    pub outputs: Vec<(Split, PathBuf, usize)>,
    pub elapsed: Duration,
    /// Seconds spent in the backbone alone.
    pub backbone_seconds: f64,
}

/// Cache directory for one backbone + weights + input preprocessing (the
/// resize mode, filter, JPEG scaling, EXIF handling and the preprocessing
/// version, [`DecodeOptions::cache_tag`]): features made from different
/// pixels never share a directory.
pub fn content_cache_dir(
    cache: &Cache,
    backbone: &dyn Backbone,
    decode: &DecodeOptions,
) -> PathBuf {
    let h = backbone.weights_hash();
    cache.features_dir().join("by-content").join(format!(
        "{}-{}-{}px-{}",
        backbone.id(),
        &h[..h.len().min(12)],
        backbone.input_size(),
        decode.cache_tag()
    ))
}

/// Threads the backbone's CPU work runs on: its own engine's workers, else
/// candle's rayon pool; one on a GPU.
pub fn network_threads(backbone: &dyn Backbone) -> usize {
    if !backbone.device().is_cpu() {
        1
    } else {
        backbone
            .compute_threads()
            .unwrap_or_else(rayon::current_num_threads)
    }
}

/// Directory of a dataset's per-split feature files for one backbone:
/// `features/<name>-<origin hash>/<backbone>-<weights hash>/`.
pub fn dataset_features_dir(cache: &Cache, dataset: &Dataset, backbone: &dyn Backbone) -> PathBuf {
    let h = backbone.weights_hash();
    cache
        .features_dir()
        .join(dataset.export_key())
        .join(format!("{}-{}", backbone.id(), &h[..h.len().min(12)]))
}

enum Msg {
    Cached {
        idx: usize,
        hash: String,
    },
    Pixels {
        idx: usize,
        hash: String,
        pixels: Vec<f32>,
    },
    Failed {
        idx: usize,
        reason: String,
    },
}

/// Content hash of an item: SHA-256 of the file bytes, or of the raw raster
/// with its geometry for in-memory images.
fn read_and_hash(item: &Item, opts: &DecodeOptions) -> Result<(String, Vec<u8>), DecodeError> {
    match &item.source {
        ImageSource::File(p) => {
            let bytes = read_image_file(p, opts)?;
            Ok((hex(&Sha256::digest(&bytes)), bytes))
        }
        ImageSource::Gray {
            pixels,
            offset,
            width,
            height,
        } => {
            let raw = pixels
                .get(*offset..*offset + width * height)
                .ok_or(DecodeError::BadRaw {
                    width: *width,
                    height: *height,
                })?;
            let mut h = Sha256::new();
            h.update(format!("gray:{width}x{height}:").as_bytes());
            h.update(raw);
            Ok((hex(&h.finalize()), raw.to_vec()))
        }
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_item(
    item: &Item,
    bytes: &[u8],
    size: usize,
    opts: &DecodeOptions,
) -> Result<Vec<f32>, DecodeError> {
    match &item.source {
        ImageSource::File(_) => prepare(bytes, size, opts),
        ImageSource::Gray { width, height, .. } => {
            let rgb = gray_to_rgb(bytes, *width, *height)?;
            to_input(
                &rgb,
                size,
                opts.resize,
                opts.filter,
                Orientation::NoTransforms,
            )
        }
    }
}

/// Runs one batch of `[3, S, S]` pixel vectors through the backbone.
pub fn embed_batch(
    backbone: &dyn Backbone,
    pixels: &[Vec<f32>],
) -> Result<Vec<Vec<f32>>, ExtractError> {
    let s = backbone.input_size();
    let flat: Vec<f32> = pixels.iter().flat_map(|p| p.iter().copied()).collect();
    let pipeline = |e: candle_core::Error| ExtractError::Pipeline(e.to_string());
    let x = Tensor::from_vec(flat, (pixels.len(), 3, s, s), backbone.device()).map_err(pipeline)?;
    let f = backbone.features(&x)?;
    f.to_vec2::<f32>().map_err(pipeline)
}

/// Extracts (or reuses) features for every item and writes one file per split.
pub fn extract(
    dataset: &Dataset,
    backbone: &dyn Backbone,
    cache: &Cache,
    opts: &ExtractOptions,
) -> Result<ExtractReport, ExtractError> {
    let start = Instant::now();
    let dim = backbone.feature_dim();
    let (mut fcache, bad_shards) =
        FeatureCache::open(&content_cache_dir(cache, backbone, &opts.decode), dim)?;
    // Reported once: a damaged shard is moved to quarantine/, its images
    // are recomputed below. Many at once (a cache written before checksums)
    // are summarised after the first few.
    const SHOWN: usize = 3;
    for b in bad_shards.iter().take(SHOWN) {
        match &b.moved_to {
            Ok(q) => eprintln!(
                "warning: {}; moved it to {}, its images will be recomputed",
                b.reason,
                q.display()
            ),
            Err(why) => eprintln!(
                "warning: skipping unreadable cache shard {}: {} ({why})",
                b.path.display(),
                b.reason
            ),
        }
    }
    if bad_shards.len() > SHOWN {
        eprintln!(
            "warning: {} more cache shards were unreadable or unverified and moved to quarantine/; their images will be recomputed",
            bad_shards.len() - SHOWN
        );
    }
    // Decoders consult this snapshot, so they never wait on the cache the
    // calling thread appends to; duplicates within the run are caught below.
    let snapshot: HashSet<String> = fcache.hashes().cloned().collect();
    let n = dataset.items.len();
    let size = backbone.input_size();
    let pb = bar(n as u64, "extract", opts.verbosity);
    let batch = opts.batch_size.max(1);
    let gate = CpuGate::new(CpuGate::machine_cores());
    // More decoders than cores would only wait for tokens (and keep their
    // allocator arenas' memory): at most one per core is started.
    let threads = opts.decode_threads.clamp(1, gate.cores());
    let net_threads = network_threads(backbone);
    let mut hashes: Vec<Option<String>> = vec![None; n];
    let mut failed: Vec<(usize, String)> = Vec::new();
    let (mut computed, mut reused, mut backbone_seconds) = (0usize, 0usize, 0f64);
    let mut result: Result<(), ExtractError> = Ok(());
    let (job_tx, job_rx) = channel::bounded::<usize>(threads * 4);
    let (res_tx, res_rx) = channel::bounded::<Msg>(batch * 2);
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..n {
                if job_tx.send(i).is_err() {
                    break;
                }
            }
        });
        for _ in 0..threads {
            let (job_rx, res_tx, snapshot) = (job_rx.clone(), res_tx.clone(), &snapshot);
            let (items, decode, gate) = (&dataset.items, &opts.decode, &gate);
            s.spawn(move || {
                for idx in job_rx.iter() {
                    let item = &items[idx];
                    // Held while this image is read and decoded, released
                    // before the (possibly blocking) send.
                    let token = gate.decoder();
                    let msg = match read_and_hash(item, decode) {
                        Err(e) => Msg::Failed {
                            idx,
                            reason: e.to_string(),
                        },
                        Ok((hash, _)) if snapshot.contains(&hash) => Msg::Cached { idx, hash },
                        Ok((hash, bytes)) => match decode_item(item, &bytes, size, decode) {
                            Ok(pixels) => Msg::Pixels { idx, hash, pixels },
                            Err(e) => Msg::Failed {
                                idx,
                                reason: e.to_string(),
                            },
                        },
                    };
                    drop(token);
                    if res_tx.send(msg).is_err() {
                        break;
                    }
                }
            });
        }
        drop((res_tx, job_rx));
        let mut pending: Vec<(usize, String, Vec<f32>)> = Vec::new();
        let mut flush = |pending: &mut Vec<(usize, String, Vec<f32>)>,
                         fcache: &mut FeatureCache,
                         hashes: &mut Vec<Option<String>>|
         -> Result<(), ExtractError> {
            if pending.is_empty() {
                return Ok(());
            }
            let t = Instant::now();
            let px: Vec<Vec<f32>> = pending
                .iter_mut()
                .map(|p| std::mem::take(&mut p.2))
                .collect();
            let feats = {
                let _cores = gate.network(net_threads);
                embed_batch(backbone, &px)?
            };
            backbone_seconds += t.elapsed().as_secs_f64();
            let mut entries = Vec::with_capacity(px.len());
            for ((idx, hash, _), f) in pending.drain(..).zip(feats) {
                hashes[idx] = Some(hash.clone());
                entries.push((hash, f));
            }
            computed += entries.len();
            fcache.append(entries)?;
            pb.inc(px.len() as u64);
            Ok(())
        };
        for msg in res_rx.iter() {
            match msg {
                Msg::Cached { idx, hash } => {
                    hashes[idx] = Some(hash);
                    reused += 1;
                    pb.inc(1);
                }
                Msg::Failed { idx, reason } => {
                    failed.push((idx, reason));
                    pb.inc(1);
                }
                Msg::Pixels { idx, hash, .. }
                    if fcache.contains(&hash) || pending.iter().any(|p| p.1 == hash) =>
                {
                    // Same content as an image already embedded in this run.
                    hashes[idx] = Some(hash);
                    reused += 1;
                    pb.inc(1);
                }
                Msg::Pixels { idx, hash, pixels } => {
                    pending.push((idx, hash, pixels));
                    if pending.len() >= batch {
                        if let Err(e) = flush(&mut pending, &mut fcache, &mut hashes) {
                            result = Err(e);
                            break;
                        }
                    }
                }
            }
        }
        if result.is_ok() {
            result = flush(&mut pending, &mut fcache, &mut hashes);
        }
        // Leaving the loop drops the receiver, which stops the decoders.
        drop(res_rx);
    });
    result?;
    pb.finish_and_clear();
    failed.sort();
    let out_dir = dataset_features_dir(cache, dataset, backbone);
    let outputs = write_splits(dataset, backbone, &fcache, &hashes, &out_dir, opts.dtype)?;
    Ok(ExtractReport {
        computed,
        reused,
        failed: failed
            .into_iter()
            .map(|(i, r)| (dataset.items[i].key.clone(), r))
            .collect(),
        outputs,
        elapsed: start.elapsed(),
        backbone_seconds,
    })
}

/// Writes `<dir>/<split>.safetensors` for every split that has items.
fn write_splits(
    dataset: &Dataset,
    backbone: &dyn Backbone,
    fcache: &FeatureCache,
    hashes: &[Option<String>],
    dir: &Path,
    dtype: crate::features::feature_set::FeatureDtype,
) -> Result<Vec<(Split, PathBuf, usize)>, ExtractError> {
    let dim = backbone.feature_dim();
    let mut outputs = Vec::new();
    for split in Split::ALL {
        let mut set = FeatureSet {
            dataset: dataset.name.clone(),
            split: split.as_str().to_string(),
            backbone: backbone.id().to_string(),
            weights_sha256: backbone.weights_hash().to_string(),
            classes: dataset.classes.clone(),
            keys: Vec::new(),
            labels: Vec::new(),
            dim,
            features: Vec::new(),
        };
        for (item, hash) in dataset.items.iter().zip(hashes) {
            let Some(f) = hash.as_deref().and_then(|h| fcache.get(h)) else {
                continue;
            };
            if item.split != split {
                continue;
            }
            set.keys.push(item.key.clone());
            set.labels.push(item.label.0);
            set.features.extend_from_slice(f);
        }
        if set.is_empty() {
            continue;
        }
        let path = dir.join(format!("{}.safetensors", split.as_str()));
        set.save_as(&path, dtype)?;
        outputs.push((split, path, set.len()));
    }
    Ok(outputs)
}
