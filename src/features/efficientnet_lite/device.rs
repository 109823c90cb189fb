//! Stage 2 (features): EfficientNet-Lite off the CPU. The CPU path uses two
//! CPU-only custom ops (the direct depthwise kernel, the in-place bias +
//! ReLU6); on any other device (CUDA, `--features cuda`) the network runs on
//! plain candle ops instead: the bias as a broadcast add, the depthwise
//! convolution as [`depthwise_taps`] in channels-last layout. A child module
//! of `efficientnet_lite`, so it reads the network's private layers.

use candle_core::{Device, Tensor};

use super::{forward_err, Block, Conv, EfficientNetLite};
use crate::features::backbone::BackboneError;
use crate::features::depthwise_taps::{depthwise_taps, relu6};

/// `y + bias` per channel of NCHW `y`, optionally ReLU6.
pub(super) fn bias_act(y: &Tensor, bias: &Tensor, act: bool) -> candle_core::Result<Tensor> {
    let c = bias.dim(0)?;
    let y = y.broadcast_add(&bias.reshape((1, c, 1, 1))?)?;
    if act {
        relu6(&y)
    } else {
        Ok(y)
    }
}

/// The block's depthwise convolution (+ bias, ReLU6) on NCHW `h`.
pub(super) fn depthwise(block: &Block, h: &Tensor) -> candle_core::Result<Tensor> {
    let (c, _, k, _) = block.dw_weight.dims4()?;
    let taps = block.dw_weight.reshape((c, k * k))?.t()?.contiguous()?;
    let x = h.permute((0, 2, 3, 1))?.contiguous()?;
    let stride = block.depthwise.stride();
    depthwise_taps(&x, &taps, &block.dw_bias, k, stride, true)?
        .permute((0, 3, 1, 2))?
        .contiguous()
}

fn conv_to(c: &Conv, device: &Device) -> candle_core::Result<Conv> {
    Ok(Conv {
        weight: c.weight.to_device(device)?,
        bias: c.bias.to_device(device)?,
        ..c.clone()
    })
}

impl EfficientNetLite {
    /// The same network with every tensor on `device`.
    pub fn to_device(&self, device: &Device) -> Result<EfficientNetLite, BackboneError> {
        let run = || -> candle_core::Result<EfficientNetLite> {
            let mut net = self.clone();
            net.stem = conv_to(&self.stem, device)?;
            for b in &mut net.blocks {
                b.expand = b.expand.as_ref().map(|e| conv_to(e, device)).transpose()?;
                b.dw_weight = b.dw_weight.to_device(device)?;
                b.dw_bias = b.dw_bias.to_device(device)?;
                b.project = conv_to(&b.project, device)?;
            }
            net.head = conv_to(&self.head, device)?;
            net.fc_weight = self.fc_weight.to_device(device)?;
            net.fc_bias = self.fc_bias.to_device(device)?;
            net.device = device.clone();
            net.native = None;
            Ok(net)
        };
        run().map_err(|e| forward_err(self.variant.id(), e))
    }
}
