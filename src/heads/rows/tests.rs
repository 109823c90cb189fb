//! Tests of the row sources: blocks of any size train bitwise the in-memory
//! fits (the reduction runs in fixed units), the unit sums are the plain
//! `X^T . R`, mapped files train like loaded sets.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::features::feature_set::{FeatureDtype, FeatureSet};
use crate::features::synthetic::Planted;
use crate::heads::{
    fit_binary_from, fit_binary_rows, fit_softmax_from, fit_softmax_rows, BinaryJob,
    ClassWeighting, FitOptions, LinearFit,
};

/// Three reduction units (4096 + 4096 + 1808 rows).
const N: usize = 10_000;
const D: usize = 24;
const K: usize = 3;

fn data() -> FeatureSet {
    let p = Planted::new(K, D, 2.5, 11);
    let labels = p.labels(N);
    FeatureSet {
        dataset: "planted".into(),
        split: "train".into(),
        backbone: "none".into(),
        weights_sha256: String::new(),
        classes: (0..K).map(|c| c.to_string()).collect(),
        keys: (0..N).map(|i| i.to_string()).collect(),
        features: p
            .rows(&labels, 0, N, 0)
            .iter()
            .map(|v| v * 2.0 + 1.0)
            .collect(),
        labels,
        dim: D,
    }
}

fn jobs() -> Vec<BinaryJob> {
    (0..K as u32)
        .map(|class| BinaryJob {
            class,
            c: 0.5,
            weighting: if class == 1 {
                ClassWeighting::Balanced
            } else {
                ClassWeighting::None
            },
        })
        .collect()
}

fn fits(rows: &dyn RowBlocks, labels: &[u32]) -> (Vec<LinearFit>, LinearFit) {
    let opts = FitOptions::default();
    let ovr = fit_binary_rows(rows, labels, &jobs(), &[None; K], &opts).unwrap();
    let soft = fit_softmax_rows(rows, labels, K, 0.5, ClassWeighting::None, None, &opts).unwrap();
    (ovr, soft)
}

/// Counts the blocks asked for and the largest.
struct Counting<'a>(TensorRows<'a>, AtomicUsize, AtomicUsize);

impl RowBlocks for Counting<'_> {
    fn rows(&self) -> usize {
        self.0.rows()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn dtype(&self) -> DType {
        self.0.dtype()
    }
    fn device(&self) -> &Device {
        self.0.device()
    }
    fn block_rows(&self) -> usize {
        self.0.block_rows()
    }
    fn block(&self, start: usize, len: usize) -> Result<Tensor, HeadError> {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.2.fetch_max(len, Ordering::Relaxed);
        self.0.block(start, len)
    }
}

