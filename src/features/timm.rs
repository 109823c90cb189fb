//! Stage 2 (features): frozen backbones from candle-transformers — ResNet,
//! ConvNeXt, RepVGG and DINOv2 ViT-S/14 — loaded from a local safetensors file
//! with timm-style tensor names, behind the same [`Backbone`] trait as the
//! EfficientNet-Lite port. Pixels `[B, 3, 224, 224]` in 0..=255 are
//! ImageNet-normalized here and turned into pooled features `[B, D]`, which
//! `extract` caches under `id` + `weights_hash`.
//!
//! Features per family (what timm's `forward_head(pre_logits=True)` returns):
//! - ResNet: global average pool of the last stage (candle pools; no final norm).
//! - ConvNeXt: candle's `convnext_no_final_layer` pools but skips the head
//!   norm; when the file has `head.norm.*` it is applied here (LayerNorm,
//!   eps 1e-6), so the features equal timm's pooled + normed pre-logits.
//! - RepVGG: global average pool of the (re-parameterized) last stage.
//! - DINOv2 ViT-S/14: `[CLS, mean of patch tokens]` after the final norm (768
//!   values, the input of DINOv2's linear probe). candle's model always applies
//!   `head` (768 -> 1000) to exactly that vector, so the model is built with an
//!   identity selector as `head` and the first 768 outputs are kept. candle's
//!   position-embedding resize (518 -> 224 inputs) is nearest, not bicubic,
//!   and its forward takes one image at a time, so batches are run image by image.
//!
//! Logits: computed with the file's classifier (`fc.*`, `head.fc.*`, or
//! DINOv2's `head.*`) when present, with however many classes it has;
//! otherwise `logits` returns `Ok(None)`.

use std::collections::HashMap;
use std::path::Path;

use crate::assets::cache::sha256_file;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Func, LayerNorm, Linear, VarBuilder};
use candle_transformers::models::{convnext, dinov2, repvgg, resnet};

use super::backbone::{Backbone, BackboneError, Normalization};

const INPUT_SIZE: usize = 224;
/// DINOv2 ViT-S/14 token width; features are `[CLS, mean patch]`, twice this.
const DINO_EMBED: usize = 384;
/// Rows of the `head` candle's DINOv2 always builds (its private `NUM_CLASSES`).
const DINO_HEAD_ROWS: usize = 1000;

#[derive(Clone, Copy)]
enum Arch {
    ResNet18,
    ResNet50,
    /// Config constructor and last-stage width.
    ConvNext(fn() -> convnext::Config, usize),
    /// Config constructor and final width (`512 * b` in candle/timm).
    RepVgg(fn() -> repvgg::Config, usize),
    Dinov2S14,
}

use convnext::Config as Cn;
use repvgg::Config as Rv;
use Arch::{ConvNext as C, RepVgg as R};

/// Every supported id with its architecture and feature width.
const SPECS: [(&str, Arch); 21] = [
    ("resnet18", Arch::ResNet18),
    ("resnet50", Arch::ResNet50),
    ("convnext-atto", C(Cn::atto, 320)),
    ("convnext-femto", C(Cn::femto, 384)),
    ("convnext-pico", C(Cn::pico, 512)),
    ("convnext-nano", C(Cn::nano, 640)),
    ("convnext-tiny", C(Cn::tiny, 768)),
    ("convnext-small", C(Cn::small, 768)),
    ("convnext-base", C(Cn::base, 1024)),
    ("convnext-large", C(Cn::large, 1536)),
    ("repvgg-a0", R(Rv::a0, 1280)),
    ("repvgg-a1", R(Rv::a1, 1280)),
    ("repvgg-a2", R(Rv::a2, 1408)),
    ("repvgg-b0", R(Rv::b0, 1280)),
    ("repvgg-b1", R(Rv::b1, 2048)),
    ("repvgg-b2", R(Rv::b2, 2560)),
    ("repvgg-b3", R(Rv::b3, 2560)),
    ("repvgg-b1g4", R(Rv::b1g4, 2048)),
    ("repvgg-b2g4", R(Rv::b2g4, 2560)),
    ("repvgg-b3g4", R(Rv::b3g4, 2560)),
    ("dinov2-vits14", Arch::Dinov2S14),
];

