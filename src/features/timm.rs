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

    fn device(&self) -> &Device {
        &self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::D;
    use candle_nn::VarMap;

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;
    type Edit = fn(&mut HashMap<String, Tensor>);

    /// Replaces zero-initialized variables (BN shifts/means, LayerScale gammas,
    /// tokens) with noise and makes BN variances positive but not 1.
    fn randomize(varmap: &VarMap) -> TestResult {
        for (name, var) in varmap.data().lock().map_err(|e| e.to_string())?.iter() {
            let (shape, dev) = (var.shape(), var.device());
            if name.ends_with("running_var") {
                var.set(&Tensor::rand(0.5f32, 1.5, shape, dev)?)?;
            } else if var.sqr()?.sum_all()?.to_scalar::<f32>()? == 0.0 {
                var.set(&Tensor::randn(0f32, 0.1, shape, dev)?)?;
            }
        }
        Ok(())
    }

    fn save_edited(
        varmap: &VarMap,
        path: &Path,
        edit: impl FnOnce(&mut HashMap<String, Tensor>),
    ) -> TestResult {
        let vars = varmap.data().lock().map_err(|e| e.to_string())?;
        let mut map: HashMap<String, Tensor> = vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        edit(&mut map);
        Ok(candle_core::safetensors::save(&map, path)?)
    }

    fn max_abs(t: &Tensor) -> candle_core::Result<f32> {
        t.abs()?.flatten_all()?.max(0)?.to_scalar()
    }

    fn assert_close(got: &Tensor, want: &Tensor) -> TestResult {
        assert_eq!(got.dims(), want.dims());
        let (diff, scale) = (max_abs(&(got - want)?)?, max_abs(want)?.max(1.0));
        assert!(diff <= 1e-5 * scale, "max diff {diff} (scale {scale})");
        Ok(())
    }

    /// A reference model built from a VarMap with random weights, those weights
    /// saved to a file, the backbone loaded from it by id, and its features of
    /// two random images.
    struct Case<M> {
        bb: Box<dyn Backbone>,
        varmap: VarMap,
        model: M,
        px: Tensor,
        /// `px` normalized, the reference model's input.
        x: Tensor,
        f: Tensor,
    }

    fn case<M>(
        dir: &Path,
        id: &str,
        dim: usize,
        build: impl Fn(VarBuilder<'static>) -> candle_core::Result<M>,
    ) -> TestResult<Case<M>> {
        let varmap = VarMap::new();
        build(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
        randomize(&varmap)?;
        // Rebuilt so build-time work (RepVGG's re-parameterization) sees the random values.
        let model = build(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
        let path = dir.join("w.safetensors");
        varmap.save(&path)?;
        let bb = load_timm_backbone(id, &path, &Device::Cpu)?;
        assert_eq!((bb.id(), bb.input_size(), bb.feature_dim()), (id, 224, dim));
        assert_eq!(bb.normalization(), Normalization::IMAGENET);
        assert_eq!(bb.weights_hash(), sha256_file(&path)?);
        let px = Tensor::rand(0f32, 255.0, (2, 3, 224, 224), &Device::Cpu)?;
        let f = bb.features(&px)?;
        assert_eq!(f.dims(), &[2, dim]);
        let v: Vec<Vec<f32>> = f.to_vec2()?;
        assert!(v.iter().flatten().all(|x| x.is_finite()));
        let apart = v[0]
            .iter()
            .zip(&v[1])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(apart > 1e-6, "two images gave the same features");
        let x = Normalization::IMAGENET.apply(&px)?;
        Ok(Case {
            bb,
            varmap,
            model,
            px,
            x,
            f,
        })
    }

    #[test]
    fn resnet18_matches_reference_with_fc_logits() -> TestResult {
        let dir = tempfile::tempdir()?;
        let c = case(dir.path(), "resnet18", 512, |vb| {
            Ok((
                resnet::resnet18_no_final_layer(vb.clone())?,
                candle_nn::linear(512, 1000, vb.pp("fc"))?,
            ))
        })?;
        let want = c.x.apply(&c.model.0)?;
        assert_close(&c.f, &want)?;
        assert_close(
            &c.bb.logits(&c.px)?.expect("fc.* present"),
            &want.apply(&c.model.1)?,
        )
    }

    #[test]
    fn resnet50_matches_reference() -> TestResult {
        let dir = tempfile::tempdir()?;
        let c = case(
            dir.path(),
            "resnet50",
            2048,
            resnet::resnet50_no_final_layer,
        )?;
        assert_close(&c.f, &c.x.apply(&c.model)?)?;
        assert!(c.bb.logits(&c.px)?.is_none());
        Ok(())
    }

    #[test]
    fn convnext_tiny_applies_head_norm() -> TestResult {
        let dir = tempfile::tempdir()?;
        let c = case(dir.path(), "convnext-tiny", 768, |vb| {
            let body = convnext::convnext_no_final_layer(&convnext::Config::tiny(), vb.clone())?;
            Ok((body, candle_nn::layer_norm(768, 1e-6, vb.pp("head.norm"))?))
        })?;
        assert_close(&c.f, &c.x.apply(&c.model.0)?.apply(&c.model.1)?)?;
        assert!(c.bb.logits(&c.px)?.is_none());
        Ok(())
    }

    #[test]
    fn repvgg_a0_matches_reference_with_head_fc() -> TestResult {
        let dir = tempfile::tempdir()?;
        let c = case(dir.path(), "repvgg-a0", 1280, |vb| {
            let body = repvgg::repvgg_no_final_layer(&repvgg::Config::a0(), vb.clone())?;
            Ok((body, candle_nn::linear(1280, 1000, vb.pp("head.fc"))?))
        })?;
        let want = c.x.apply(&c.model.0)?;
        assert_close(&c.f, &want)?;
        assert_close(
            &c.bb.logits(&c.px)?.expect("head.fc.* present"),
            &want.apply(&c.model.1)?,
        )
    }

    #[test]
    fn dinov2_vits14_cls_and_mean_patch() -> TestResult {
        let dir = tempfile::tempdir()?;
        let c = case(dir.path(), "dinov2-vits14", 768, dinov2::vit_small)?;
        let (mut mean_patch, mut logits) = (vec![], vec![]);
        for i in 0..2 {
            let xi = c.x.narrow(0, i, 1)?;
            // [1 layer, 1 image, 256 patches, 384] after the final norm.
            let patches = c
                .model
                .get_intermediate_layers(&xi, &[11], false, false, true)?;
            mean_patch.push(patches.squeeze(0)?.mean(1)?);
            logits.push(c.model.forward(&xi)?);
        }
        assert_close(
            &c.f.narrow(D::Minus1, 384, 384)?,
            &Tensor::cat(&mean_patch, 0)?,
        )?;
        // The file's head maps [CLS, mean patch] with a full-rank matrix: equal logits pin the CLS half.
        let got = c.bb.logits(&c.px)?.expect("head.* present");
        assert_close(&got, &Tensor::cat(&logits, 0)?)?;

        // Without head weights: same features, no logits.
        let headless = dir.path().join("headless.safetensors");
        save_edited(&c.varmap, &headless, |m| {
            m.retain(|k, _| !k.starts_with("head."))
        })?;
        let bb = load_timm_backbone("dinov2-vits14", &headless, &Device::Cpu)?;
        assert_close(&bb.features(&c.px)?, &c.f)?;
        assert!(bb.logits(&c.px)?.is_none());
        Ok(())
    }

    #[test]
    fn load_errors_name_the_problem() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cpu = &Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, cpu);
        resnet::resnet18_no_final_layer(vb.clone())?;
        candle_nn::linear(512, 1000, vb.pp("fc"))?;

        let err = load_timm_backbone("resnet19", &dir.path().join("x"), cpu).err();
        assert!(
            matches!(&err, Some(BackboneError::Unknown { name, allowed })
                if name == "resnet19" && TIMM_BACKBONES.iter().all(|id| allowed.contains(id))),
            "{err:?}"
        );
        let err = load_timm_backbone("resnet18", &dir.path().join("absent"), cpu).err();
        assert!(
            matches!(err, Some(BackboneError::MissingWeights { .. })),
            "{err:?}"
        );
        let ok = dir.path().join("ok.safetensors");
        varmap.save(&ok)?;
        let bb = load_timm_backbone("resnet18", &ok, cpu)?;
        let wrong = Tensor::zeros((1, 3, 200, 200), DType::F32, cpu)?;
        assert!(matches!(
            bb.features(&wrong),
            Err(BackboneError::Invalid { .. })
        ));

        let cases: [(&str, Edit); 2] = [
            ("layer1.0.conv1.weight", |m| {
                drop(m.remove("layer1.0.conv1.weight"))
            }),
            ("fc.weight", |m| {
                let bad = Tensor::zeros((1000, 256), DType::F32, &Device::Cpu).expect("zeros");
                m.insert("fc.weight".into(), bad);
            }),
        ];
        for (i, (tensor, edit)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("bad{i}.safetensors"));
            save_edited(&varmap, &path, edit)?;
            match load_timm_backbone("resnet18", &path, cpu) {
                Err(e @ BackboneError::Load { .. }) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(tensor) && msg.contains(&*path.to_string_lossy()),
                        "{msg}"
                    );
                }
                other => panic!("expected Load error for {tensor}, got {:?}", other.err()),
            }
        }

        Ok(())
    }
}
