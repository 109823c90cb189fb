//! Stage 2 (features): the extraction pipeline, images -> cached features.
//!
//! A crossbeam pipeline: decoder threads read each item, hash its content and
//! either report a cache hit or decode + resize it; the calling thread batches
//! decoded images through the backbone (whose ops use all cores) and appends
//! each batch to the per-content [`FeatureCache`] at once, so an interrupted
//! run loses at most one batch. Finally each split is written as a
//! [`FeatureSet`](super::feature_set::FeatureSet) in dataset order. Bad images are reported and skipped.
//! Decoders and the network share the cores through a [`CpuGate`], so
//! together they never run more threads than there are cores. What the
//! decoders do per item is `item_msg`; a run covers every image,
//! one shard of them, or none (a merge): [`Scope`], [`super::shard`].

use crate::util::choice::Choice;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::Tensor;
use crossbeam::channel;

use super::backbone::{Backbone, BackboneError};
use super::cpu_gate::CpuGate;
use super::feature_set::SplitHeader;
use super::item_msg::{classify_item, Msg};
use super::mapped::write_streamed;
use super::shard_spec::{MissingShard, Scope};
use super::store::{FeatureCache, StoreError};
use super::store_io::malformed;
use crate::assets::cache::Cache;
use crate::images::dataset::{Dataset, Split};
use crate::images::decode::DecodeOptions;
use crate::progress::{bar, Verbosity};

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Backbone(#[from] BackboneError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A batch tensor could not be built on, or read back from, the
    /// backbone's device (the candle error kept as the source).
    #[error("feature extraction: a batch tensor failed on the backbone's device")]
    Pipeline(#[source] candle_core::Error),
    #[error("cannot merge the shards of {dataset} / {backbone}: {detail}")]
    MissingShards {
        dataset: String,
        backbone: String,
        /// Which shards lack images (empty when no shard ever finished).
        shards: Vec<MissingShard>,
        detail: String,
    },
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
    /// Images of other shards, passed over (`--shard K/N` only).
    pub elsewhere: usize,
    /// Items skipped, with the reason.
    pub failed: Vec<(String, String)>,
    /// Written feature files: split, path, rows (none for one shard).
    pub outputs: Vec<(Split, PathBuf, usize)>,
    /// The shard's done-marker (`--shard K/N` only).
    pub marker: Option<PathBuf>,
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

/// Runs one batch of `[3, S, S]` pixel vectors through the backbone.
pub fn embed_batch(
    backbone: &dyn Backbone,
    pixels: &[Vec<f32>],
) -> Result<Vec<Vec<f32>>, ExtractError> {
    let s = backbone.input_size();
    let flat: Vec<f32> = pixels.iter().flat_map(|p| p.iter().copied()).collect();
    let x = Tensor::from_vec(flat, (pixels.len(), 3, s, s), backbone.device())
        .map_err(ExtractError::Pipeline)?;
    let f = backbone.features(&x)?;
    f.to_vec2::<f32>().map_err(ExtractError::Pipeline)
}

/// Extracts (or reuses) features for every item and writes one file per
/// split. One shard, or a merge of shards: [`super::shard::extract_scoped`].
pub fn extract(
    dataset: &Dataset,
    backbone: &dyn Backbone,
    cache: &Cache,
    opts: &ExtractOptions,
) -> Result<ExtractReport, ExtractError> {
    let start = Instant::now();
    let content_dir = content_cache_dir(cache, backbone, &opts.decode);
    let mut fcache = open_cache(&content_dir, backbone.feature_dim())?;
    let run = embed_all(dataset, backbone, &mut fcache, opts, Scope::All)?;
    let done = Finished {
        fcache: &fcache,
        run,
        marker: None,
        write_splits: true,
        start,
    };
    report(dataset, backbone, cache, opts, done)
}

/// An embedding run over, to be reported (and its split files written).
pub(crate) struct Finished<'a> {
    pub fcache: &'a FeatureCache,
    pub run: PipelineRun,
    pub marker: Option<PathBuf>,
    /// False for one shard: its split files are the merge's to write.
    pub write_splits: bool,
    pub start: Instant,
}

/// Writes the split files (unless a shard) and says what the run did.
pub(crate) fn report(
    dataset: &Dataset,
    backbone: &dyn Backbone,
    cache: &Cache,
    opts: &ExtractOptions,
    done: Finished<'_>,
) -> Result<ExtractReport, ExtractError> {
    let Finished {
        fcache,
        mut run,
        marker,
        write_splits: write,
        start,
    } = done;
    let mut outputs = Vec::new();
    if write {
        let out_dir = dataset_features_dir(cache, dataset, backbone);
        outputs = write_splits(dataset, backbone, fcache, &run.hashes, &out_dir, opts.dtype)?;
    }
    run.failed.sort();
    Ok(ExtractReport {
        computed: run.computed,
        reused: run.reused,
        elsewhere: run.elsewhere,
        failed: run
            .failed
            .into_iter()
            .map(|(i, _, r)| (dataset.items[i].key.clone(), r))
            .collect(),
        outputs,
        marker,
        elapsed: start.elapsed(),
        backbone_seconds: run.backbone_seconds,
    })
}

/// Opens the per-content cache, reporting each damaged shard once: it is
/// moved to quarantine/ and its images are recomputed. Many at once (a
/// cache written before checksums) are summarised after the first few.
pub(crate) fn open_cache(dir: &Path, dim: usize) -> Result<FeatureCache, ExtractError> {
    let (fcache, bad_shards) = FeatureCache::open(dir, dim)?;
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
    Ok(fcache)
}

/// What the pipeline saw, item by item.
#[derive(Debug, Default)]
pub struct PipelineRun {
    /// Content hash of each item now in the cache (`None`: failed, missing
    /// or another shard's).
    pub hashes: Vec<Option<String>>,
    /// Item index, content hash if it could be read, reason.
    pub failed: Vec<(usize, Option<String>, String)>,
    /// Items not cached in a merge: index and content hash.
    pub missing: Vec<(usize, String)>,
    pub computed: usize,
    pub reused: usize,
    pub elsewhere: usize,
    pub backbone_seconds: f64,
}

/// The calling thread's side: batches decoded images through the backbone
/// and appends each batch to the cache.
struct Consumer<'a> {
    backbone: &'a dyn Backbone,
    fcache: &'a mut FeatureCache,
    gate: &'a CpuGate,
    net_threads: usize,
    batch: usize,
    pending: Vec<(usize, String, Vec<f32>)>,
    run: PipelineRun,
    pb: indicatif::ProgressBar,
}