/// Ids accepted by [`load_timm_backbone`]: `resnet18`, `resnet50`,
/// `convnext-{atto,femto,pico,nano,tiny,small,base,large}`,
/// `repvgg-{a0,a1,a2,b0,b1,b2,b3,b1g4,b2g4,b3g4}`, `dinov2-vits14`.
pub const TIMM_BACKBONES: &[&str] = &{
    let mut ids = [""; SPECS.len()];
    let mut i = 0;
    while i < ids.len() {
        ids[i] = SPECS[i].0;
        i += 1;
    }
    ids
};

fn arch(id: &str) -> Option<Arch> {
    SPECS
        .iter()
        .find(|(name, _)| *name == id)
        .map(|&(_, arch)| arch)
}

enum Net {
    /// CNN returning pooled features, then ConvNeXt's `head.norm` if present.
    Pooled {
        body: Func<'static>,
        norm: Option<LayerNorm>,
    },
    /// DINOv2 with an identity-selector head: outputs start with `[CLS, mean patch]`.
    Dino(dinov2::DinoVisionTransformer),
}

/// A candle-transformers backbone with timm weights.
struct TimmBackbone {
    id: String,
    net: Net,
    feature_dim: usize,
    classifier: Option<Linear>,
    weights_hash: String,
    device: Device,
}

/// Loads backbone `id` (one of [`TIMM_BACKBONES`]) from a timm-style
/// safetensors file onto `device`.
pub fn load_timm_backbone(
    id: &str,
    weights: &Path,
    device: &Device,
) -> Result<Box<dyn Backbone>, BackboneError> {
    let arch = arch(id).ok_or_else(|| BackboneError::Unknown {
        name: id.to_string(),
        allowed: TIMM_BACKBONES.join(", "),
    })?;
    if !weights.is_file() {
        return Err(BackboneError::MissingWeights {
            name: id.to_string(),
            path: weights.to_path_buf(),
        });
    }
    let load_err = |source| BackboneError::Load {
        name: id.to_string(),
        path: weights.to_path_buf(),
        source: Box::new(source),
    };
    let weights_hash = sha256_file(weights).map_err(|e| load_err(candle_core::Error::msg(e)))?;
    let (net, feature_dim, classifier) = build(arch, weights, device).map_err(load_err)?;
    Ok(Box::new(TimmBackbone {
        id: id.to_string(),
        net,
        feature_dim,
        classifier,
        weights_hash,
        device: device.clone(),
    }))
}

type Built = (Net, usize, Option<Linear>);

fn build(arch: Arch, weights: &Path, device: &Device) -> candle_core::Result<Built> {
    let (dim, classifier_prefix, head_norm) = match arch {
        Arch::ResNet18 => (512, "fc", false),
        Arch::ResNet50 => (2048, "fc", false),
        Arch::ConvNext(_, dim) => (dim, "head.fc", true),
        Arch::RepVgg(_, dim) => (dim, "head.fc", false),
        Arch::Dinov2S14 => return build_dinov2(weights, device),
    };
    // SAFETY: the weights file is read-only input and must not be modified
    // while the backbone is loaded (candle's usual mmap contract).
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, device)? };
    let body = match arch {
        Arch::ResNet18 => resnet::resnet18_no_final_layer(vb.clone())?,
        Arch::ResNet50 => resnet::resnet50_no_final_layer(vb.clone())?,
        Arch::ConvNext(cfg, _) => convnext::convnext_no_final_layer(&cfg(), vb.clone())?,
        Arch::RepVgg(cfg, _) => repvgg::repvgg_no_final_layer(&cfg(), vb.clone())?,
        Arch::Dinov2S14 => return build_dinov2(weights, device),
    };
    let norm = match head_norm && vb.contains_tensor("head.norm.weight") {
        true => Some(candle_nn::layer_norm(dim, 1e-6, vb.pp("head.norm"))?),
        false => None,
    };
    let classifier = classifier(&vb, classifier_prefix, dim)?;
    Ok((Net::Pooled { body, norm }, dim, classifier))
}

