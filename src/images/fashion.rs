//! Stage 1 (images): Fashion-MNIST as a [`Dataset`], read straight from the
//! IDX files (no PNGs written). Train/test come from the files; a seeded,
//! stratified `val_fraction` of train becomes the validation split.

use std::path::Path;
use std::sync::Arc;

use super::dataset::{stratified_split, ClassId, Dataset, ImageSource, Item, Split};
use super::idx::{
    read_idx_images, read_idx_labels, FashionMnistFiles, IdxError, IdxImages,
    FASHION_MNIST_CLASS_DIRS,
};

fn items_of(
    images: IdxImages,
    labels: Vec<u8>,
    name: &str,
    split_of: impl Fn(usize, u8) -> Split,
    path: &Path,
) -> Result<Vec<Item>, IdxError> {
    if images.count != labels.len() {
        return Err(IdxError::BadHeader {
            path: path.to_path_buf(),
            detail: format!("{} images but {} labels", images.count, labels.len()),
        });
    }
    if let Some(bad) = labels
        .iter()
        .find(|&&y| y as usize >= FASHION_MNIST_CLASS_DIRS.len())
    {
        return Err(IdxError::BadHeader {
            path: path.to_path_buf(),
            detail: format!("label {bad} outside 0..10"),
        });
    }
    let (rows, cols) = (images.rows, images.cols);
    let pixels = Arc::new(images.pixels);
    Ok(labels
        .iter()
        .enumerate()
        .map(|(i, &y)| Item {
            key: format!("fashion-mnist:{name}:{i:05}"),
            source: ImageSource::Gray {
                pixels: Arc::clone(&pixels),
                offset: i * rows * cols,
                width: cols,
                height: rows,
            },
            label: ClassId(y as u32),
            split: split_of(i, y),
        })
        .collect())
}

/// Builds the dataset from the four IDX files.
pub fn fashion_mnist_dataset(
    files: &FashionMnistFiles,
    val_fraction: f64,
    seed: u64,
) -> Result<Dataset, IdxError> {
    let train_labels = read_idx_labels(&files.train_labels)?;
    // Per class: which of its train images go to val.
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); FASHION_MNIST_CLASS_DIRS.len()];
    for (i, &y) in train_labels.iter().enumerate() {
        if let Some(v) = per_class.get_mut(y as usize) {
            v.push(i);
        }
    }
    let mut train_split = vec![Split::Train; train_labels.len()];
    for (c, idxs) in per_class.iter().enumerate() {
        let s = stratified_split(idxs.len(), val_fraction, 0.0, seed, c as u64);
        for (&i, sp) in idxs.iter().zip(s) {
            train_split[i] = sp;
        }
    }
    let mut items = items_of(
        read_idx_images(&files.train_images)?,
        train_labels,
        "train",
        |i, _| train_split[i],
        &files.train_images,
    )?;
    items.extend(items_of(
        read_idx_images(&files.test_images)?,
        read_idx_labels(&files.test_labels)?,
        "test",
        |_, _| Split::Test,
        &files.test_images,
    )?);
    Ok(Dataset {
        name: "fashion-mnist".into(),
        classes: FASHION_MNIST_CLASS_DIRS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        items,
        ignored: Vec::new(),
        origin: crate::images::dataset::origin("fashion-mnist", &files.train_images),
    })
}