impl Consumer<'_> {
    fn take(&mut self, msg: Msg) -> Result<(), ExtractError> {
        match msg {
            Msg::Elsewhere => self.run.elsewhere += 1,
            Msg::Cached { idx, hash } => {
                self.run.hashes[idx] = Some(hash);
                self.run.reused += 1;
            }
            Msg::Failed { idx, hash, reason } => self.run.failed.push((idx, hash, reason)),
            Msg::Missing { idx, hash } => self.run.missing.push((idx, hash)),
            Msg::Pixels { idx, hash, .. }
                if self.fcache.contains(&hash) || self.pending.iter().any(|p| p.1 == hash) =>
            {
                // Same content as an image already embedded in this run.
                self.run.hashes[idx] = Some(hash);
                self.run.reused += 1;
            }
            Msg::Pixels { idx, hash, pixels } => {
                self.pending.push((idx, hash, pixels));
                if self.pending.len() >= self.batch {
                    return self.flush();
                }
                return Ok(());
            }
        }
        self.pb.inc(1);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ExtractError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        let px: Vec<Vec<f32>> = self
            .pending
            .iter_mut()
            .map(|p| std::mem::take(&mut p.2))
            .collect();
        let feats = {
            let _cores = self.gate.network(self.net_threads);
            embed_batch(self.backbone, &px)?
        };
        self.run.backbone_seconds += t.elapsed().as_secs_f64();
        let mut entries = Vec::with_capacity(px.len());
        for ((idx, hash, _), f) in self.pending.drain(..).zip(feats) {
            self.run.hashes[idx] = Some(hash.clone());
            entries.push((hash, f));
        }
        self.run.computed += entries.len();
        self.fcache.append(entries)?;
        self.pb.inc(px.len() as u64);
        Ok(())
    }
}

