//! `ovr bench train --synthetic N`: the streaming training path measured.
//! Wires `features::synthetic` (a seeded split with a planted linear
//! structure, written block by block to a temporary file) into the linear
//! heads over that file, memory-mapped and read in row blocks
//! (`heads::rows::MappedRows`), or loaded whole (`--in-memory`, the
//! ordinary path) for comparison, and prints one Markdown row: wall time
//! per phase, peak RSS (`VmHWM`), held-out accuracy against the Bayes rule.
//! `--stream-check` instead trains on the configured dataset's cached
//! training split both ways and prints how far the streamed fits are from
//! the in-memory ones.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};

use super::bench_decode::peak_rss_kb;
use crate::features::feature_set::{FeatureDtype, FeatureSet};
use crate::features::mapped::MappedFeatures;
use crate::features::synthetic::Planted;
use crate::heads::{
    fit_binary_rows, fit_softmax_rows, try_linear_logits, BinaryJob, ClassWeighting, FitOptions,
    HeadError, LinearFit, MappedRows, RowBlocks, Standardizer, TensorRows,
};
use crate::{Error, Result};

/// The options of `ovr bench train --synthetic`.
#[derive(Debug, Clone)]
pub struct SyntheticBench {
    pub n: usize,
    pub dim: usize,
    pub classes: usize,
    pub dtype: FeatureDtype,
    pub block_rows: usize,
    pub max_iter: usize,
    pub c: f64,
    /// Where the temporary split file goes (default: the system temp dir).
    pub dir: Option<PathBuf>,
    pub in_memory: bool,
}

/// Distance between two class means of the planted model (noise std 1).
const SEPARATION: f64 = 3.0;
/// Held-out rows scored against the Bayes rule.
const TEST_ROWS: usize = 10_000;

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store_err(source: crate::features::store::StoreError) -> Error {
    Error::Head(HeadError::Features { source })
}

fn head_options(max_iter: usize) -> FitOptions {
    FitOptions {
        max_iter,
        ..FitOptions::default()
    }
}

/// K one-vs-rest heads (unweighted) and the softmax head at one C.
fn fit_all(
    rows: &dyn RowBlocks,
    labels: &[u32],
    k: usize,
    c: f64,
    opts: &FitOptions,
) -> Result<(Vec<LinearFit>, LinearFit, f64, f64)> {
    let jobs: Vec<BinaryJob> = (0..k as u32)
        .map(|class| BinaryJob {
            class,
            c,
            weighting: ClassWeighting::None,
        })
        .collect();
    let t = Instant::now();
    let ovr = fit_binary_rows(rows, labels, &jobs, &vec![None; k], opts)?;
    let ovr_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let softmax = fit_softmax_rows(rows, labels, k, c, ClassWeighting::None, None, opts)?;
    Ok((ovr, softmax, ovr_s, t.elapsed().as_secs_f64()))
}

/// Accuracy of the OvR argmax, the softmax head and the Bayes rule on
/// held-out rows of the planted model.
fn held_out(
    p: &Planted,
    s: &Standardizer,
    ovr: &[LinearFit],
    softmax: &LinearFit,
) -> Result<(f64, f64, f64)> {
    let labels = p.labels(TEST_ROWS);
    let raw = p.rows(&labels, 0, TEST_ROWS, 1);
    let x = s.try_apply(&raw)?;
    let (k, d) = (p.k, p.d);
    let mut z = vec![0f32; TEST_ROWS * k];
    for (c, h) in ovr.iter().enumerate() {
        for (i, v) in try_linear_logits(&x, TEST_ROWS, d, h)?
            .into_iter()
            .enumerate()
        {
            z[i * k + c] = v;
        }
    }
    let argmax = |r: &[f32]| (0..r.len()).max_by(|&a, &b| r[a].total_cmp(&r[b]));
    let m = try_linear_logits(&x, TEST_ROWS, d, softmax)?;
    let frac = |f: &dyn Fn(usize) -> Option<usize>| {
        (0..TEST_ROWS)
            .filter(|&i| f(i) == Some(labels[i] as usize))
            .count() as f64
            / TEST_ROWS as f64
    };
    Ok((
        frac(&|i| argmax(&z[i * k..(i + 1) * k])),
        frac(&|i| argmax(&m[i * k..(i + 1) * k])),
        frac(&|i| Some(p.bayes_class(&raw[i * d..(i + 1) * d]))),
    ))
}

