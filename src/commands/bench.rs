//! `ovr bench extract`: backbone throughput (images/s) by batch size and
//! depthwise implementation; `ovr bench train`: wall time of training every
//! head by lanes and fusion (`--synthetic N` / `--stream-check`: the
//! streaming path, see [`super::bench_stream`]). All print Markdown tables
//! for docs/performance.md. Extraction pixels are random: speed does not
//! depend on content.

use std::time::Instant;

use candle_core::Tensor;

use crate::assets::cache::Cache;
use crate::cli::StreamBenchArgs;
use crate::config::Config;
use crate::configured::features::ensure_weights;
use crate::features::backbone::Backbone;
use crate::features::efficientnet_lite::DepthwiseImpl;
use crate::features::feature_set::FeatureDtype;
use crate::features::registry::load_lite;
use crate::progress::Verbosity;
use crate::{Error, Result};

pub fn extract(
    config: &Config,
    cache: &Cache,
    batch_sizes: &[usize],
    images: usize,
    depthwise: &[String],
) -> Result<()> {
    let impls: Vec<(String, DepthwiseImpl)> = depthwise
        .iter()
        .map(|d| match d.as_str() {
            "native" => Ok((d.clone(), DepthwiseImpl::Native)),
            "direct" => Ok((d.clone(), DepthwiseImpl::Direct)),
            "candle" => Ok((d.clone(), DepthwiseImpl::CandleGrouped)),
            "portable" => Ok((d.clone(), DepthwiseImpl::Portable)),
            other => Err(Error::Usage(format!(
                "unknown depthwise `{other}`; allowed: native, direct, candle, portable"
            ))),
        })
        .collect::<Result<_>>()?;
    if batch_sizes.contains(&0) || images == 0 {
        return Err(Error::Usage(
            "batch sizes and --images must be at least 1".into(),
        ));
    }
    // Fail fast on a missing GPU, before fetching anything.
    let device = config.device.open()?;
    ensure_weights(config, cache, Verbosity::Normal)?;
    let mut net = load_lite(&config.backbone, cache)?.ok_or_else(|| {
        Error::Usage(format!(
            "bench extract measures EfficientNet-Lite, not `{}`",
            config.backbone.name
        ))
    })?;
    let impls = if device.is_cpu() {
        impls
    } else {
        // Off the CPU only plain candle ops run.
        net = net.to_device(&device)?;
        vec![("portable".to_string(), DepthwiseImpl::Portable)]
    };
    let variant = net.variant();
    let s = variant.input_size();
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    let place = match config.device {
        crate::device::DeviceSpec::Cpu => format!("CPU, {threads} threads"),
        d => d.to_string(),
    };
    println!(
        "{} at {s}x{s}, f32, {place}, {images} images per row after one warm-up batch",
        variant.id()
    );
    println!();
    println!("| depthwise | batch | images | seconds | images/s | device memory in use (MiB) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let err = Error::Candle;
    for (name, imp) in &impls {
        net.set_depthwise(*imp)?;
        for &bs in batch_sizes {
            let x = Tensor::rand(0f32, 255f32, (bs, 3, s, s), &device).map_err(err)?;
            net.features(&x)?;
            device.synchronize().map_err(err)?;
            let batches = images.div_ceil(bs);
            let t = Instant::now();
            for _ in 0..batches {
                net.features(&x)?;
            }
            device.synchronize().map_err(err)?;
            let secs = t.elapsed().as_secs_f64();
            let n = batches * bs;
            let memory = match crate::device::memory_info(&device) {
                Some((free, total)) => format!("{}", (total - free) >> 20),
                None => "-".into(),
            };
            println!(
                "| {name} | {bs} | {n} | {secs:.2} | {:.1} | {memory} |",
                n as f64 / secs
            );
        }
    }
    Ok(())
}

pub fn train(
    config: &Config,
    cache: &Cache,
    verbosity: Verbosity,
    lanes: &[usize],
    fuse: &[usize],
    stream: &StreamBenchArgs,
) -> Result<()> {
    use crate::ensemble::build::train_ensemble;
    use crate::images::dataset::Split;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    if let Some(n) = stream.synthetic {
        return super::bench_stream::synthetic(config.seed, &synthetic_options(n, stream)?);
    }
    if stream.stream_check {
        let sets =
            crate::configured::features::features_for(config, cache, verbosity, &[Split::Train])?;
        return super::bench_stream::stream_check(
            &sets[0],
            stream.block_rows,
            stream.c,
            stream.max_iter,
        );
    }
    if lanes.contains(&0) {
        return Err(Error::Usage("lane counts must be at least 1".into()));
    }
    let sets = crate::configured::features::features_for(
        config,
        cache,
        verbosity,
        &[Split::Train, Split::Val, Split::Test],
    )?;
    let (tr, va, te) = (&sets[0], &sets[1], &sets[2]);
    let t = &config.train;
    println!(
        "{} ({} train x {} features, {} classes): specialists ({:?} weighting) x {} C + multiclass x {} C (grids extended where a best C is on an end), tol {:e}, warm start {}, {} threads",
        tr.dataset,
        tr.len(),
        tr.dim,
        tr.classes.len(),
        t.class_weight,
        t.c_grid.len(),
        t.multiclass_c_grid.len(),
        t.tol,
        t.warm_start,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!();
    println!("| lanes | fuse | fits | heads s | calibration s | specialists s | multiclass s | val acc calibrated argmax | val acc multiclass | test acc calibrated argmax | test acc multiclass |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &l in lanes {
        for &f in fuse {
            let mut cfg = t.clone();
            cfg.lanes = l;
            cfg.fuse = f;
            let o = train_ensemble(
                tr,
                va,
                &cfg,
                config.seed,
                Arc::new(AtomicBool::new(false)),
                Verbosity::Quiet,
            )?;
            let busy = |multi: bool| -> f64 {
                o.timeline
                    .iter()
                    .filter(|e| e.job.starts_with("multiclass") == multi)
                    .map(|e| e.end_s - e.start_s)
                    .sum()
            };
            let fits: usize = o.timeline.iter().map(|e| e.heads).sum();
            let (spec, multi) = test_accuracy(&o, &cfg, te)?;
            println!(
                "| {l} | {f} | {fits} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}% | {:.2}% | {:.2}% | {:.2}% |",
                o.heads_seconds,
                o.train_seconds - o.heads_seconds,
                busy(false),
                busy(true),
                100.0 * o.validation.specialists_accuracy,
                100.0 * o.validation.multiclass_accuracy,
                100.0 * spec,
                100.0 * multi
            );
        }
    }
    println!();
    println!("specialists s / multiclass s: summed busy time of those jobs over all lanes");
    Ok(())
}

fn synthetic_options(n: usize, a: &StreamBenchArgs) -> Result<super::bench_stream::SyntheticBench> {
    let dtype = match a.dtype.as_str() {
        "f32" => FeatureDtype::F32,
        "f16" => FeatureDtype::F16,
        other => return Err(Error::Usage(format!("--dtype `{other}`: allowed f32, f16"))),
    };
    if !(a.c.is_finite() && a.c > 0.0) || a.max_iter == 0 {
        return Err(Error::Usage(
            "--c must be > 0 and --max-iter at least 1".into(),
        ));
    }
    Ok(super::bench_stream::SyntheticBench {
        n,
        dim: a.dim,
        classes: a.classes,
        dtype,
        block_rows: a.block_rows,
        max_iter: a.max_iter,
        c: a.c,
        dir: a.dir.clone(),
        in_memory: a.in_memory,
    })
}

/// Test accuracy of the calibrated argmax and of the multiclass head.
fn test_accuracy(
    o: &crate::ensemble::build::TrainOutcome,
    cfg: &crate::ensemble::TrainParams,
    te: &crate::features::store::FeatureSet,
) -> Result<(f64, f64), crate::heads::HeadError> {
    let (n, d, k) = (te.len(), te.dim, te.classes.len());
    let x = o.weights.standardizer.try_apply(&te.features)?;
    let mut z = vec![0f32; n * k];
    for (c, h) in o.weights.specialists.iter().enumerate() {
        for (i, v) in h.logits(&x, n, d)?.into_iter().enumerate() {
            z[i * k + c] = v;
        }
    }
    let combiner = cfg.combiner.unwrap_or(o.calibration.selection.chosen);
    let p = o.calibration.specialists.probs(combiner, &z, n);
    let m: Vec<f64> = o
        .weights
        .multiclass
        .logits(&x, n, d)?
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let acc = |q: &[f64]| {
        q.chunks_exact(k)
            .zip(&te.labels)
            .filter(|(r, &y)| crate::calibration::joint::argmax(r) == y as usize)
            .count() as f64
            / n.max(1) as f64
    };
    Ok((acc(&p), acc(&m)))
}
