//! `ovr bench decode DIR`: decode + resize throughput alone (no network),
//! with the configured preprocessing (`[extract]`) and decoder threads, for
//! comparing the decode stage with other pipelines (benches/photos_vs_pillow.sh).
//! Prints images/s, the DCT scales used and the process's peak RSS.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::config::Config;
use crate::features::efficientnet_lite::LiteVariant;
use crate::images::dataset::IMAGE_EXTENSIONS;
use crate::images::decode::{self as dec, read_image_file};
use crate::images::resize::to_input;
use crate::{Error, Result};

fn image_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            image_files(&p, out)?;
        } else if p
            .extension()
            .map(|e| IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()))
            .unwrap_or(false)
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Peak resident set size of this process in kB (`VmHWM`), where Linux has it.
pub fn peak_rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn decode(config: &Config, dir: &Path, threads: Option<usize>, repeat: usize) -> Result<()> {
    let mut files = Vec::new();
    image_files(dir, &mut files)?;
    if files.is_empty() {
        return Err(Error::Usage(format!("no images under {}", dir.display())));
    }
    let size = LiteVariant::from_id(&config.backbone.name)
        .map(|v| v.input_size())
        .unwrap_or(224);
    let opts = config.extract.decode_options();
    let threads = threads.unwrap_or(config.extract.decode_threads).max(1);
    let mut best = f64::INFINITY;
    let scales: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());
    let failed = AtomicUsize::new(0);
    for _ in 0..repeat.max(1) {
        let next = AtomicUsize::new(0);
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = files.get(i) else { break };
                    let r = read_image_file(p, &opts).and_then(|b| {
                        let d = dec::decode(&b, size, &opts)?;
                        to_input(&d.rgb, size, opts.resize, opts.filter, d.orientation)?;
                        Ok(d.denom)
                    });
                    match r {
                        Ok(denom) => {
                            let mut m = scales.lock().unwrap_or_else(|e| e.into_inner());
                            *m.entry(denom).or_default() += 1;
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!(
                                "warning: {}: {}",
                                p.display(),
                                crate::util::chain::chain(&e)
                            );
                        }
                    }
                });
            }
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    let n = files.len();
    let scales = scales.into_inner().unwrap_or_else(|e| e.into_inner());
    let scales: Vec<String> = scales
        .iter()
        .map(|(d, c)| format!("1/{d}: {}", c / repeat.max(1)))
        .collect();
    println!(
        "decode {} images ({}) at {size}px, {threads} threads, {}: best of {}: {:.3} s, {:.1} images/s; failed {}; DCT scales [{}]; peak RSS {} MB",
        n,
        dir.display(),
        opts.cache_tag(),
        repeat.max(1),
        best,
        n as f64 / best,
        failed.load(Ordering::Relaxed) / repeat.max(1),
        scales.join(", "),
        peak_rss_kb().map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0))
    );
    Ok(())
}
