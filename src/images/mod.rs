//! Stage 1 of the data flow: labelled images. Datasets (ImageFolder trees,
//! Fashion-MNIST IDX files, the emoji40 builder), splits, decoding (JPEG at
//! reduced DCT scale, EXIF orientation, a pixel budget) and SIMD resizing.

pub mod dataset;
pub mod decode;
pub mod emoji40;
pub mod fashion;
pub mod formats;
pub mod idx;
pub mod inputs;
pub mod jpeg;
pub mod orient;
pub mod params;
pub mod raster;
pub mod resize;

use crate::assets::cache::Cache;
use dataset::{scan_image_folder, Dataset, DatasetError};
use params::{DatasetKind, DatasetParams};

#[derive(Debug, thiserror::Error)]
pub enum OpenDatasetError {
    #[error(transparent)]
    Folder(#[from] DatasetError),
    #[error(transparent)]
    Emoji40(#[from] emoji40::Emoji40Error),
    #[error(transparent)]
    Idx(#[from] idx::IdxError),
}

/// Opens the configured dataset, building it in the cache first if needed
/// (emoji40 from its npm packages, Fashion-MNIST from its Debian package).
pub fn open_dataset(
    cfg: &DatasetParams,
    cache: &Cache,
    seed: u64,
) -> Result<Dataset, OpenDatasetError> {
    let mut ds = match &cfg.kind {
        DatasetKind::Emoji40 => {
            // The canonical emoji40 split (its own fixed seed), so every user
            // and every run sees the same train/val/test images.
            let summary = emoji40::build_emoji40(cache, &emoji40::Emoji40Options::default())?;
            let mut ds = scan_image_folder(&cfg.name, &summary.root, 0.0, 0.0, seed)?;
            ds.origin = dataset::origin("emoji40", &summary.root);
            ds
        }
        DatasetKind::FashionMnist => {
            let files = idx::locate_fashion_mnist(cache)?;
            let mut ds = fashion::fashion_mnist_dataset(&files, cfg.val_fraction, seed)?;
            ds.name = cfg.name.clone();
            ds
        }
        DatasetKind::ImageFolder { root } => {
            scan_image_folder(&cfg.name, root, cfg.val_fraction, cfg.test_fraction, seed)?
        }
    };
    if let Some(style) = &cfg.style {
        emoji40::keep_style(&mut ds, style);
    }
    if let Some(limit) = cfg.limit_per_class {
        ds.limit_per_class(limit, seed);
        // A subset is not the whole set: its own export directory.
        ds.origin.push_str(&format!(";limit={limit},seed={seed}"));
    }
    Ok(ds)
}
