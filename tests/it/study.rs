//! `ovr study` as a user runs it, and the fine-tune's promise: only the
//! layers above the cut change, the training loss goes down, and the
//! trained top on cached activations equals the rebuilt network on pixels.

use std::path::Path;
use std::process::Command;

use candle_core::{Device, Tensor};
use ovr::assets::cache::sha256_file;
use ovr::features::backbone::Backbone;
use ovr::features::efficientnet_lite::top::CutBackbone;
use ovr::features::efficientnet_lite::{DepthwiseImpl, EfficientNetLite, LiteVariant};
use ovr::heads::finetune::{finetune, finetune_logits, FinetuneSpec};
use ovr::heads::ClassWeighting;

use super::common::{lite_weights, small_tree};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every shard file under the per-content feature caches, with its length.
fn shards(cache: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let root = cache.join("features").join("by-content");
    for d in std::fs::read_dir(&root).unwrap().flatten() {
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            let len = f.metadata().unwrap().len();
            out.push((f.path().display().to_string(), len));
        }
    }
    out.sort();
    out
}

#[test]
fn study_runs_every_arm_and_a_second_run_reuses_every_feature() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(cache.join("weights")).unwrap();
    for id in ["efficientnet-lite0", "efficientnet-lite1"] {
        let src = lite_weights(id);
        std::fs::copy(
            &src,
            cache.join("weights").join(format!("{id}.safetensors")),
        )
        .unwrap();
    }
    let root = dir.path().join("shapes");
    small_tree(&root, 10);
    let study = dir.path().join("study.toml");
    std::fs::write(
        &study,
        format!(
            r#"
seed = 3
[dataset]
kind = "image-folder"
root = "{}"
[train]
c_grid = [0.01, 0.1]
multiclass_c_grid = [0.01, 0.1]
[train.mlp]
hidden = [16]
max_epochs = 5
[study]
name = "tiny"
reference = "c"
resamples = 50
[[study.arms]]
name = "a"
backbone = ["efficientnet-lite0", "efficientnet-lite1"]
features = "logits"
head = "multiclass-mlp"
[[study.arms]]
name = "c"
head = "multiclass-linear"
[[study.arms]]
name = "d"
head = "specialists-linear"
[[study.arms]]
name = "e"
head = "specialists-mlp"
[[study.arms]]
name = "f"
head = "finetune"
finetune = {{ blocks = 1, epochs = 2, batch_size = 4 }}
"#,
            root.display()
        ),
    )
    .unwrap();
    let md = dir.path().join("out.md");
    let json = dir.path().join("out.json");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_ovr"))
            .args(["study", study.to_str().unwrap(), "--markdown"])
            .arg(&md)
            .arg("--json")
            .arg(&json)
            .env("OVR_CACHE", &cache)
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for row in [
        "| a | efficientnet-lite0:logits+efficientnet-lite1:logits (2000-d) | multiclass-mlp |",
        "| c | efficientnet-lite0 (1280-d) | multiclass-linear |",
        "| d | efficientnet-lite0 (1280-d) | specialists-linear |",
        "| e | efficientnet-lite0 (1280-d) | specialists-mlp |",
        "| f | efficientnet-lite0-cut15 activations (9408-d) | finetune |",
    ] {
        assert!(stdout.contains(row), "missing `{row}` in\n{stdout}");
    }
    assert!(stdout.contains("reference"), "{stdout}");
    // Arms c and d share one training run (same resolved config).
    assert!(stdout.contains("(= c)"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&md).unwrap(), stdout);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["arms"].as_array().unwrap().len(), 5);
    assert!(v["arms"][0]["vs_reference"]["bootstrap"]["accuracy"]["low"].is_number());
    let before = shards(&cache);
    // lite0 and lite1 per content, plus the cut activations.
    let dirs: std::collections::BTreeSet<String> = before
        .iter()
        .map(|(p, _)| Path::new(p).parent().unwrap().display().to_string())
        .collect();
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    let again = run();
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        shards(&cache),
        before,
        "the second run computed features again"
    );
    // Same seed, same cached features: the same table (timings aside).
    let rows = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("| "))
            .map(|l| l.rsplitn(3, '|').nth(2).unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(rows(&text(&again.stdout)), rows(&stdout));
}

fn pixels(n: usize, size: usize, seed: u64) -> Tensor {
    let v: Vec<f32> = (0..n * 3 * size * size)
        .map(|i| {
            let x = (i as u64).wrapping_mul(2654435761).wrapping_add(seed * 97) % 256;
            x as f32
        })
        .collect();
    Tensor::from_vec(v, (n, 3, size, size), &Device::Cpu).unwrap()
}

#[test]
fn finetuning_the_top_block_changes_only_the_weights_above_the_cut() {
    let p = lite_weights("efficientnet-lite0");
    let net = EfficientNetLite::load(
        LiteVariant::Lite0,
        &p,
        sha256_file(&p).unwrap(),
        DepthwiseImpl::Direct,
    )
    .unwrap();
    let cut = net.block_count() - 1;
    let bottom = CutBackbone::new(net.clone(), cut).unwrap();
    let (x_px, v_px) = (pixels(12, 224, 1), pixels(6, 224, 2));
    let x = bottom.features(&x_px).unwrap();
    let xv = bottom.features(&v_px).unwrap();
    assert_eq!(x.dims(), &[12, 192 * 7 * 7]);
    let labels: Vec<u32> = (0..12).map(|i| i % 3).collect();
    let lv: Vec<u32> = (0..6).map(|i| i % 3).collect();
    let spec = FinetuneSpec {
        epochs: 4,
        patience: 4,
        batch_size: 4,
        lr: 1e-3,
        head_lr: 1e-2,
        ..FinetuneSpec::default()
    };
    let top = net.top_weights(cut).unwrap();
    let fit = finetune(
        top,
        (&x, &labels),
        (&xv, &lv),
        3,
        ClassWeighting::Balanced,
        &spec,
        5,
        &|_, _, _| {},
    )
    .unwrap();
    let (first, last) = (
        fit.history.train_loss[0],
        *fit.history.train_loss.last().unwrap(),
    );
    assert!(last < first, "training loss {first} -> {last}");

    let tuned = net.with_top(&fit.top).unwrap();
    let (before, after) = (net.folded_state().unwrap(), tuned.folded_state().unwrap());
    assert_eq!(before.len(), after.len());
    for ((name, a), (name2, b)) in before.iter().zip(&after) {
        assert_eq!(name, name2);
        let above = name.starts_with(&format!("blocks.{cut}.")) || name.starts_with("head.");
        if above {
            assert_ne!(a, b, "{name} was not trained");
        } else {
            assert_eq!(a, b, "{name} is below the cut but changed");
        }
    }
    // The trained top on cached activations = the rebuilt network on pixels.
    let pooled = tuned.features(&v_px).unwrap();
    let fc = Tensor::from_slice(&fit.fc.w, (fit.fc.inputs, fit.fc.outputs), &Device::Cpu).unwrap();
    let fb = Tensor::from_slice(&fit.fc.b, fit.fc.outputs, &Device::Cpu).unwrap();
    let direct: Vec<f32> = pooled
        .matmul(&fc)
        .unwrap()
        .broadcast_add(&fb)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let cached = finetune_logits(&fit, &xv).unwrap();
    let scale = direct.iter().fold(1f32, |m, v| m.max(v.abs()));
    for (a, b) in cached.iter().zip(&direct) {
        assert!((a - b).abs() / scale < 1e-4, "{a} vs {b}");
    }
}
