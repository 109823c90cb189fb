//! Stage 2 (features): turns a checked backbone config into a loaded
//! [`Backbone`]: EfficientNet-Lite from the cache (converted by
//! `ovr fetch weights`) or a local file, timm models from their local file.

use std::path::{Path, PathBuf};

use candle_core::Device;

use super::backbone::{Backbone, BackboneError};
use super::efficientnet_lite::{EfficientNetLite, LiteVariant};
use super::params::{BackboneParams, BACKBONES_HINT};
use crate::assets::cache::{sha256_file, Cache};

/// Where the converted weights of a Lite variant live in the cache.
pub fn lite_weights_path(cache: &Cache, variant: LiteVariant) -> PathBuf {
    cache
        .weights_dir()
        .join(format!("{}.safetensors", variant.id()))
}

fn hash(cfg: &BackboneParams, path: &Path) -> Result<String, BackboneError> {
    sha256_file(path).map_err(|source| BackboneError::Hash {
        name: cfg.name.clone(),
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// The configured EfficientNet-Lite as its concrete type (ImageNet logits,
/// benchmarks), or `None` when the backbone is not a Lite variant.
pub fn load_lite(
    cfg: &BackboneParams,
    cache: &Cache,
) -> Result<Option<EfficientNetLite>, BackboneError> {
    let Some(variant) = LiteVariant::from_id(&cfg.name) else {
        return Ok(None);
    };
    let path = cfg
        .weights
        .clone()
        .unwrap_or_else(|| lite_weights_path(cache, variant));
    if !path.exists() {
        return Err(BackboneError::MissingWeights {
            name: cfg.name.clone(),
            path,
        });
    }
    let h = hash(cfg, &path)?;
    Ok(Some(EfficientNetLite::load(
        variant,
        &path,
        h,
        cfg.depthwise,
    )?))
}

/// Loads the configured backbone onto `device` (weights are read on the
/// CPU, then moved).
pub fn load_backbone(
    cfg: &BackboneParams,
    cache: &Cache,
    device: &Device,
) -> Result<Box<dyn Backbone>, BackboneError> {
    if let Some(net) = load_lite(cfg, cache)? {
        if device.is_cpu() {
            return Ok(Box::new(net));
        }
        return Ok(Box::new(net.to_device(device)?));
    }
    if super::timm::TIMM_BACKBONES.contains(&cfg.name.as_str()) {
        let path = cfg.weights.clone().ok_or_else(|| BackboneError::Invalid {
            name: cfg.name.clone(),
            message: "needs `backbone.weights = \"/path/to/model.safetensors\"` (timm weights)"
                .into(),
        })?;
        return super::timm::load_timm_backbone(&cfg.name, &path, device);
    }
    Err(BackboneError::Unknown {
        name: cfg.name.clone(),
        allowed: BACKBONES_HINT.to_string(),
    })
}