/// Decoder threads hash (and, where needed, decode) every item; the calling
/// thread embeds and caches batch by batch.
pub(crate) fn embed_all(
    dataset: &Dataset,
    backbone: &dyn Backbone,
    fcache: &mut FeatureCache,
    opts: &ExtractOptions,
    scope: Scope,
) -> Result<PipelineRun, ExtractError> {
    // Decoders consult this snapshot, so they never wait on the cache the
    // calling thread appends to; duplicates within the run are caught later.
    let snapshot: HashSet<String> = fcache.hashes().cloned().collect();
    let n = dataset.items.len();
    let size = backbone.input_size();
    let batch = opts.batch_size.max(1);
    let gate = CpuGate::new(CpuGate::machine_cores());
    // More decoders than cores would only wait for tokens (and keep their
    // allocator arenas' memory): at most one per core is started.
    let threads = opts.decode_threads.clamp(1, gate.cores());
    let mut consumer = Consumer {
        backbone,
        fcache,
        gate: &gate,
        net_threads: network_threads(backbone),
        batch,
        pending: Vec::new(),
        run: PipelineRun {
            hashes: vec![None; n],
            ..PipelineRun::default()
        },
        pb: bar(n as u64, "extract", opts.verbosity),
    };
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
                    // Held while this image is read and decoded, released
                    // before the (possibly blocking) send.
                    let token = gate.decoder();
                    let msg = classify_item(idx, &items[idx], decode, size, snapshot, scope);
                    drop(token);
                    if res_tx.send(msg).is_err() {
                        break;
                    }
                }
            });
        }
        drop((res_tx, job_rx));
        for msg in res_rx.iter() {
            if let Err(e) = consumer.take(msg) {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            result = consumer.flush();
        }
        // Leaving the loop drops the receiver, which stops the decoders.
        drop(res_rx);
    });
    result?;
    consumer.pb.finish_and_clear();
    Ok(consumer.run)
}

/// Rows read from the cache and written per step of a split file.
const WRITE_BLOCK_ROWS: usize = 1024;

/// Writes one file per split that has cached rows, streaming the rows from
/// the cache in blocks (`mapped::write_streamed`: the same bytes as
/// `FeatureSet::save_as`), so no split's matrix is ever held whole.
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
        let head = SplitHeader {
            dataset: dataset.name.clone(),
            split: split.name().to_string(),
            backbone: backbone.id().to_string(),
            weights_sha256: backbone.weights_hash().to_string(),
            classes: dataset.classes.clone(),
        };
        let (mut keys, mut labels, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        for (item, hash) in dataset.items.iter().zip(hashes) {
            let Some(h) = hash.as_deref().filter(|h| fcache.contains(h)) else {
                continue;
            };
            if item.split != split {
                continue;
            }
            keys.push(item.key.clone());
            labels.push(item.label.0);
            rows.push(h);
        }
        if keys.is_empty() {
            continue;
        }
        let path = dir.join(format!("{}.safetensors", split.name()));
        write_split(&path, &head, (&keys, &labels, &rows), fcache, dim, dtype)?;
        outputs.push((split, path, keys.len()));
    }
    Ok(outputs)
}

/// One split file from its keys, labels and the cache rows they name.
fn write_split(
    path: &Path,
    head: &SplitHeader,
    (keys, labels, rows): (&[String], &[u32], &[&str]),
    fcache: &FeatureCache,
    dim: usize,
    dtype: crate::features::feature_set::FeatureDtype,
) -> Result<(), ExtractError> {
    let mut failed: Option<StoreError> = None;
    let fill = |start: usize, n: usize| {
        let mut block = vec![0f32; n * dim];
        for (out, h) in block
            .chunks_exact_mut(dim.max(1))
            .zip(&rows[start..start + n])
        {
            match fcache.read_into(h, out) {
                Ok(true) => {}
                Ok(false) => {
                    failed.get_or_insert(malformed(fcache.dir(), format!("{h} left the cache")));
                    return Vec::new();
                }
                Err(e) => {
                    failed.get_or_insert(e);
                    return Vec::new();
                }
            }
        }
        block
    };
    let written = write_streamed(path, head, keys, labels, dim, dtype, WRITE_BLOCK_ROWS, fill);
    match (failed, written) {
        (Some(e), _) | (None, Err(e)) => Err(e.into()),
        (None, Ok(())) => Ok(()),
    }
}
