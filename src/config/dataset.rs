//! Config, checked layer for `[dataset]`: which images (emoji40,
//! Fashion-MNIST or an ImageFolder tree), the name used in cache paths, the
//! split fractions of a tree without split folders, the per-class limit and
//! emoji40's style. Read by the images stage (`images::open_dataset`).

use super::raw::RawDataset;
use super::{expand_home, invalid, positive, ConfigError};
pub use crate::images::params::{DatasetKind, DatasetParams};

fn fraction(field: &str, v: Option<f64>, default: f64) -> Result<f64, ConfigError> {
    let v = v.unwrap_or(default);
    if !(0.0..1.0).contains(&v) || !v.is_finite() {
        return Err(invalid(field, v, "out of range", "a number in [0, 1)"));
    }
    Ok(v)
}

/// The spellings of `dataset.kind`.
pub const DATASET_KINDS: [&str; 3] = ["emoji40", "fashion-mnist", "image-folder"];

/// `dataset.kind` (default: image-folder when a root is given, else emoji40).
fn dataset_kind(d: &RawDataset) -> Result<DatasetKind, ConfigError> {
    let default = if d.root.is_some() {
        "image-folder"
    } else {
        "emoji40"
    };
    let kind_name = d.kind.as_deref().unwrap_or(default);
    let kind = match kind_name {
        "emoji40" => DatasetKind::Emoji40,
        "fashion-mnist" => DatasetKind::FashionMnist,
        "image-folder" => DatasetKind::ImageFolder {
            root: d
                .root
                .as_deref()
                .map(expand_home)
                .ok_or_else(|| ConfigError::Missing {
                    field: "dataset.root".into(),
                    hint: "an image-folder dataset needs `root = \"path/to/images\"`".into(),
                })?,
        },
        other => {
            return Err(invalid(
                "dataset.kind",
                other,
                "unknown dataset kind",
                &DATASET_KINDS.join(", "),
            ))
        }
    };
    match &d.root {
        Some(root) if !matches!(kind, DatasetKind::ImageFolder { .. }) => Err(invalid(
            "dataset.root",
            root,
            &format!("`root` only applies to kind = \"image-folder\", not \"{kind_name}\""),
            "remove `root` or set kind = \"image-folder\"",
        )),
        _ => Ok(kind),
    }
}

/// `dataset.name` (default: the root folder's name, else the kind).
fn dataset_name(d: &RawDataset, kind: &DatasetKind) -> Result<String, ConfigError> {
    let name = match (&d.name, kind) {
        (Some(n), _) => n.clone(),
        (None, DatasetKind::ImageFolder { root }) => root
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "images".into()),
        (None, DatasetKind::Emoji40) => "emoji40".into(),
        (None, DatasetKind::FashionMnist) => "fashion-mnist".into(),
    };
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if name.is_empty() || !allowed || name.starts_with('.') {
        return Err(invalid(
            "dataset.name",
            &name,
            "used in file names",
            "letters, digits, '-', '_', '.'",
        ));
    }
    Ok(name)
}

/// `dataset.style` (emoji40 only).
fn dataset_style(d: &RawDataset, kind: &DatasetKind) -> Result<Option<String>, ConfigError> {
    let styles = crate::images::emoji40::STYLES;
    match d.style.as_deref() {
        None => Ok(None),
        Some(s) if *kind != DatasetKind::Emoji40 => Err(invalid(
            "dataset.style",
            s,
            "applies to the emoji40 dataset only",
            "unset, or dataset.kind = \"emoji40\"",
        )),
        Some(s) if styles.contains(&s) => Ok(Some(s.to_string())),
        Some(s) => Err(invalid(
            "dataset.style",
            s,
            "is not a style of emoji40",
            &styles.join(", "),
        )),
    }
}

/// Checks `[dataset]`.
pub(super) fn resolve_dataset(d: RawDataset) -> Result<DatasetParams, ConfigError> {
    let kind = dataset_kind(&d)?;
    let name = dataset_name(&d, &kind)?;
    let val_fraction = fraction("dataset.val_fraction", d.val_fraction, 0.2)?;
    let test_fraction = fraction("dataset.test_fraction", d.test_fraction, 0.2)?;
    if val_fraction + test_fraction >= 1.0 {
        return Err(invalid(
            "dataset.val_fraction + dataset.test_fraction",
            val_fraction + test_fraction,
            "leaves no training images",
            "a sum below 1",
        ));
    }
    let limit_per_class = match d.limit_per_class {
        None => None,
        Some(v) => Some(positive(
            "dataset.limit_per_class",
            Some(v),
            1,
            usize::MAX >> 1,
        )?),
    };
    let style = dataset_style(&d, &kind)?;
    Ok(DatasetParams {
        kind,
        name,
        val_fraction,
        test_fraction,
        limit_per_class,
        style,
    })
}
