//! Features stage, its checked parameters: which backbone(s) and output
//! ([`BackboneParams`], what `[backbone]` resolves to) and how extraction
//! runs ([`ExtractParams`], what `[extract]` resolves to: batch, decoder
//! threads, the preprocessing handed to the images stage, the stored
//! dtype). The config layer (`config::backbone`, `config::extract`) fills
//! them in and checks them; the features stage reads only these.

use std::path::PathBuf;

use super::efficientnet_lite::DepthwiseImpl;
use super::feature_set::FeatureDtype;
use super::variant::FeatureKind;
use crate::images::decode::DecodeOptions;
use crate::images::params::{ResizeFilter, ResizeMode};

#[derive(Debug, Clone, serde::Serialize)]
pub struct BackboneParams {
    /// The first (or only) backbone.
    pub name: String,
    /// Further backbones whose outputs are concatenated after `name`'s, each
    /// extracted and cached on its own (`name = ["a", "b"]` in the TOML).
    pub stack: Vec<String>,
    /// Which output of each backbone is used.
    pub features: FeatureKind,
    /// Local safetensors file; `None` means the cached converted weights.
    pub weights: Option<PathBuf>,
    pub depthwise: DepthwiseImpl,
}

impl BackboneParams {
    /// Every backbone, `name` first.
    pub fn names(&self) -> Vec<&str> {
        std::iter::once(self.name.as_str())
            .chain(self.stack.iter().map(String::as_str))
            .collect()
    }

    /// One config per backbone (penultimate features, nothing stacked); only
    /// the first keeps `weights`.
    pub fn parts(&self) -> Vec<BackboneParams> {
        self.names()
            .into_iter()
            .enumerate()
            .map(|(i, n)| BackboneParams {
                name: n.to_string(),
                stack: Vec::new(),
                features: FeatureKind::Penultimate,
                weights: if i == 0 { self.weights.clone() } else { None },
                depthwise: self.depthwise,
            })
            .collect()
    }
}

pub const BACKBONES_HINT: &str = "efficientnet-lite0, efficientnet-lite1, efficientnet-lite2, \
resnet18, resnet50, convnext-*, repvgg-*, dinov2-vits14";

#[derive(Debug, Clone, serde::Serialize)]
pub struct ExtractParams {
    pub batch_size: usize,
    /// Decoder threads. Default: the number of cores, also the most that
    /// are started; decoders and the network share one pool of core tokens,
    /// so running threads never exceed the cores (see `features::cpu_gate`).
    pub decode_threads: usize,
    pub resize: ResizeMode,
    pub filter: ResizeFilter,
    /// Apply the EXIF orientation tag (JPEG, PNG, WebP, TIFF) before resizing.
    pub exif_orientation: bool,
    /// Decode JPEGs at 1/2 or 1/4 scale in the DCT domain when the
    /// result is still at least twice the input size on both sides.
    pub jpeg_dct_scaling: bool,
    /// Largest decoded image (width x height, after any DCT scaling) an
    /// image may need; larger ones are refused and skipped.
    pub max_pixels: u64,
    /// How the per-split feature files store features: f32 (default) or
    /// f16 (half the bytes; for matrices read memory-mapped, `heads::rows`).
    pub dtype: FeatureDtype,
}

impl ExtractParams {
    /// The preprocessing part, as the images stage's decoders take it.
    pub fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            resize: self.resize,
            filter: self.filter,
            exif_orientation: self.exif_orientation,
            jpeg_dct_scaling: self.jpeg_dct_scaling,
            max_pixels: self.max_pixels,
        }
    }
}