#[test]
fn blocked_fits_are_bitwise_the_in_memory_fits() {
    let set = data();
    let s = Standardizer::fit(&set.features, N, D);
    let x = Tensor::from_vec(s.apply(&set.features), (N, D), &Device::Cpu).unwrap();
    let opts = FitOptions::default();
    let ovr = fit_binary_from(&x, &set.labels, &jobs(), &[None; K], &opts).unwrap();
    let soft =
        fit_softmax_from(&x, &set.labels, K, 0.5, ClassWeighting::None, None, &opts).unwrap();
    assert!(ovr.iter().chain([&soft]).all(|f| f.converged));
    let in_memory = (ovr, soft);
    assert_eq!(fits(&TensorRows::new(&x).unwrap(), &set.labels), in_memory);
    // 700 rows a block -> 4096 (whole units): 3 blocks per evaluation,
    // never more than 4096 rows at once; 5000 -> 8192: 2 blocks. Both
    // train bitwise the heads of the whole matrix.
    for (asked, block, blocks) in [(700, 4096, 3), (5000, 8192, 2)] {
        let counting = Counting(
            TensorRows::new(&x).unwrap().with_block_rows(asked),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        assert_eq!(fits(&counting, &set.labels), in_memory, "blocks of {block}");
        assert_eq!(counting.2.load(Ordering::Relaxed), block);
        assert!(counting.1.load(Ordering::Relaxed) >= blocks * 10);
    }
}

#[test]
fn the_unit_sums_are_the_plain_gradient() {
    // With R = Z (the identity residual), G = X^T . X . W: checked against
    // a plain f64 product on the host, for one block and for blocks of one
    // unit, so a unit dropped or counted twice fails.
    let set = data();
    let s = Standardizer::fit(&set.features, N, D);
    let xs = s.apply(&set.features);
    let x = Tensor::from_vec(xs.clone(), (N, D), &Device::Cpu).unwrap();
    let width = 2;
    let w: Vec<f64> = (0..D * width)
        .map(|i| ((i % 7) as f64 - 3.0) / 10.0)
        .collect();
    let mut want = vec![0f64; D * width];
    for row in xs.chunks(D) {
        let z: Vec<f64> = (0..width)
            .map(|j| (0..D).map(|k| f64::from(row[k]) * w[k * width + j]).sum())
            .collect();
        for (k, &xk) in row.iter().enumerate() {
            for j in 0..width {
                want[k * width + j] += f64::from(xk) * z[j];
            }
        }
    }
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    let identity = |z: &[f32], r: &mut [f32], l: &[u32]| {
        r.copy_from_slice(z);
        l.len()
    };
    for rows in [
        TensorRows::new(&x).unwrap(),
        TensorRows::new(&x).unwrap().with_block_rows(1),
    ] {
        let (parts, g) =
            blocked_pass::<f32, usize>(&rows, &set.labels, &w, width, identity).unwrap();
        assert_eq!(parts.iter().sum::<usize>(), N);
        assert_eq!(parts.len(), N.div_ceil(ROW_CHUNK));
        let err = g
            .iter()
            .zip(&want)
            .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(err < 1e-5 * scale, "max error {err} of {scale}");
    }
}

#[test]
fn mapped_files_train_like_the_loaded_sets() {
    let dir = tempfile::tempdir().unwrap();
    let set = data();
    for dtype in [FeatureDtype::F32, FeatureDtype::F16] {
        let path = dir.path().join(format!("{dtype}.safetensors"));
        set.save_as(&path, dtype).unwrap();
        let loaded = FeatureSet::load(&path).unwrap();
        let s = Standardizer::fit(&loaded.features, N, D);
        let x = Tensor::from_vec(s.apply(&loaded.features), (N, D), &Device::Cpu).unwrap();
        let in_memory = fits(&TensorRows::new(&x).unwrap(), &loaded.labels);
        let map = MappedFeatures::open(&path).unwrap();
        // Fitted in blocks of 512 rows: bitwise the in-memory statistics.
        let sm = MappedRows::fit_standardizer(&map, 512).unwrap();
        assert_eq!(sm, s);
        let one_block = MappedRows::new(&map, &sm, N).unwrap();
        assert_eq!(fits(&one_block, &map.labels), in_memory, "{dtype}");
        // A fresh map, to count what the blocked fits read.
        let map = MappedFeatures::open(&path).unwrap();
        let blocked = MappedRows::new(&map, &sm, 1000).unwrap();
        assert_eq!(blocked.block_rows(), 4096);
        assert_eq!(fits(&blocked, &map.labels), in_memory, "{dtype}");
        assert_eq!(map.largest_read(), 4096, "{dtype}");
        assert_eq!(map.rows_read() % N as u64, 0, "{dtype}: whole passes");
    }
    let wrong = Standardizer::fit(&[0.0; 4], 1, 4);
    let map = MappedFeatures::open(&dir.path().join("f32.safetensors")).unwrap();
    let e = MappedRows::new(&map, &wrong, 10).err().unwrap();
    assert!(e.to_string().starts_with("standardizer"), "{e}");
}
