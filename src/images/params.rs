//! Images stage, its checked parameters: which dataset ([`DatasetParams`],
//! what `[dataset]` resolves to) and how an image becomes the backbone's
//! square input ([`ResizeMode`], [`ResizeFilter`], the default pixel
//! budget), with their spellings. The config layer (`config::dataset`,
//! `config::extract`) fills them in and checks them; the images stage reads
//! only these.

use std::path::PathBuf;

use crate::util::choice::{choice_serde, Choice};

/// Where the images come from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum DatasetKind {
    /// Built by `ovr fetch dataset emoji40` in the cache.
    Emoji40,
    /// Debian's IDX files, read directly.
    FashionMnist,
    /// `root/<class>/<image>` or `root/{train,val,test}/<class>/<image>`.
    ImageFolder { root: PathBuf },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DatasetParams {
    pub kind: DatasetKind,
    /// Name used in cache paths and reports.
    pub name: String,
    /// Fraction of each class held out for validation when the tree has no split level.
    pub val_fraction: f64,
    /// Fraction held out for testing when the tree has no split level.
    pub test_fraction: f64,
    /// Keep at most this many images per class and split (a stratified subset).
    pub limit_per_class: Option<usize>,
    /// emoji40 only: keep one vendor's images (`twitter` or `google`).
    pub style: Option<String>,
}

/// How an image is brought to the backbone's square input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeMode {
    /// Shorter side to the input size, then a centred square crop.
    CenterCrop,
    /// Both sides to the input size (aspect ratio not kept).
    Squash,
}

impl Choice for ResizeMode {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("center-crop", ResizeMode::CenterCrop),
        ("squash", ResizeMode::Squash),
    ];
    const UNKNOWN: &'static str = "unknown resize mode";
}
choice_serde!(ResizeMode);

/// The convolution filter of the resize (antialiased when downscaling: the
/// kernel is widened by the scale factor, as Pillow does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeFilter {
    /// Catmull-Rom cubic (a = -0.5, Pillow's bicubic): timm's choice for
    /// these weights, sharper than an antialiased triangle when shrinking
    /// photos (TensorFlow's resize, used to evaluate the weights, does not
    /// antialias).
    Bicubic,
    /// Triangle (bilinear), the default: exactly TensorFlow's bilinear
    /// resize when enlarging (emoji, Fashion-MNIST); `ovr`'s filter before
    /// preprocessing v2.
    Bilinear,
}

impl Choice for ResizeFilter {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("bicubic", ResizeFilter::Bicubic),
        ("bilinear", ResizeFilter::Bilinear),
    ];
    const UNKNOWN: &'static str = "unknown resize filter";
}
choice_serde!(ResizeFilter);

/// Default per-image pixel budget: 40 MP (decoded pixels held at once).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
