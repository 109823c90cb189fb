//! Images stage (stage 1): builds the `emoji40` ImageFolder dataset from the
//! pinned npm packs fetched by the assets stage.
//!
//! `emoji.json` (emoji-datasource) gives each base emoji a category and
//! subcategory; base emojis outside category "Component" that have both a
//! Twitter and a Google image are grouped by subcategory, and the `classes`
//! largest subcategories (ties by name) become the classes. Each emoji is
//! assigned to one split (stratified per class, seeded), and both of its
//! 64 px PNGs go there:
//! `<cache>/datasets/emoji40/{train,val,test}/<class>/<unified>-{twitter,google}.png`
//! with a `manifest.json` at the root. Class directory names are path-safe
//! slugs of the subcategory (`sky & weather` -> `sky-and-weather`). The tree
//! is built in a temp dir and renamed into place; an existing tree built with
//! the same settings is reused, one with other settings is an error (delete it).

use crate::util::choice::Choice;
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::assets::archive::{safe_relative_name, visit_tgz};
use crate::assets::atomic_dir::build_dir_atomic;
use crate::assets::cache::{write_atomic, AssetError, Cache};
use crate::assets::clients::fetch_pinned;
use crate::assets::pins::{EMOJI_DATASOURCE, EMOJI_GOOGLE, EMOJI_TWITTER};

