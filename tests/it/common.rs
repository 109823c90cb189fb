//! Shared helpers: the cache, real assets fetched once, small image trees.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ovr::assets::archive::extract_zip_member;
use ovr::assets::cache::Cache;
use ovr::assets::clients::fetch_pinned;
use ovr::assets::pins::{SKLEARN_SAMPLE_PHOTOS, SKLEARN_WHEEL};
use ovr::assets::weights::fetch_weights;

static FETCH: Mutex<()> = Mutex::new(());

/// The user cache (`$OVR_CACHE` or ~/.cache/ovr), where CI fetched the assets.
pub fn cache() -> Cache {
    Cache::from_env(None).expect("cache dir")
}

/// Converted weights of a Lite variant, fetched on first use.
pub fn lite_weights(id: &str) -> PathBuf {
    let _g = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    fetch_weights(&cache(), id)
        .unwrap_or_else(|e| panic!("cannot fetch {id} weights (needs pip and network once): {e}"))
        .path
}

/// scikit-learn's sample photo `china` or `flower` (JPEG), fetched on first use.
pub fn sample_photo(stem: &str) -> PathBuf {
    let _g = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let c = cache();
    let member = SKLEARN_SAMPLE_PHOTOS
        .iter()
        .find(|p| p.0 == stem)
        .map(|p| p.1)
        .expect("known photo");
    let dest = c.datasets_dir().join("samples").join(format!("{stem}.jpg"));
    if !dest.exists() {
        let wheel = fetch_pinned(&c, &SKLEARN_WHEEL).expect("scikit-learn wheel (pip download)");
        extract_zip_member(&wheel, member, &dest).expect("extract photo");
    }
    dest
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The command line pointing `ovr` at an ImageFolder tree and local Lite
/// weights, followed by `rest`.
pub fn image_folder_args(root: &Path, weights: &Path, rest: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "--set".into(),
        "dataset.kind=image-folder".into(),
        "--set".into(),
        format!("dataset.root=\"{}\"", root.display()),
        "--set".into(),
        format!("backbone.weights=\"{}\"", weights.display()),
    ];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

/// Writes a PNG of `w x h` with a colour that depends on `seed`.
pub fn write_png(path: &Path, w: u32, h: u32, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            seed.wrapping_mul(37),
            (x as u8).wrapping_add(seed),
            (y as u8).wrapping_mul(3),
        ])
    });
    img.save(path).unwrap();
}

/// `root/<class>/<n>.png` for two classes, `per_class` images each.
pub fn small_tree(root: &Path, per_class: usize) {
    for (c, name) in ["circle", "square"].iter().enumerate() {
        for i in 0..per_class {
            write_png(
                &root.join(name).join(format!("{i}.png")),
                20 + i as u32,
                16,
                (c * 50 + i) as u8,
            );
        }
    }
}

/// Runs the `ovr` binary with `$OVR_CACHE` set to `cache`.
pub fn ovr<S: AsRef<std::ffi::OsStr>>(args: &[S], cache: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ovr"))
        .args(args)
        .env("OVR_CACHE", cache)
        .output()
        .expect("run ovr")
}

/// Bytes of stdout / stderr as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Blocks until the feature shards under `cache/features/by-content/`
/// number at least `n` (polled every millisecond), so a test can kill
/// `ovr extract` processes mid-run by their progress, not by a sleep that a
/// faster engine outruns. Panics after five minutes.
pub fn wait_for_shards(cache: &Path, n: usize) {
    let count = || {
        let Ok(dirs) = std::fs::read_dir(cache.join("features/by-content")) else {
            return 0;
        };
        dirs.filter_map(|d| std::fs::read_dir(d.ok()?.path()).ok())
            .flatten()
            .filter(|e| {
                let n = e.as_ref().map(|e| e.file_name()).unwrap_or_default();
                n.to_string_lossy().starts_with("shard-")
            })
            .count()
    };
    let t0 = std::time::Instant::now();
    while count() < n {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(300),
            "fewer than {n} shards cached after 300 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
