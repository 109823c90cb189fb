//! Tests of `emoji40`.

use super::*;
use crate::util::choice::Choice;
use serde_json::json;
use std::collections::HashMap;

/// Classes "a" (30 emojis), "b" (20), "c" (16), "d" (16), plus entries
/// that must be filtered out (category Component, no image).
fn synthetic_json() -> serde_json::Value {
    let mut v = Vec::new();
    let mut id = 0x1000;
    let groups = [("d", 16, "Things", true), ("a", 30, "Things", true)];
    let more = [("c", 16, "Things", true), ("b", 20, "Things", true)];
    let noise = [
        ("skin-tone", 50, "Component", true),
        ("noimg", 50, "Things", false),
    ];
    for (sub, n, category, img) in groups.into_iter().chain(more).chain(noise) {
        for _ in 0..n {
            v.push(
                json!({"unified": format!("{id:X}"), "image": format!("{id:x}.png"),
                "category": category, "subcategory": sub, "sort_order": id,
                "has_img_twitter": img, "has_img_google": img, "skin_variations": null}),
            );
            id += 1;
        }
    }
    serde_json::Value::Array(v)
}

fn synthetic() -> Vec<EmojiEntry> {
    serde_json::from_value(synthetic_json()).unwrap()
}

fn plan(opts: &Emoji40Options, classes: usize) -> Vec<(String, String, Split)> {
    let classes = select_classes(&synthetic(), classes).unwrap();
    let names: Vec<&str> = classes.iter().map(|c| c.name.as_str()).collect();
    let sizes: Vec<usize> = classes.iter().map(|c| c.emojis.len()).collect();
    let splits = assign_splits(&names, &sizes, opts).unwrap();
    let mut out = Vec::new();
    for (c, s) in classes.iter().zip(splits) {
        for (e, split) in c.emojis.iter().zip(s) {
            out.push((c.name.clone(), e.unified.clone(), split));
        }
    }
    out
}

fn fractions(val_fraction: f64, test_fraction: f64) -> Emoji40Options {
    let d = Emoji40Options::default();
    Emoji40Options {
        val_fraction,
        test_fraction,
        ..d
    }
}

#[test]
fn selection_filters_ranks_and_breaks_ties_by_name() {
    let classes = select_classes(&synthetic(), 3).unwrap();
    let got: Vec<_> = classes
        .iter()
        .map(|c| (c.name.as_str(), c.emojis.len()))
        .collect();
    assert_eq!(got, vec![("a", 30), ("b", 20), ("c", 16)]);
    let err = select_classes(&synthetic(), 5).unwrap_err();
    assert!(matches!(
        err,
        Emoji40Error::NotEnoughClasses { available: 4, .. }
    ));
    assert_eq!(class_dir_name("sky & weather"), "sky-and-weather");
    assert_eq!(class_dir_name("person-role"), "person-role");
}

#[test]
fn split_is_disjoint_stratified_and_seeded() {
    let opts = Emoji40Options::default();
    let p = plan(&opts, 4);
    let ids: HashSet<&str> = p.iter().map(|(_, u, _)| u.as_str()).collect();
    assert_eq!(ids.len(), p.len(), "each emoji has exactly one split");
    for (class, n) in [("a", 30), ("b", 20), ("c", 16), ("d", 16)] {
        let count = |s| p.iter().filter(|(c, _, x)| c == class && *x == s).count();
        let expect = ((0.2 * n as f64).round()) as usize;
        assert_eq!(count(Split::Test), expect, "{class}");
        assert_eq!(count(Split::Val), expect, "{class}");
        assert_eq!(count(Split::Train), n - 2 * expect, "{class}");
    }
    assert_eq!(plan(&opts, 4), p, "deterministic for a seed");
    let other = plan(&Emoji40Options { seed: 1, ..opts }, 4);
    assert_ne!(other, p, "another seed gives another split");
}

#[test]
fn tiny_classes_and_bad_options() {
    let s = assign_splits(&["x"], &[3], &fractions(0.01, 0.01)).unwrap();
    let mut sorted = s[0].clone();
    sorted.sort();
    assert_eq!(sorted, vec![Split::Train, Split::Val, Split::Test]);
    let s = assign_splits(&["x"], &[4], &fractions(0.45, 0.45)).unwrap();
    assert!(s[0].contains(&Split::Train));
    let err = assign_splits(&["x"], &[2], &fractions(0.2, 0.2)).unwrap_err();
    assert!(matches!(err, Emoji40Error::ClassTooSmall { emojis: 2, .. }));
    let err = assign_splits(&["x"], &[10], &fractions(0.6, 0.5)).unwrap_err();
    assert!(matches!(err, Emoji40Error::InvalidOptions { .. }));
}

