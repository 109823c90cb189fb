//! The extraction pipeline with a tiny stand-in backbone: bad files are
//! reported and skipped, a second run computes nothing, an interrupted run
//! resumes from the batches it finished, results do not depend on threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{Device, Tensor};
use ovr::assets::cache::Cache;
use ovr::config::ResizeMode;
use ovr::features::backbone::{Backbone, BackboneError, Normalization};
use ovr::features::extract::{extract, ExtractOptions};
use ovr::features::store::FeatureSet;
use ovr::images::dataset::scan_image_folder;
use ovr::images::decode::DecodeOptions;
use ovr::progress::Verbosity;

use super::common::small_tree;

/// Features = per-channel mean pixel; fails once `calls` reaches `fail_at`;
/// each batch takes at least `delay`.
pub(crate) struct MeanColour {
    pub(crate) calls: AtomicUsize,
    fail_at: usize,
    delay: std::time::Duration,
    device: Device,
}

impl MeanColour {
    pub(crate) fn new(fail_at: usize) -> Self {
        MeanColour {
            calls: AtomicUsize::new(0),
            fail_at,
            delay: std::time::Duration::ZERO,
            device: Device::Cpu,
        }
    }

    /// Never fails; every batch takes `ms` milliseconds (to overlap runs).
    pub(crate) fn slow(ms: u64) -> Self {
        MeanColour {
            delay: std::time::Duration::from_millis(ms),
            ..Self::new(usize::MAX)
        }
    }
}

impl Backbone for MeanColour {
    fn id(&self) -> &str {
        "mean-colour"
    }
    fn input_size(&self) -> usize {
        8
    }
    fn feature_dim(&self) -> usize {
        3
    }
    fn normalization(&self) -> Normalization {
        Normalization::Scalar {
            mean: 0.0,
            std: 1.0,
        }
    }
    fn weights_hash(&self) -> &str {
        "00000000000000000000"
    }
    fn features(&self, pixels: &Tensor) -> Result<Tensor, BackboneError> {
        std::thread::sleep(self.delay);
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_at {
            return Err(BackboneError::Invalid {
                name: "mean-colour".into(),
                message: "simulated interruption".into(),
            });
        }
        pixels
            .mean((2, 3))
            .map_err(|source| BackboneError::Forward {
                name: "mean-colour".into(),
                source: Box::new(source),
            })
    }
    fn logits(&self, _: &Tensor) -> Result<Option<Tensor>, BackboneError> {
        Ok(None)
    }
    fn classify_features(&self, _: &Tensor) -> Result<Option<Tensor>, BackboneError> {
        Ok(None)
    }
    fn device(&self) -> &Device {
        &self.device
    }
}

pub(crate) fn opts(batch_size: usize, threads: usize) -> ExtractOptions {
    ExtractOptions {
        batch_size,
        decode_threads: threads,
        decode: DecodeOptions {
            resize: ResizeMode::Squash,
            ..DecodeOptions::default()
        },
        verbosity: Verbosity::Quiet,
        dtype: ovr::features::feature_set::FeatureDtype::F32,
    }
}

#[test]
fn bad_images_are_named_and_skipped_and_rerun_reuses_everything() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 6);
    let good = std::fs::read(root.join("circle/0.png")).unwrap();
    std::fs::write(root.join("circle/truncated.png"), &good[..good.len() / 2]).unwrap();
    std::fs::write(root.join("square/notes.jpg"), b"this is text, not a JPEG").unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let ds = scan_image_folder("shapes", &root, 0.2, 0.2, 1).unwrap();
    assert_eq!(ds.items.len(), 14);

    let r = extract(&ds, &MeanColour::new(usize::MAX), &cache, &opts(4, 2)).unwrap();
    assert_eq!(r.computed, 12);
    let failed: Vec<&str> = r.failed.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().any(|k| k.ends_with("circle/truncated.png")));
    assert!(failed.iter().any(|k| k.ends_with("square/notes.jpg")));
    let rows: usize = r.outputs.iter().map(|o| o.2).sum();
    assert_eq!(rows, 12);

    let again = extract(&ds, &MeanColour::new(1), &cache, &opts(4, 2)).unwrap();
    assert_eq!(
        (again.computed, again.reused),
        (0, 12),
        "second run must not call the backbone"
    );
    assert_eq!(r.outputs.len(), 3, "train, val and test exported");
    assert_eq!(again.outputs.len(), r.outputs.len());
    for ((_, p1, _), (_, p2, _)) in r.outputs.iter().zip(&again.outputs) {
        assert_eq!(FeatureSet::load(p1).unwrap(), FeatureSet::load(p2).unwrap());
    }
}

#[test]
fn interrupted_run_resumes_from_finished_batches() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 10);
    let cache = Cache::new(dir.path().join("cache"));
    let ds = scan_image_folder("shapes", &root, 0.2, 0.2, 1).unwrap();
    // Third batch fails: two batches of 4 are already stored.
    let err = extract(&ds, &MeanColour::new(3), &cache, &opts(4, 1));
    assert!(err.is_err());
    let r = extract(&ds, &MeanColour::new(usize::MAX), &cache, &opts(4, 1)).unwrap();
    assert_eq!((r.computed, r.reused), (12, 8));
    // The resumed features are those of a clean run into a fresh cache.
    let clean_cache = Cache::new(dir.path().join("clean"));
    let clean = extract(&ds, &MeanColour::new(usize::MAX), &clean_cache, &opts(4, 1)).unwrap();
    assert_eq!((clean.computed, clean.reused), (20, 0));
    assert_eq!(r.outputs.len(), 3);
    assert_eq!(clean.outputs.len(), r.outputs.len());
    for ((_, p1, n1), (_, p2, n2)) in r.outputs.iter().zip(&clean.outputs) {
        assert_eq!(n1, n2);
        let (x, y) = (FeatureSet::load(p1).unwrap(), FeatureSet::load(p2).unwrap());
        assert_eq!(x.keys, y.keys);
        assert_eq!(x.labels, y.labels);
        assert_eq!(x.features, y.features, "resumed = clean, bit for bit");
    }
}

#[test]
fn features_do_not_depend_on_threads_or_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    small_tree(&root, 7);
    let ds = scan_image_folder("shapes", &root, 0.2, 0.2, 3).unwrap();
    let a = extract(
        &ds,
        &MeanColour::new(usize::MAX),
        &Cache::new(dir.path().join("c1")),
        &opts(1, 1),
    )
    .unwrap();
    let b = extract(
        &ds,
        &MeanColour::new(usize::MAX),
        &Cache::new(dir.path().join("c2")),
        &opts(5, 3),
    )
    .unwrap();
    assert_eq!(a.outputs.len(), 3, "train, val and test exported");
    assert_eq!(b.outputs.len(), a.outputs.len());
    for ((_, p1, _), (_, p2, _)) in a.outputs.iter().zip(&b.outputs) {
        let (x, y) = (FeatureSet::load(p1).unwrap(), FeatureSet::load(p2).unwrap());
        assert_eq!(x.keys, y.keys);
        assert_eq!(x.labels, y.labels);
        assert_eq!(x.features, y.features);
    }
}
