//! Stage 1 (images): a labelled dataset as a list of items, each with a class,
//! a split and where its pixels come from. Scans ImageFolder trees
//! (`root/<class>/<file>` or `root/{train,val,test}/<class>/<file>`) and makes
//! seeded, stratified splits when the tree has none.

use crate::util::choice::Choice;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Index of a class in the dataset's sorted class list.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ClassId(pub u32);

impl ClassId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Which part of the data an image belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl crate::util::choice::Choice for Split {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("train", Split::Train),
        ("val", Split::Val),
        ("test", Split::Test),
    ];
    const UNKNOWN: &'static str = "unknown split";
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];
}

/// Where an item's pixels come from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// An encoded image file (PNG, JPEG, ...).
    File(PathBuf),
    /// One grayscale image inside a shared raw array (Fashion-MNIST IDX).
    Gray {
        pixels: Arc<Vec<u8>>,
        offset: usize,
        width: usize,
        height: usize,
    },
}

/// One labelled image.
#[derive(Debug, Clone)]
pub struct Item {
    /// Shown to users and stored with the features (a path, or `idx:train:123`).
    pub key: String,
    pub source: ImageSource,
    pub label: ClassId,
    pub split: Split,
}

/// A dataset ready for feature extraction.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub classes: Vec<String>,
    pub items: Vec<Item>,
    /// Files that were passed over with the reason (not an image extension, ...).
    pub ignored: Vec<(PathBuf, String)>,
    /// What the images are: kind and canonical location (see [`origin`]).
    /// Keys the per-split export directory ([`Dataset::export_key`]), so two
    /// datasets with the same name never share it.
    pub origin: String,
}

/// `kind:canonical path` (the path as given if it cannot be canonicalized).
pub fn origin(kind: &str, path: &Path) -> String {
    let p = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    format!("{kind}:{}", p.display())
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read dataset directory {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dataset {root}: {message}")]
    Layout { root: PathBuf, message: String },
    #[error(
        "dataset {root}: class folder(s) without any image file: {}; add images or remove the folder",
        list_paths(.folders)
    )]
    EmptyClasses {
        root: PathBuf,
        folders: Vec<PathBuf>,
    },
}

fn list_paths(paths: &[PathBuf]) -> String {
    let v: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    v.join(", ")
}