/// `ovr bench train --synthetic N`.
pub fn synthetic(seed: u64, b: &SyntheticBench) -> Result<()> {
    if b.n == 0 || b.dim == 0 || b.classes < 2 || b.block_rows == 0 {
        return Err(Error::Usage(
            "--synthetic, --dim and --block-rows must be at least 1, --classes at least 2".into(),
        ));
    }
    let base = b.dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = TempDir(base.join(format!("ovr-bench-train-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).map_err(|source| {
        store_err(crate::features::store::StoreError::Io {
            path: tmp.0.clone(),
            source,
        })
    })?;
    let path = tmp.0.join("train.safetensors");
    let p = Planted::new(b.classes, b.dim, SEPARATION, seed);
    let t = Instant::now();
    p.write_split(&path, b.n, b.dtype).map_err(store_err)?;
    let write_s = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let opts = head_options(b.max_iter);
    let t = Instant::now();
    let (s, ovr, softmax, ovr_s, softmax_s) = if b.in_memory {
        train_in_memory(&path, b, &opts)?
    } else {
        train_mapped(&path, b, &opts)?
    };
    let train_s = t.elapsed().as_secs_f64();
    let (acc_ovr, acc_softmax, acc_bayes) = held_out(&p, &s, &ovr, &softmax)?;
    let iters = ovr.iter().map(|f| f.iterations).max().unwrap_or(0);
    let path_name = if b.in_memory { "in memory" } else { "mapped" };
    println!("| N | D | K | dtype | path | block rows | file MB | write s | train s | OvR s (max iter) | softmax s (iter) | peak RSS MB | acc OvR | acc softmax | acc Bayes |");
    println!("|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {path_name} | {} | {:.3} | {write_s:.1} | {train_s:.1} | {ovr_s:.1} ({iters}) | {softmax_s:.1} ({}) | {} | {:.2}% | {:.2}% | {:.2}% |",
        b.n,
        b.dim,
        b.classes,
        b.dtype,
        if b.in_memory {
            "-".to_string()
        } else {
            crate::heads::rows::whole_units(b.block_rows).to_string()
        },
        bytes as f64 / 1e6,
        softmax.iterations,
        peak_rss_kb().map_or("-".into(), |kb| (kb / 1024).to_string()),
        100.0 * acc_ovr,
        100.0 * acc_softmax,
        100.0 * acc_bayes,
    );
    Ok(())
}

type Trained = (Standardizer, Vec<LinearFit>, LinearFit, f64, f64);

fn train_mapped(path: &Path, b: &SyntheticBench, opts: &FitOptions) -> Result<Trained> {
    let map = MappedFeatures::open(path).map_err(store_err)?;
    let s = MappedRows::fit_standardizer(&map, b.block_rows)?;
    let rows = MappedRows::new(&map, &s, b.block_rows)?;
    let (ovr, softmax, ovr_s, softmax_s) = fit_all(&rows, &map.labels, b.classes, b.c, opts)?;
    Ok((s, ovr, softmax, ovr_s, softmax_s))
}

fn train_in_memory(path: &Path, b: &SyntheticBench, opts: &FitOptions) -> Result<Trained> {
    let set = FeatureSet::load(path).map_err(store_err)?;
    let s = Standardizer::try_fit(&set.features, set.len(), set.dim)?;
    let x = s.try_apply(&set.features)?;
    drop(set.features);
    let x = Tensor::from_vec(x, (set.keys.len(), set.dim), &Device::Cpu)
        .map_err(HeadError::candle("bench: upload x"))?;
    let rows = TensorRows::new(&x)?;
    let (ovr, softmax, ovr_s, softmax_s) = fit_all(&rows, &set.labels, b.classes, b.c, opts)?;
    Ok((s, ovr, softmax, ovr_s, softmax_s))
}

/// Largest relative difference `max |a - b| / max |b|` over two fits' weights
/// and biases.
fn rel_diff(a: &LinearFit, b: &LinearFit) -> f64 {
    let scale =
        b.w.iter()
            .chain(&b.b)
            .fold(0f64, |m, &v| m.max(f64::from(v).abs()));
    let diff =
        a.w.iter()
            .chain(&a.b)
            .zip(b.w.iter().chain(&b.b))
            .fold(0f64, |m, (&x, &y)| {
                m.max((f64::from(x) - f64::from(y)).abs())
            });
    diff / scale.max(f64::MIN_POSITIVE)
}

/// `ovr bench train --stream-check`: the configured training split trained
/// in memory and streamed from a mapped copy (f32, blocks of `block_rows`).
pub fn stream_check(set: &FeatureSet, block_rows: usize, c: f64, max_iter: usize) -> Result<()> {
    let (n, d, k) = (set.len(), set.dim, set.classes.len());
    let opts = head_options(max_iter);
    let s = Standardizer::try_fit(&set.features, n, d)?;
    let x = Tensor::from_vec(s.try_apply(&set.features)?, (n, d), &Device::Cpu)
        .map_err(HeadError::candle("bench: upload x"))?;
    let (ovr_mem, soft_mem, _, _) = fit_all(&TensorRows::new(&x)?, &set.labels, k, c, &opts)?;
    let base = std::env::temp_dir();
    let tmp = TempDir(base.join(format!("ovr-stream-check-{}", std::process::id())));
    let path = tmp.0.join("train.safetensors");
    set.save(&path).map_err(store_err)?;
    let map = MappedFeatures::open(&path).map_err(store_err)?;
    let sm = MappedRows::fit_standardizer(&map, block_rows)?;
    println!(
        "{} train split: {n} x {d}, {k} classes, C = {c}, max_iter {max_iter}; standardizer bitwise equal: {}",
        set.dataset,
        sm == s
    );
    println!();
    println!("| block rows | blocks | OvR max rel diff | OvR bitwise equal | softmax rel diff | softmax bitwise equal | max objective rel diff |");
    println!("|---:|---:|---:|---|---:|---|---:|");
    for rows_per_block in [n.max(1), block_rows] {
        let rows = MappedRows::new(&map, &sm, rows_per_block)?;
        let (ovr, soft, _, _) = fit_all(&rows, &map.labels, k, c, &opts)?;
        let ovr_diff = ovr
            .iter()
            .zip(&ovr_mem)
            .map(|(a, b)| rel_diff(a, b))
            .fold(0.0, f64::max);
        let obj = ovr
            .iter()
            .zip(&ovr_mem)
            .chain([(&soft, &soft_mem)])
            .map(|(a, b)| (a.objective - b.objective).abs() / b.objective.abs())
            .fold(0.0, f64::max);
        println!(
            "| {} | {} | {ovr_diff:.2e} | {} | {:.2e} | {} | {obj:.2e} |",
            rows.block_rows().min(n),
            n.div_ceil(rows.block_rows()),
            ovr == ovr_mem,
            rel_diff(&soft, &soft_mem),
            soft == soft_mem,
        );
    }
    Ok(())
}
