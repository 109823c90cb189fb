//! Stage 2 (features): the `Backbone` trait every frozen network implements, and
//! the input normalization it expects. Images arrive as `[B, 3, S, S]` f32 RGB
//! in 0..=255; the backbone normalizes them itself and returns pooled
//! penultimate features `[B, D]` (and ImageNet logits where it has a classifier).

use std::path::PathBuf;

use candle_core::{Device, Tensor};

/// Errors from building or running a backbone.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    #[error("backbone `{name}`: cannot load weights from {path}")]
    Load {
        name: String,
        path: PathBuf,
        #[source]
        source: Box<candle_core::Error>,
    },
    #[error("backbone `{name}`: weights file {path} does not exist (run `ovr fetch weights {name}` or set `backbone.weights`)")]
    MissingWeights { name: String, path: PathBuf },
    /// A check on the weights or inputs failed (no underlying error).
    #[error("backbone `{name}`: {message}")]
    Invalid { name: String, message: String },
    #[error("backbone `{name}`: cannot hash weights {path}")]
    Hash {
        name: String,
        path: PathBuf,
        #[source]
        source: Box<crate::assets::cache::AssetError>,
    },
    /// Preparing a layer from the loaded weights failed (`what`: which).
    #[error("backbone `{name}`: {what}")]
    Prepare {
        name: String,
        what: String,
        #[source]
        source: Box<candle_core::Error>,
    },
    #[error("unknown backbone `{name}`; allowed: {allowed}")]
    Unknown { name: String, allowed: String },
    #[error("backbone `{name}` forward pass failed")]
    Forward {
        name: String,
        #[source]
        source: Box<candle_core::Error>,
    },
}

/// How pixel values (0..=255, RGB) are mapped before the first layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalization {
    /// `(x - mean) / std` with one mean and std for all channels, in pixel units.
    /// EfficientNet-Lite uses mean 127, std 128.
    Scalar { mean: f32, std: f32 },
    /// Per-channel `(x/255 - mean[c]) / std[c]` (ImageNet statistics for timm models).
    PerChannel { mean: [f32; 3], std: [f32; 3] },
}

impl Normalization {
    /// ImageNet mean/std as used by timm/torchvision models.
    pub const IMAGENET: Normalization = Normalization::PerChannel {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// Applies the normalization to a `[B, 3, H, W]` tensor of 0..=255 pixels.
    pub fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match *self {
            Normalization::Scalar { mean, std } => x.affine(1.0 / std as f64, -(mean / std) as f64),
            Normalization::PerChannel { mean, std } => {
                let dev = x.device();
                let scale: Vec<f32> = std.iter().map(|s| 1.0 / (255.0 * s)).collect();
                let shift: Vec<f32> = mean.iter().zip(std.iter()).map(|(m, s)| -m / s).collect();
                let scale = Tensor::from_vec(scale, (1, 3, 1, 1), dev)?;
                let shift = Tensor::from_vec(shift, (1, 3, 1, 1), dev)?;
                x.broadcast_mul(&scale)?.broadcast_add(&shift)
            }
        }
    }
}

/// A frozen, pretrained image network used as a feature extractor.
pub trait Backbone: Send + Sync {
    /// Stable identifier, part of every cache key (e.g. `efficientnet-lite0`).
    fn id(&self) -> &str;
    /// Square input side in pixels the network expects (224 for Lite0).
    fn input_size(&self) -> usize;
    /// Length of the pooled penultimate feature vector.
    fn feature_dim(&self) -> usize;
    /// Pixel normalization the network was trained with.
    fn normalization(&self) -> Normalization;
    /// SHA-256 (hex) of the weights file, part of every cache key.
    fn weights_hash(&self) -> &str;
    /// Pooled penultimate features `[B, D]` for `[B, 3, S, S]` pixels in 0..=255.
    fn features(&self, pixels: &Tensor) -> Result<Tensor, BackboneError>;
    /// ImageNet logits `[B, 1000]`, or `None` when the backbone has no classifier.
    fn logits(&self, pixels: &Tensor) -> Result<Option<Tensor>, BackboneError>;
    /// ImageNet logits `[B, 1000]` from pooled features `[B, D]` (the
    /// classifier alone), or `None` when the backbone has no classifier. Lets
    /// `features = "logits"` reuse cached penultimate features.
    fn classify_features(&self, features: &Tensor) -> Result<Option<Tensor>, BackboneError>;
    /// The device the backbone's weights live on.
    fn device(&self) -> &Device;
    /// Worker threads the forward pass keeps busy when the backbone runs its
    /// own CPU engine (so the decode threads can be sized around them), or
    /// `None` when it uses candle's global pools or a GPU.
    fn compute_threads(&self) -> Option<usize> {
        None
    }
}