pub use super::formats::{ignored_reason, IMAGE_EXTENSIONS};

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let io = |source| DatasetError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    Ok(read_dir_sorted(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Image files of one class folder, plus files passed over.
fn class_files(
    dir: &Path,
    ignored: &mut Vec<(PathBuf, String)>,
) -> Result<Vec<PathBuf>, DatasetError> {
    let mut files = Vec::new();
    for p in read_dir_sorted(dir)? {
        if p.is_dir() {
            ignored.push((p, "nested directory".into()));
            continue;
        }
        let ext = p
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext {
            Some(e) if IMAGE_EXTENSIONS.contains(&e.as_str()) => files.push(p),
            e => {
                let why = ignored_reason(e.as_deref());
                ignored.push((p, why))
            }
        }
    }
    Ok(files)
}

/// Scans an ImageFolder tree. With a `train` folder (and optionally `val`,
/// `test`) under `root`, those splits are used as they are; otherwise every
/// class folder is split with [`stratified_split`].
pub fn scan_image_folder(
    name: &str,
    root: &Path,
    val_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Result<Dataset, DatasetError> {
    let layout = |message: String| DatasetError::Layout {
        root: root.to_path_buf(),
        message,
    };
    if !root.is_dir() {
        return Err(layout("is not a directory".into()));
    }
    let top = subdirs(root)?;
    let has_splits = top.iter().any(|p| file_name(p) == "train");
    let mut ignored = Vec::new();
    // (split or None, class name, files)
    let mut groups: Vec<(Option<Split>, String, Vec<PathBuf>)> = Vec::new();
    // An empty class folder would only fail at `train` (a class without
    // training images), so it is an error here, naming every such folder.
    let mut empty = Vec::new();
    if has_splits {
        for d in &top {
            let Some(split) = Split::parse(&file_name(d)) else {
                ignored.push((d.clone(), "not a split folder (train, val, test)".into()));
                continue;
            };
            for c in subdirs(d)? {
                let files = class_files(&c, &mut ignored)?;
                if files.is_empty() {
                    empty.push(c.clone());
                }
                groups.push((Some(split), file_name(&c), files));
            }
        }
    } else {
        for c in &top {
            let files = class_files(c, &mut ignored)?;
            if files.is_empty() {
                empty.push(c.clone());
            }
            groups.push((None, file_name(c), files));
        }
    }
    if !empty.is_empty() {
        return Err(DatasetError::EmptyClasses {
            root: root.to_path_buf(),
            folders: empty,
        });
    }
    let classes: Vec<String> = {
        let mut v: Vec<String> = groups.iter().map(|g| g.1.clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    if classes.len() < 2 {
        return Err(layout(format!(
            "found {} class folder(s); expected root/<class>/<image> with at least 2 classes",
            classes.len()
        )));
    }
    let class_id =
        |c: &str| ClassId(classes.binary_search_by(|x| x.as_str().cmp(c)).unwrap_or(0) as u32);
    let mut items = Vec::new();
    for (split, class, files) in groups {
        let label = class_id(&class);
        let splits = match split {
            Some(s) => vec![s; files.len()],
            None => stratified_split(
                files.len(),
                val_fraction,
                test_fraction,
                seed,
                label.0 as u64,
            ),
        };
        for (p, s) in files.into_iter().zip(splits) {
            items.push(Item {
                key: p.display().to_string(),
                source: ImageSource::File(p),
                label,
                split: s,
            });
        }
    }
    items.sort_by(|a, b| (a.split, a.label, &a.key).cmp(&(b.split, b.label, &b.key)));
    Ok(Dataset {
        name: name.to_string(),
        classes,
        items,
        ignored,
        origin: origin("image-folder", root),
    })
}

/// Assigns `n` items of one class to splits: a seeded shuffle (seed and
/// `stream`, e.g. the class id), then `round(n * test)` to test, `round(n * val)`
/// to val, the rest to train. When `n >= 3` and a fraction is positive, each
/// split gets at least one item so no split misses a class; train always
/// keeps at least one item when `n >= 2`.
pub fn stratified_split(n: usize, val: f64, test: f64, seed: u64, stream: u64) -> Vec<Split> {
    let mut n_test = (n as f64 * test).round() as usize;
    let mut n_val = (n as f64 * val).round() as usize;
    if n >= 3 {
        if test > 0.0 {
            n_test = n_test.max(1);
        }
        if val > 0.0 {
            n_val = n_val.max(1);
        }
    }
    // Keep at least one training item whenever there is more than one item.
    let max_held_out = n.saturating_sub(1);
    while n_test + n_val > max_held_out {
        if n_test >= n_val {
            n_test -= 1;
        } else {
            n_val -= 1;
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    order.shuffle(&mut rng);
    let mut out = vec![Split::Train; n];
    for (rank, &i) in order.iter().enumerate() {
        out[i] = if rank < n_test {
            Split::Test
        } else if rank < n_test + n_val {
            Split::Val
        } else {
            Split::Train
        };
    }
    out
}

impl Dataset {
    /// Name of the dataset's export directory under `features/`: the name
    /// (readable) and a short hash of [`Dataset::origin`] (unique), e.g.
    /// `images-1a2b3c4d`.
    pub fn export_key(&self) -> String {
        let h = crate::assets::cache::sha256_hex(self.origin.as_bytes());
        format!("{}-{}", self.name, &h[..8])
    }

    /// Keeps at most `limit` items per (split, class), chosen by a seeded shuffle.
    pub fn limit_per_class(&mut self, limit: usize, seed: u64) {
        let mut groups: BTreeMap<(Split, ClassId), Vec<Item>> = BTreeMap::new();
        for it in self.items.drain(..) {
            groups.entry((it.split, it.label)).or_default().push(it);
        }
        for ((split, class), mut v) in groups {
            if v.len() > limit {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(((split as u64) << 32) | class.0 as u64);
                v.shuffle(&mut rng);
                v.truncate(limit);
                v.sort_by(|a, b| a.key.cmp(&b.key));
            }
            self.items.extend(v);
        }
    }

    /// Number of items per split, in [`Split::ALL`] order.
    pub fn split_counts(&self) -> [usize; 3] {
        let mut c = [0; 3];
        for it in &self.items {
            c[it.split as usize] += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn split_is_stratified_deterministic_and_covers_every_split() {
        let a = stratified_split(20, 0.2, 0.2, 7, 3);
        assert_eq!(a, stratified_split(20, 0.2, 0.2, 7, 3));
        assert_ne!(a, stratified_split(20, 0.2, 0.2, 8, 3));
        let count = |s| a.iter().filter(|&&x| x == s).count();
        assert_eq!(
            (count(Split::Train), count(Split::Val), count(Split::Test)),
            (12, 4, 4)
        );
        let small = stratified_split(3, 0.1, 0.1, 1, 0);
        assert!(Split::ALL.iter().all(|s| small.contains(s)));
        assert!(stratified_split(10, 0.0, 0.0, 1, 0)
            .iter()
            .all(|&s| s == Split::Train));
    }

    #[test]
    fn scans_flat_tree_with_split() {
        let dir = tempfile::tempdir().unwrap();
        for c in ["cat", "dog"] {
            for i in 0..10 {
                touch(&dir.path().join(c).join(format!("{i}.png")));
            }
        }
        touch(&dir.path().join("dog/readme.txt"));
        let ds = scan_image_folder("pets", dir.path(), 0.2, 0.2, 42).unwrap();
        assert_eq!(ds.classes, vec!["cat", "dog"]);
        assert_eq!(ds.items.len(), 20);
        assert_eq!(ds.split_counts(), [12, 4, 4]);
        assert_eq!(ds.ignored.len(), 1);
        assert!(ds
            .items
            .iter()
            .all(|it| it.key.contains(&ds.classes[it.label.index()])));
    }

    #[test]
    fn scans_tree_with_split_folders() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("train/a/1.jpg"));
        touch(&dir.path().join("train/b/2.jpg"));
        touch(&dir.path().join("val/a/3.jpg"));
        touch(&dir.path().join("test/b/4.JPG"));
        let ds = scan_image_folder("x", dir.path(), 0.2, 0.2, 42).unwrap();
        assert_eq!(ds.split_counts(), [2, 1, 1]);
        let test: Vec<_> = ds.items.iter().filter(|i| i.split == Split::Test).collect();
        assert_eq!(test[0].label, ClassId(1));
    }

    #[test]
    fn one_class_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("only/1.png"));
        let err = scan_image_folder("x", dir.path(), 0.2, 0.2, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 2 classes"), "{err}");
    }

    #[test]
    fn empty_class_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("a/1.png"));
        touch(&dir.path().join("b/2.png"));
        std::fs::create_dir_all(dir.path().join("empty")).unwrap();
        touch(&dir.path().join("notes/readme.txt"));
        let err = scan_image_folder("x", dir.path(), 0.2, 0.2, 1).unwrap_err();
        assert!(
            matches!(&err, DatasetError::EmptyClasses { folders, .. }
                if folders == &[dir.path().join("empty"), dir.path().join("notes")]),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains(&dir.path().join("empty").display().to_string()));
        // Also inside a split folder.
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("train/a/1.png"));
        touch(&dir.path().join("train/b/2.png"));
        std::fs::create_dir_all(dir.path().join("val/b")).unwrap();
        let err = scan_image_folder("x", dir.path(), 0.2, 0.2, 1).unwrap_err();
        assert!(
            err.to_string()
                .contains(&dir.path().join("val/b").display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn export_key_tells_apart_folders_and_kinds_of_one_name() {
        let dir = tempfile::tempdir().unwrap();
        for r in ["a/images", "b/images"] {
            touch(&dir.path().join(r).join("x/1.png"));
            touch(&dir.path().join(r).join("y/1.png"));
        }
        let a = scan_image_folder("images", &dir.path().join("a/images"), 0.0, 0.0, 1).unwrap();
        let b = scan_image_folder("images", &dir.path().join("b/images"), 0.0, 0.0, 1).unwrap();
        assert!(a.export_key().starts_with("images-"), "{}", a.export_key());
        assert_ne!(a.export_key(), b.export_key());
        // The same folder through another path: the same key.
        let again =
            scan_image_folder("images", &dir.path().join("a/../a/images"), 0.0, 0.0, 1).unwrap();
        assert_eq!(a.export_key(), again.export_key());
        let mut built_in = a.clone();
        built_in.origin = origin("emoji40", &dir.path().join("a/images"));
        assert_ne!(built_in.export_key(), a.export_key());
    }

    #[test]
    fn limit_per_class_keeps_a_seeded_subset() {
        let dir = tempfile::tempdir().unwrap();
        for c in ["a", "b"] {
            for i in 0..30 {
                touch(&dir.path().join(c).join(format!("{i:02}.png")));
            }
        }
        let mut ds = scan_image_folder("x", dir.path(), 0.2, 0.2, 1).unwrap();
        ds.limit_per_class(5, 9);
        assert_eq!(ds.split_counts(), [10, 10, 10]);
    }
}
