//! Stage 2 (features): the cut between a frozen EfficientNet-Lite bottom and
//! a trainable top, for fine-tuning from cached activations. Below the cut
//! the network runs once per image ([`CutBackbone`] plugs the activations
//! entering block `cut` into the ordinary extraction pipeline and its
//! per-content cache); above it, [`TopWeights`] hands the folded weights of
//! blocks `cut..` and the head convolution to the heads stage as plain host
//! arrays, and [`EfficientNetLite::with_top`] puts trained ones back into a
//! complete network. A child module of `efficientnet_lite`, so it reads the
//! network's private layers.

use candle_core::{DType, Device, Tensor};

use super::{forward_err, Block, Conv, EfficientNetLite};
use crate::features::backbone::{Backbone, BackboneError, Normalization};
use crate::features::depthwise::DepthwiseConv;

/// A pointwise layer on the host: `out = in . w + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseWeights {
    /// Row-major `[inputs, outputs]`.
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

/// One MBConv block above the cut (BatchNorm folded; ReLU6 after the expand
/// and the depthwise convolution, none after the projection).
#[derive(Debug, Clone, PartialEq)]
pub struct TopBlockWeights {
    pub expand: Option<DenseWeights>,
    /// Tap-major `[kernel * kernel, channels]`.
    pub dw_w: Vec<f32>,
    pub dw_b: Vec<f32>,
    pub kernel: usize,
    pub stride: usize,
    pub project: DenseWeights,
    pub residual: bool,
}

/// Everything above the cut: blocks `cut..` and the 1280-wide head
/// convolution (ReLU6, then global average pooling).
#[derive(Debug, Clone, PartialEq)]
pub struct TopWeights {
    pub cut: usize,
    /// `(channels, height, width)` of the activations entering block `cut`.
    pub input: (usize, usize, usize),
    pub blocks: Vec<TopBlockWeights>,
    pub head: DenseWeights,
}

