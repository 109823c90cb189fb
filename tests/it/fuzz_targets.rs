//! The fuzz targets (harness in `fuzz.rs`), 2,000 cases each: the legacy
//! `.pth` reader with its pickle VM, the IDX reader, the feature-cache
//! shard reader and the exported feature sets, the config parser, and image
//! decoding. Limits on a single allocation, per target:
//! - `.pth`: 8 x the input (the reader's output budget) + 1 MiB;
//! - IDX: 1 MiB + 2 x the decompressed data the file actually holds (the
//!   header's sizes only reserve up to 1 MiB);
//! - shards / feature sets: 4 x the input + 1 MiB (safetensors checks its
//!   offsets against the buffer before any tensor is copied);
//! - config: 64 x the input + 1 MiB;
//! - images: the image crate's default decoder limit (512 MiB) + 64 MiB.

use std::io::{Cursor, Write};
use std::path::Path;

use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};
use ovr::assets::torch_legacy::read_legacy_state_dict_file;
use ovr::config::Config;
use ovr::features::store::{FeatureCache, FeatureSet};
use ovr::images::decode::{prepare, DecodeOptions};
use ovr::images::idx::{read_idx_images, read_idx_labels};

use super::fuzz::{campaign, names, Seed};

const CASES: usize = 2000;
const MIB: usize = 1 << 20;

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(super::common::fixture(rel)).unwrap()
}

/// Offsets just after pickle opcodes that carry a length or an int.
fn pickle_fields(b: &[u8]) -> Vec<usize> {
    (0..b.len())
        .filter(|&i| b"XBTJKMCUhqrj".contains(&b[i]))
        .map(|i| i + 1)
        .collect()
}