#[derive(Debug, thiserror::Error)]
pub enum Emoji40Error {
    #[error(transparent)]
    Asset(#[from] AssetError),
    #[error("{archive}: no `{member}` in the package")]
    MissingMember { archive: PathBuf, member: String },
    #[error("cannot parse {path}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid option `{field}`: {detail}")]
    InvalidOptions { field: &'static str, detail: String },
    #[error("asked for {requested} classes but only {available} subcategories qualify")]
    NotEnoughClasses { requested: usize, available: usize },
    #[error("class `{class}` has {emojis} emojis: at least 3 are needed for train/val/test")]
    ClassTooSmall { class: String, emojis: usize },
    #[error("emoji.json field `{field}` has a value unsafe as a file name: {value:?}")]
    UnsafeField { field: &'static str, value: String },
    #[error("{path} exists but was built differently ({detail}); delete it to rebuild")]
    ExistingMismatch { path: PathBuf, detail: String },
    #[error("{path} exists but has no readable manifest.json; delete it to rebuild")]
    ExistingUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} exists but its manifest.json is unparsable; delete it to rebuild")]
    ExistingUnparsable {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Options of the build; the defaults are the canonical emoji40.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Emoji40Options {
    pub seed: u64,
    pub classes: usize,
    pub val_fraction: f64,
    pub test_fraction: f64,
}

impl Default for Emoji40Options {
    fn default() -> Self {
        Emoji40Options {
            seed: 0,
            classes: 40,
            val_fraction: 0.2,
            test_fraction: 0.2,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Emoji40Summary {
    /// `<cache>/datasets/emoji40`, holding `train/`, `val/`, `test/`, `manifest.json`.
    pub root: PathBuf,
    /// (class directory name, emojis in the class), largest class first.
    pub classes: Vec<(String, usize)>,
    /// PNG files written per split: [train, val, test].
    pub images_per_split: [usize; 3],
    pub already_present: bool,
    /// Images listed in emoji.json but absent from a tarball (`<style>/<image>`), skipped.
    pub missing_images: Vec<String>,
}

use super::dataset::stratified_split;
pub use super::dataset::Split;

/// Image styles, each from its own pinned tarball.
pub const STYLES: [&str; 2] = ["twitter", "google"];
const IMAGE_SIZE: u32 = 64;
const MANIFEST: &str = "manifest.json";
const EMOJI_JSON: &str = "package/emoji.json";

/// The fields of an `emoji.json` entry used here (skin variations, nested
/// inside base entries, are ignored: only base emojis are kept).
#[derive(Debug, Clone, Deserialize)]
pub struct EmojiEntry {
    pub unified: String,
    #[serde(default)]
    pub name: Option<String>,
    pub image: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub subcategory: String,
    #[serde(default)]
    pub sort_order: u32,
    #[serde(default)]
    pub has_img_twitter: bool,
    #[serde(default)]
    pub has_img_google: bool,
}

/// One class: its directory name, source subcategory and emojis (sorted by
/// `sort_order`, then `unified`).
#[derive(Debug, Clone)]
pub struct EmojiClass {
    pub name: String,
    pub subcategory: String,
    pub emojis: Vec<EmojiEntry>,
}

/// Path-safe class name: lowercase ASCII alphanumerics and single dashes,
/// `&` spelled `and` (`"sky & weather"` -> `"sky-and-weather"`).
pub fn class_dir_name(subcategory: &str) -> String {
    let mut out = String::new();
    for c in subcategory.replace('&', " and ").chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn check_options(opts: &Emoji40Options) -> Result<(), Emoji40Error> {
    let bad = |field, detail: String| Err(Emoji40Error::InvalidOptions { field, detail });
    if opts.classes == 0 {
        return bad("classes", "must be at least 1".into());
    }
    for (field, f) in [
        ("val_fraction", opts.val_fraction),
        ("test_fraction", opts.test_fraction),
    ] {
        if !(0.0..1.0).contains(&f) {
            return bad(field, format!("{f} is not in [0, 1)"));
        }
    }
    if opts.val_fraction + opts.test_fraction >= 1.0 {
        return bad(
            "val_fraction",
            "val + test fractions must be below 1".into(),
        );
    }
    Ok(())
}

/// Keeps base emojis outside "Component" with both images, groups them by
/// subcategory and returns the `classes` largest groups (ties by name).
pub fn select_classes(
    entries: &[EmojiEntry],
    classes: usize,
) -> Result<Vec<EmojiClass>, Emoji40Error> {
    let mut groups: BTreeMap<&str, Vec<EmojiEntry>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for e in entries {
        if e.category == "Component" || !e.has_img_twitter || !e.has_img_google {
            continue;
        }
        if seen.insert(e.unified.as_str()) {
            groups.entry(&e.subcategory).or_default().push(e.clone());
        }
    }
    let mut ranked: Vec<(&str, Vec<EmojiEntry>)> = groups.into_iter().collect();
    ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(b.0)));
    if ranked.len() < classes {
        return Err(Emoji40Error::NotEnoughClasses {
            requested: classes,
            available: ranked.len(),
        });
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(classes);
    for (subcategory, mut emojis) in ranked.into_iter().take(classes) {
        let name = class_dir_name(subcategory);
        if name.is_empty() || !names.insert(name.clone()) {
            return Err(Emoji40Error::UnsafeField {
                field: "subcategory",
                value: subcategory.to_string(),
            });
        }
        emojis.sort_by(|a, b| (a.sort_order, &a.unified).cmp(&(b.sort_order, &b.unified)));
        out.push(EmojiClass {
            name,
            subcategory: subcategory.to_string(),
            emojis,
        });
    }
    Ok(out)
}

/// Assigns each member of each class (given by size, members in a fixed
/// order) to a split: per class `n_test = round(test_fraction * n)`,
/// `n_val = round(val_fraction * n)`, each at least 1, train at least 1.
pub fn assign_splits(
    class_names: &[&str],
    class_sizes: &[usize],
    opts: &Emoji40Options,
) -> Result<Vec<Vec<Split>>, Emoji40Error> {
    check_options(opts)?;
    let mut out = Vec::with_capacity(class_sizes.len());
    for (ci, &n) in class_sizes.iter().enumerate() {
        if n < 3 {
            return Err(Emoji40Error::ClassTooSmall {
                class: class_names.get(ci).copied().unwrap_or("?").to_string(),
                emojis: n,
            });
        }
        out.push(stratified_split(
            n,
            opts.val_fraction,
            opts.test_fraction,
            opts.seed,
            ci as u64,
        ));
    }
    Ok(out)
}

/// What must match for an existing tree to be reused (pins, options, format).
fn settings_of(opts: &Emoji40Options) -> serde_json::Value {
    serde_json::json!({
        "format": 1,
        "pins": [EMOJI_DATASOURCE, EMOJI_TWITTER, EMOJI_GOOGLE],
        "seed": opts.seed,
        "classes": opts.classes,
        "val_fraction": opts.val_fraction,
        "test_fraction": opts.test_fraction,
        "image_size": IMAGE_SIZE,
        "styles": STYLES,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestClass {
    name: String,
    subcategory: String,
    emojis: usize,
    /// Emojis per split: [train, val, test].
    emojis_per_split: [usize; 3],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestEmoji {
    unified: String,
    name: Option<String>,
    class: String,
    split: Split,
    /// Image files written, relative to the dataset root.
    images: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    dataset: String,
    settings: serde_json::Value,
    classes: Vec<ManifestClass>,
    images_per_split: [usize; 3],
    missing_images: Vec<String>,
    emojis: Vec<ManifestEmoji>,
}

fn summary_of(root: &Path, m: &Manifest, already_present: bool) -> Emoji40Summary {
    Emoji40Summary {
        root: root.to_path_buf(),
        classes: m
            .classes
            .iter()
            .map(|c| (c.name.clone(), c.emojis))
            .collect(),
        images_per_split: m.images_per_split,
        already_present,
        missing_images: m.missing_images.clone(),
    }
}

/// Reuses an existing tree if its manifest has the same settings.
fn reuse_existing(
    root: &Path,
    settings: &serde_json::Value,
) -> Result<Emoji40Summary, Emoji40Error> {
    let path = root.join(MANIFEST);
    let mismatch = |detail: String| Emoji40Error::ExistingMismatch {
        path: root.to_path_buf(),
        detail,
    };
    let bytes = fs::read(&path).map_err(|source| Emoji40Error::ExistingUnreadable {
        path: root.to_path_buf(),
        source,
    })?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|source| Emoji40Error::ExistingUnparsable {
            path: root.to_path_buf(),
            source,
        })?;
    if &manifest.settings != settings {
        let s = &manifest.settings;
        return Err(mismatch(format!(
            "seed {}, {} classes, val {}, test {}, format {}",
            s["seed"], s["classes"], s["val_fraction"], s["test_fraction"], s["format"]
        )));
    }
    Ok(summary_of(root, &manifest, true))
}

fn read_emoji_json(archive: &Path) -> Result<Vec<EmojiEntry>, Emoji40Error> {
    let mut json = None;
    visit_tgz(
        archive,
        |name| name == EMOJI_JSON,
        |_, bytes| {
            json = Some(bytes);
            Ok(())
        },
    )?;
    let bytes = json.ok_or_else(|| Emoji40Error::MissingMember {
        archive: archive.to_path_buf(),
        member: EMOJI_JSON.into(),
    })?;
    serde_json::from_slice(&bytes).map_err(|source| Emoji40Error::Json {
        path: archive.join(EMOJI_JSON),
        source,
    })
}

fn check_file_field(field: &'static str, value: &str, ok: bool) -> Result<(), Emoji40Error> {
    if ok && !value.is_empty() && safe_relative_name(value).is_ok() && !value.contains('/') {
        Ok(())
    } else {
        Err(Emoji40Error::UnsafeField {
            field,
            value: value.to_string(),
        })
    }
}

/// Fetches the three pinned packs and builds (or reuses) the dataset under
/// `<cache>/datasets/emoji40`.
pub fn build_emoji40(cache: &Cache, opts: &Emoji40Options) -> Result<Emoji40Summary, Emoji40Error> {
    check_options(opts)?;
    let root = cache.datasets_dir().join("emoji40");
    if root.exists() {
        return reuse_existing(&root, &settings_of(opts));
    }
    let packs = [
        fetch_pinned(cache, &EMOJI_DATASOURCE)?,
        fetch_pinned(cache, &EMOJI_TWITTER)?,
        fetch_pinned(cache, &EMOJI_GOOGLE)?,
    ];
    build_emoji40_from(&root, &packs, opts)
}

/// The build itself, from local packs `[datasource, twitter, google]`
/// (verified by the caller) into `root` (reused if it exists with the same
/// settings).
pub fn build_emoji40_from(
    root: &Path,
    packs: &[PathBuf; 3],
    opts: &Emoji40Options,
) -> Result<Emoji40Summary, Emoji40Error> {
    check_options(opts)?;
    let settings = settings_of(opts);
    if root.exists() {
        return reuse_existing(root, &settings);
    }
    let [datasource, twitter, google] = packs;
    let tarballs = [twitter, google];
    let classes = select_classes(&read_emoji_json(datasource)?, opts.classes)?;
    let names: Vec<&str> = classes.iter().map(|c| c.name.as_str()).collect();
    let sizes: Vec<usize> = classes.iter().map(|c| c.emojis.len()).collect();
    let splits = assign_splits(&names, &sizes, opts)?;

    let (emojis, manifest_classes) = manifest_entries(&classes, &splits)?;
    let image_of: Vec<&str> = classes
        .iter()
        .flat_map(|c| c.emojis.iter().map(|e| e.image.as_str()))
        .collect();

    let mut manifest = Manifest {
        dataset: "emoji40".into(),
        settings: settings.clone(),
        classes: manifest_classes,
        images_per_split: [0; 3],
        missing_images: Vec::new(),
        emojis,
    };
    let built = build_dir_atomic(root, |tmp| {
        for split in Split::ALL {
            for class in &classes {
                let dir = tmp.join(split.name()).join(&class.name);
                fs::create_dir_all(&dir)
                    .map_err(|source| Emoji40Error::Io { path: dir, source })?;
            }
        }
        for (style, tarball) in STYLES.iter().zip(&tarballs) {
            unpack_style(tmp, style, tarball, &image_of, &mut manifest)?;
        }
        let json = serde_json::to_vec_pretty(&manifest).map_err(|source| Emoji40Error::Json {
            path: tmp.join(MANIFEST),
            source,
        })?;
        write_atomic(&tmp.join(MANIFEST), &json)?;
        Ok(())
    });
    match built {
        Ok(()) => Ok(summary_of(root, &manifest, false)),
        // Another process finished first: reuse theirs if it matches.
        Err(Emoji40Error::Asset(AssetError::DestinationExists { .. })) => {
            reuse_existing(root, &settings)
        }
        Err(e) => Err(e),
    }
}

mod styles;
mod unpack;
pub use styles::{groups, keep_style};
use unpack::{manifest_entries, unpack_style};

#[cfg(test)]
mod tests;