fn host(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

fn dense(c: &Conv) -> candle_core::Result<DenseWeights> {
    let (outputs, inputs) = (c.weight.dim(0)?, c.weight.dim(1)?);
    let w = c.weight.reshape((outputs, inputs))?.t()?.contiguous()?;
    Ok(DenseWeights {
        w: host(&w)?,
        b: c.bias_vec.clone(),
        inputs,
        outputs,
    })
}

fn conv(d: &DenseWeights) -> candle_core::Result<Conv> {
    let w = Tensor::from_slice(&d.w, (d.inputs, d.outputs), &Device::Cpu)?;
    let weight = w.t()?.contiguous()?.reshape((d.outputs, d.inputs, 1, 1))?;
    Ok(Conv {
        weight,
        bias: Tensor::from_slice(&d.b, d.outputs, &Device::Cpu)?,
        bias_vec: d.b.clone(),
        kernel: 1,
        stride: 1,
    })
}

impl EfficientNetLite {
    /// Number of MBConv blocks (16 for Lite0).
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    fn check_cut(&self, cut: usize) -> Result<(), BackboneError> {
        if cut > self.blocks.len() {
            return Err(BackboneError::Invalid {
                name: self.variant.id().to_string(),
                message: format!(
                    "cannot cut before block {cut}: the network has {} blocks",
                    self.blocks.len()
                ),
            });
        }
        Ok(())
    }

    /// `(channels, height, width)` of the activations entering block `cut`
    /// (`cut = block_count()`: entering the head convolution).
    pub fn cut_shape(&self, cut: usize) -> Result<(usize, usize, usize), BackboneError> {
        self.check_cut(cut)?;
        let err = |e| forward_err(self.variant.id(), e);
        let mut side = self.variant.input_size().div_ceil(self.stem.stride);
        for b in &self.blocks[..cut] {
            side = side.div_ceil(b.depthwise.stride());
        }
        let channels = match self.blocks.get(cut) {
            Some(b) => match &b.expand {
                Some(e) => e.weight.dim(1).map_err(err)?,
                None => b.dw_weight.dim(0).map_err(err)?,
            },
            None => self.head.weight.dim(1).map_err(err)?,
        };
        Ok((channels, side, side))
    }

    /// Activations entering block `cut`, flattened `[B, C * H * W]` (NCHW
    /// order), for pixels in 0..=255.
    pub fn activations(&self, pixels: &Tensor, cut: usize) -> Result<Tensor, BackboneError> {
        self.check_cut(cut)?;
        let run = || {
            let x = self.normalization().apply(&pixels.to_dtype(DType::F32)?)?;
            let x = self.blocks_output(self.stem.forward(&x, true, self.portable())?, cut)?;
            x.flatten_from(1)
        };
        run().map_err(|e| forward_err(self.variant.id(), e))
    }

    /// Host copies of the folded weights above the cut.
    pub fn top_weights(&self, cut: usize) -> Result<TopWeights, BackboneError> {
        let input = self.cut_shape(cut)?;
        let run = || -> candle_core::Result<TopWeights> {
            let mut blocks = Vec::new();
            for b in &self.blocks[cut..] {
                let (c, k) = (b.dw_weight.dim(0)?, b.depthwise.kernel());
                let w = b.dw_weight.reshape((c, k * k))?.t()?.contiguous()?;
                blocks.push(TopBlockWeights {
                    expand: b.expand.as_ref().map(dense).transpose()?,
                    dw_w: host(&w)?,
                    dw_b: host(&b.dw_bias)?,
                    kernel: k,
                    stride: b.depthwise.stride(),
                    project: dense(&b.project)?,
                    residual: b.residual,
                });
            }
            Ok(TopWeights {
                cut,
                input,
                blocks,
                head: dense(&self.head)?,
            })
        };
        run().map_err(|e| forward_err(self.variant.id(), e))
    }

    /// This network with the blocks above `top.cut` and the head convolution
    /// replaced by `top`'s (everything below the cut shared unchanged).
    pub fn with_top(&self, top: &TopWeights) -> Result<EfficientNetLite, BackboneError> {
        self.check_cut(top.cut)?;
        let name = self.variant.id();
        if top.blocks.len() != self.blocks.len() - top.cut {
            return Err(BackboneError::Invalid {
                name: name.to_string(),
                message: format!(
                    "{} top blocks for a cut before block {} of {}",
                    top.blocks.len(),
                    top.cut,
                    self.blocks.len()
                ),
            });
        }
        let run = || -> candle_core::Result<EfficientNetLite> {
            let mut net = self.clone();
            for (b, t) in net.blocks[top.cut..].iter_mut().zip(&top.blocks) {
                let c = t.dw_b.len();
                let k = t.kernel;
                let w = Tensor::from_slice(&t.dw_w, (k * k, c), &Device::Cpu)?;
                let dw_weight = w.t()?.contiguous()?.reshape((c, 1, k, k))?;
                let dw_bias = Tensor::from_slice(&t.dw_b, c, &Device::Cpu)?;
                *b = Block {
                    expand: t.expand.as_ref().map(conv).transpose()?,
                    depthwise: DepthwiseConv::new(&dw_weight, &dw_bias, t.stride, true)?,
                    dw_weight,
                    dw_bias,
                    project: conv(&t.project)?,
                    residual: t.residual,
                };
            }
            net.head = conv(&top.head)?;
            Ok(net)
        };
        let mut net = run().map_err(|e| forward_err(name, e))?;
        if let Some(e) = &self.native {
            // The engine packs its own copy of the weights: repack the new top.
            net.build_native(e.isa(), e.threads())?;
        }
        Ok(net)
    }

    /// Every folded parameter by name (`stem.w`, `blocks.3.expand.b`,
    /// `head.w`, `fc.w`, ...), for checking which ones a fine-tune changed.
    pub fn folded_state(&self) -> Result<Vec<(String, Vec<f32>)>, BackboneError> {
        let run = || -> candle_core::Result<Vec<(String, Vec<f32>)>> {
            let mut out = vec![
                ("stem.w".to_string(), host(&self.stem.weight)?),
                ("stem.b".to_string(), self.stem.bias_vec.clone()),
            ];
            for (i, b) in self.blocks.iter().enumerate() {
                if let Some(e) = &b.expand {
                    out.push((format!("blocks.{i}.expand.w"), host(&e.weight)?));
                    out.push((format!("blocks.{i}.expand.b"), e.bias_vec.clone()));
                }
                out.push((format!("blocks.{i}.dw.w"), host(&b.dw_weight)?));
                out.push((format!("blocks.{i}.dw.b"), host(&b.dw_bias)?));
                out.push((format!("blocks.{i}.project.w"), host(&b.project.weight)?));
                out.push((format!("blocks.{i}.project.b"), b.project.bias_vec.clone()));
            }
            out.push(("head.w".to_string(), host(&self.head.weight)?));
            out.push(("head.b".to_string(), self.head.bias_vec.clone()));
            out.push(("fc.w".to_string(), host(&self.fc_weight)?));
            out.push(("fc.b".to_string(), host(&self.fc_bias)?));
            Ok(out)
        };
        run().map_err(|e| forward_err(self.variant.id(), e))
    }
}

/// The bottom of a Lite network up to the cut, as a [`Backbone`] whose
/// "features" are the flattened activations entering block `cut`: the
/// extraction pipeline computes and caches them once per image like any
/// feature (the id names the cut, so the cache keys differ).
pub struct CutBackbone {
    net: EfficientNetLite,
    cut: usize,
    id: String,
    dim: usize,
}

impl CutBackbone {
    pub fn new(net: EfficientNetLite, cut: usize) -> Result<Self, BackboneError> {
        let (c, h, w) = net.cut_shape(cut)?;
        Ok(CutBackbone {
            id: format!("{}-cut{cut}", net.variant.id()),
            dim: c * h * w,
            net,
            cut,
        })
    }

    pub fn net(&self) -> &EfficientNetLite {
        &self.net
    }

    pub fn cut(&self) -> usize {
        self.cut
    }
}

impl Backbone for CutBackbone {
    fn id(&self) -> &str {
        &self.id
    }

    fn input_size(&self) -> usize {
        self.net.input_size()
    }

    fn feature_dim(&self) -> usize {
        self.dim
    }

    fn normalization(&self) -> Normalization {
        self.net.normalization()
    }

    fn weights_hash(&self) -> &str {
        self.net.weights_hash()
    }

    fn features(&self, pixels: &Tensor) -> Result<Tensor, BackboneError> {
        self.net.activations(pixels, self.cut)
    }

    fn logits(&self, _: &Tensor) -> Result<Option<Tensor>, BackboneError> {
        Ok(None)
    }

    fn classify_features(&self, _: &Tensor) -> Result<Option<Tensor>, BackboneError> {
        Ok(None)
    }

    fn device(&self) -> &Device {
        self.net.device()
    }
}