#[test]
fn fuzz_legacy_pth_reader() {
    let seeds: Vec<Seed> = ["small.pth", "evil_os_system.pth", "truncated.pth"]
        .iter()
        .map(|f| {
            let bytes = fixture(&format!("torch_legacy/{f}"));
            Seed {
                fields: pickle_fields(&bytes),
                keep: 12,
                bytes,
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    campaign(
        "legacy .pth",
        &seeds,
        CASES,
        |n| 8 * n + MIB,
        |i, input| {
            let path = dir.path().join(format!("case-{i}.pth"));
            std::fs::write(&path, input).unwrap();
            let r = read_legacy_state_dict_file(&path);
            std::fs::remove_file(&path).unwrap();
            match r {
                Ok(tensors) => {
                    for (name, t) in &tensors {
                        let want = t.numel() * t.dtype.element_size();
                        if t.data.len() != want {
                            return Err(format!("{name}: {} bytes for {want}", t.data.len()));
                        }
                    }
                    Ok(true)
                }
                Err(e) => names(e.to_string(), &path.display().to_string()),
            }
        },
    );
}

fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn fuzz_idx_reader() {
    let pixels: Vec<u8> = (0..6 * 5 * 4).map(|i| (i * 7) as u8).collect();
    let images = idx_bytes(0x803, &[6, 5, 4], &pixels);
    let labels = idx_bytes(0x801, &[6], &[0, 1, 2, 3, 4, 5]);
    let seeds = vec![
        Seed {
            fields: vec![0, 4, 8, 12],
            keep: 4,
            bytes: images.clone(),
        },
        Seed {
            fields: vec![0, 4],
            keep: 4,
            bytes: labels.clone(),
        },
        Seed {
            fields: vec![],
            keep: 10,
            bytes: gz(&images),
        },
        Seed {
            fields: vec![],
            keep: 10,
            bytes: gz(&labels),
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    campaign(
        "idx",
        &seeds,
        CASES,
        |n| MIB + 2 * 1032 * n,
        |i, input| {
            let path = dir.path().join(format!("case-{i}.idx"));
            std::fs::write(&path, input).unwrap();
            let p = path.display().to_string();
            let r = if i % 2 == 0 {
                read_idx_images(&path).map(|im| {
                    (im.pixels.len() == im.count * im.rows * im.cols)
                        .then_some(())
                        .ok_or(format!("{} pixels for {im:?}", im.pixels.len()))
                })
            } else {
                read_idx_labels(&path).map(|_| Ok(()))
            };
            std::fs::remove_file(&path).unwrap();
            match r {
                Ok(check) => check.map(|()| true),
                Err(e) => names(e.to_string(), &p),
            }
        },
    );
}

#[test]
fn fuzz_feature_shard_reader() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let dim = 4;
    let entries: Vec<(String, Vec<f32>)> = (0..3)
        .map(|i| {
            (
                format!("{i:064x}"),
                (0..dim).map(|j| (i * dim + j) as f32 * 0.5).collect(),
            )
        })
        .collect();
    let (mut c, _) = FeatureCache::open(&src, dim).unwrap();
    let shard = c.append(entries.clone()).unwrap().unwrap();
    let name = shard.file_name().unwrap().to_owned();
    let bytes = std::fs::read(&shard).unwrap();
    let seed = Seed {
        fields: vec![0, 1, 2, 3],
        keep: 8,
        bytes,
    };
    campaign(
        "feature shard",
        &[seed],
        CASES,
        |n| 4 * n + MIB,
        |i, input| {
            let d = dir.path().join(format!("case-{i}"));
            std::fs::create_dir(&d).unwrap();
            let path = d.join(&name);
            std::fs::write(&path, input).unwrap();
            let (cache, bad) = FeatureCache::open(&d, dim).map_err(|e| e.to_string())?;
            let out = match bad.as_slice() {
                [] => {
                    // Accepted only when every cached value is the original.
                    for (h, v) in &entries {
                        if cache.get(h).map_err(|e| e.to_string())?.as_deref() != Some(v.as_slice())
                        {
                            return Err(format!("accepted a changed shard: {h}"));
                        }
                    }
                    Ok(true)
                }
                [b] if b.path == path && b.moved_to.is_ok() && cache.is_empty() => {
                    names(b.reason.clone(), &path.display().to_string())
                }
                other => Err(format!("{other:?}")),
            };
            std::fs::remove_dir_all(&d).unwrap();
            out
        },
    );
}

#[test]
fn fuzz_exported_feature_sets() {
    let dir = tempfile::tempdir().unwrap();
    let set = FeatureSet {
        dataset: "fuzz".into(),
        split: "train".into(),
        backbone: "test".into(),
        weights_sha256: "00".into(),
        classes: vec!["a".into(), "b".into()],
        keys: vec!["a/1".into(), "b/2".into(), "a/3".into()],
        labels: vec![0, 1, 0],
        dim: 2,
        features: vec![0.5, 1.5, -2.0, 3.0, 4.25, 0.0],
    };
    let src = dir.path().join("train.safetensors");
    set.save(&src).unwrap();
    let seed = Seed {
        fields: vec![0, 1, 2, 3],
        keep: 8,
        bytes: std::fs::read(&src).unwrap(),
    };
    campaign(
        "feature set",
        &[seed],
        CASES,
        |n| 4 * n + MIB,
        |i, input| {
            let path = dir.path().join(format!("case-{i}.safetensors"));
            std::fs::write(&path, input).unwrap();
            let r = FeatureSet::load(&path);
            std::fs::remove_file(&path).unwrap();
            match r {
                Ok(s) => {
                    let k = s.classes.len() as u32;
                    let ok = s.keys.len() == s.labels.len()
                        && s.features.len() == s.labels.len() * s.dim
                        && s.labels.iter().all(|&l| l < k);
                    ok.then_some(true).ok_or(format!("inconsistent set {s:?}"))
                }
                Err(e) => names(e.to_string(), &path.display().to_string()),
            }
        },
    );
}

#[test]
fn fuzz_config_parser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let seeds: Vec<Seed> = ["emoji40.toml", "image-folder.toml", "fashion-mnist.toml"]
        .iter()
        .map(|f| {
            let bytes = std::fs::read(root.join(f)).unwrap();
            let fields = (0..bytes.len())
                .filter(|&i| bytes[i] == b'=')
                .map(|i| i + 2)
                .collect();
            Seed {
                bytes,
                fields,
                keep: 0,
            }
        })
        .collect();
    campaign(
        "config",
        &seeds,
        CASES,
        |n| 64 * n + MIB,
        |i, input| {
            let origin = format!("fuzz-case-{i}.toml");
            let text = String::from_utf8_lossy(input);
            match Config::from_toml_str(&text, &origin, &[]) {
                Ok(_) => Ok(true),
                // Syntax errors name the file; value errors name the field.
                Err(e) => {
                    let m = e.to_string();
                    if m.contains("config field `") || m.contains("override `") {
                        Ok(false)
                    } else {
                        names(m, &origin)
                    }
                }
            }
        },
    );
}

fn encoded(img: DynamicImage, f: ImageFormat) -> Vec<u8> {
    let mut b = Cursor::new(Vec::new());
    img.write_to(&mut b, f).unwrap();
    b.into_inner()
}

#[test]
fn fuzz_image_decoding() {
    let rgb = RgbImage::from_fn(13, 9, |x, y| {
        image::Rgb([(x * 19) as u8, (y * 27) as u8, 90])
    });
    let rgba = RgbaImage::from_fn(7, 11, |x, y| {
        image::Rgba([(x * 30) as u8, 5, (y * 20) as u8, (x * y) as u8])
    });
    let gray = DynamicImage::ImageRgb8(rgb.clone()).to_luma8();
    let seeds: Vec<Seed> = [
        encoded(DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Png),
        encoded(DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Png),
        encoded(DynamicImage::ImageLuma8(gray), ImageFormat::Png),
        encoded(DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Jpeg),
        encoded(DynamicImage::ImageRgba8(rgba), ImageFormat::Gif),
        encoded(DynamicImage::ImageRgb8(rgb), ImageFormat::Bmp),
    ]
    .into_iter()
    .map(|bytes| Seed {
        // Width/height fields: PNG IHDR (16, 20), BMP (18, 22), GIF (6, 8).
        fields: vec![6, 8, 16, 18, 20, 22],
        keep: 8,
        bytes,
    })
    .collect();
    campaign(
        "image decoding",
        &seeds,
        CASES,
        |_| 576 * MIB,
        |_, input| match prepare(input, 16, &DecodeOptions::default()) {
            Ok(x) => (x.len() == 3 * 16 * 16)
                .then_some(true)
                .ok_or(format!("{} values", x.len())),
            // prepare sees bytes only; its callers add the path.
            Err(e) => (!e.to_string().is_empty())
                .then_some(false)
                .ok_or("empty error".to_string()),
        },
    );
}

/// Regression (found by `fuzz_idx_reader`): a 16-byte file whose header
/// declares 4 GiB of pixels reserved 256 MiB before reading any data.
#[test]
fn idx_header_sizes_do_not_reserve_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge-header.idx");
    std::fs::write(&path, idx_bytes(0x803, &[1 << 16, 256, 256], &[])).unwrap();
    let (r, peak) = super::fuzz::peak_of(|| read_idx_images(&path));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("huge-header.idx"), "{e}");
    assert!(peak <= 2 * MIB, "reserved {peak} bytes for a 16-byte file");
}