fn tgz(path: &Path, files: &[(String, Vec<u8>)]) {
    let gz =
        flate2::write::GzEncoder::new(fs::File::create(path).unwrap(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

/// End to end on fake packs: both styles of an emoji land in one split,
/// a missing image is recorded, the tree is reused, other settings refused.
#[test]
fn build_from_fake_packs() {
    let dir = tempfile::tempdir().unwrap();
    let packs = [0, 1, 2].map(|i| dir.path().join(format!("p{i}.tgz")));
    let json = serde_json::to_vec(&synthetic_json()).unwrap();
    tgz(&packs[0], &[(EMOJI_JSON.to_string(), json)]);
    for (style, pack) in STYLES.iter().zip(&packs[1..]) {
        let files: Vec<(String, Vec<u8>)> = synthetic()
            .iter()
            .filter(|e| !(*style == "google" && e.unified == "1010"))
            .map(|e| {
                let png = [&b"\x89PNG\r\n\x1a\n"[..], e.unified.as_bytes()].concat();
                (format!("package/img/{style}/64/{}", e.image), png)
            })
            .collect();
        tgz(pack, &files);
    }
    let root = dir.path().join("datasets/emoji40");
    let opts = Emoji40Options {
        classes: 3,
        ..Default::default()
    };
    let s = build_emoji40_from(&root, &packs, &opts).unwrap();
    assert_eq!(
        s.classes,
        vec![("a".into(), 30), ("b".into(), 20), ("c".into(), 16)]
    );
    assert_eq!(s.images_per_split.iter().sum::<usize>(), 2 * 66 - 1);
    assert_eq!(s.missing_images, vec!["google/1010.png".to_string()]);
    assert!(!s.already_present);
    let mut split_of: HashMap<String, HashSet<&str>> = HashMap::new();
    for split in Split::ALL {
        for class in fs::read_dir(root.join(split.name())).unwrap() {
            for f in fs::read_dir(class.unwrap().path()).unwrap() {
                let name = f.unwrap().file_name().to_string_lossy().into_owned();
                let unified = name.split('-').next().unwrap().to_string();
                split_of.entry(unified).or_default().insert(split.name());
            }
        }
    }
    assert_eq!(split_of.len(), 66);
    assert!(
        split_of.values().all(|s| s.len() == 1),
        "an emoji straddles splits"
    );
    let again = build_emoji40_from(&root, &packs, &opts).unwrap();
    assert!(again.already_present && again.images_per_split == s.images_per_split);
    let other = build_emoji40_from(&root, &packs, &Emoji40Options { seed: 9, ..opts });
    assert!(matches!(other, Err(Emoji40Error::ExistingMismatch { .. })));
    let left: Vec<_> = fs::read_dir(root.parent().unwrap()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temp dirs left");
}

/// The real build (~160 MB of tarballs from `$OVR_TEST_ASSETS`, default
/// /tmp/assets). `cargo test --release --lib images::emoji40 -- --ignored --nocapture`
#[test]
#[ignore = "needs the ~160 MB npm tarballs in $OVR_TEST_ASSETS (default /tmp/assets)"]
fn real_build_from_local_tarballs() {
    let assets = std::env::var("OVR_TEST_ASSETS").unwrap_or_else(|_| "/tmp/assets".into());
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().to_path_buf());
    fs::create_dir_all(cache.downloads_dir()).unwrap();
    for pin in [&EMOJI_DATASOURCE, &EMOJI_TWITTER, &EMOJI_GOOGLE] {
        let to = cache.downloads_dir().join(pin.file_name);
        fs::copy(Path::new(&assets).join(pin.file_name), to).unwrap();
    }
    let s = build_emoji40(&cache, &Emoji40Options::default()).unwrap();
    for (i, (name, n)) in s.classes.iter().enumerate() {
        println!("{:2} {name:<24} {n}", i + 1);
    }
    println!(
        "images per split {:?}; missing {:?}",
        s.images_per_split, s.missing_images
    );
    assert_eq!(
        (s.classes.len(), s.images_per_split),
        (40, [1730, 560, 560])
    );
    assert!(
        build_emoji40(&cache, &Emoji40Options::default())
            .unwrap()
            .already_present
    );
}