/// The classifier `{prefix}.weight` `[classes, dim]` + `{prefix}.bias`, if the file has one.
fn classifier(vb: &VarBuilder, prefix: &str, dim: usize) -> candle_core::Result<Option<Linear>> {
    if !vb.contains_tensor(&format!("{prefix}.weight")) {
        return Ok(None);
    }
    let vb = vb.pp(prefix);
    let weight = vb.get_unchecked("weight")?;
    match *weight.dims() {
        [classes, d] if d == dim => Ok(Some(Linear::new(weight, Some(vb.get(classes, "bias")?)))),
        ref got => {
            candle_core::bail!("{prefix}.weight has shape {got:?}, expected [classes, {dim}]")
        }
    }
}

fn build_dinov2(weights: &Path, device: &Device) -> candle_core::Result<Built> {
    let dim = 2 * DINO_EMBED;
    let mut tensors: HashMap<String, Tensor> = candle_core::safetensors::load(weights, device)?;
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, device);
    let classifier = classifier(&vb, "head", dim)?;
    // Identity in the first `dim` rows: `head([CLS, mean patch])` starts with the features.
    let eye = Tensor::eye(dim, DType::F32, device)?;
    let pad = Tensor::zeros((DINO_HEAD_ROWS - dim, dim), DType::F32, device)?;
    let bias = Tensor::zeros(DINO_HEAD_ROWS, DType::F32, device)?;
    tensors.insert("head.weight".into(), Tensor::cat(&[&eye, &pad], 0)?);
    tensors.insert("head.bias".into(), bias);
    let model = dinov2::vit_small(VarBuilder::from_tensors(tensors, DType::F32, device))?;
    Ok((Net::Dino(model), dim, classifier))
}

impl TimmBackbone {
    /// Why `pixels` is not a `[B>0, 3, S, S]` batch, if it is not.
    fn bad_input(&self, pixels: &Tensor) -> Option<String> {
        let s = INPUT_SIZE;
        match *pixels.dims() {
            [b, 3, h, w] if b > 0 && h == s && w == s => None,
            ref got => Some(format!("expected pixels [B>0, 3, {s}, {s}], got {got:?}")),
        }
    }

    fn forward_features(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let x = pixels.to_device(&self.device)?.to_dtype(DType::F32)?;
        let x = Normalization::IMAGENET.apply(&x)?;
        match &self.net {
            Net::Pooled { body, norm } => {
                let f = x.apply(body)?;
                match norm {
                    Some(norm) => f.apply(norm),
                    None => Ok(f),
                }
            }
            Net::Dino(model) => {
                let rows = (0..x.dim(0)?)
                    .map(|i| {
                        model
                            .forward(&x.narrow(0, i, 1)?)?
                            .narrow(1, 0, self.feature_dim)
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Tensor::cat(&rows, 0)
            }
        }
    }

    fn forward_err(&self, source: candle_core::Error) -> BackboneError {
        BackboneError::Forward {
            name: self.id.clone(),
            source: Box::new(source),
        }
    }
}

impl Backbone for TimmBackbone {
    fn id(&self) -> &str {
        &self.id
    }

    fn input_size(&self) -> usize {
        INPUT_SIZE
    }

    fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    fn normalization(&self) -> Normalization {
        Normalization::IMAGENET
    }

    fn weights_hash(&self) -> &str {
        &self.weights_hash
    }

    fn features(&self, pixels: &Tensor) -> Result<Tensor, BackboneError> {
        if let Some(message) = self.bad_input(pixels) {
            let name = self.id.clone();
            return Err(BackboneError::Invalid { name, message });
        }
        self.forward_features(pixels)
            .map_err(|e| self.forward_err(e))
    }

    fn logits(&self, pixels: &Tensor) -> Result<Option<Tensor>, BackboneError> {
        let Some(classifier) = &self.classifier else {
            return Ok(None);
        };
        let features = self.features(pixels)?;
        features
            .apply(classifier)
            .map(Some)
            .map_err(|e| self.forward_err(e))
    }

    fn classify_features(&self, features: &Tensor) -> Result<Option<Tensor>, BackboneError> {
        let Some(classifier) = &self.classifier else {
            return Ok(None);
        };
        features
            .apply(classifier)
            .map(Some)
            .map_err(|e| self.forward_err(e))
    }

    fn device(&self) -> &Device {
        &self.device
    }
}

#[cfg(test)]
mod tests;
