//! Stage 2 (features): EfficientNet-Lite on the native NHWC CPU engine
//! ([`crate::features::lite_cpu`]), the default CPU extraction path
//! (`backbone.depthwise = "native"`). Hands the folded weights of the candle
//! network to the engine once at load, and runs `[B, 3, S, S]` pixel
//! tensors through it without copying them. A child module of
//! `efficientnet_lite`, so it reads the network's private layers.

use std::sync::Arc;

use candle_core::{DType, Device, Storage, Tensor};

use super::top::DenseWeights;
use super::{forward_err, EfficientNetLite};
use crate::features::backbone::BackboneError;
use crate::features::lite_cpu::{par, BlockSpec, DenseSpec, Isa, LiteEngine, LiteSpec};

fn spec(d: &DenseWeights) -> DenseSpec {
    DenseSpec {
        w: d.w.clone(),
        b: d.b.clone(),
        k: d.inputs,
        n: d.outputs,
    }
}

impl EfficientNetLite {
    /// Every folded weight below the classifier, as host arrays.
    pub fn native_spec(&self) -> Result<LiteSpec, BackboneError> {
        let top = self.top_weights(0)?;
        let stem_w = self
            .stem
            .weight
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| forward_err(self.variant.id(), e))?;
        if self.stem.kernel != 3 || self.stem.stride != 2 {
            return Err(BackboneError::Invalid {
                name: self.variant.id().to_string(),
                message: "the native engine expects a 3x3 stride-2 stem".into(),
            });
        }
        Ok(LiteSpec {
            input: self.variant.input_size(),
            stem_w,
            stem_b: self.stem.bias_vec.clone(),
            blocks: top
                .blocks
                .iter()
                .map(|b| BlockSpec {
                    expand: b.expand.as_ref().map(spec),
                    dw_taps: b.dw_w.clone(),
                    dw_bias: b.dw_b.clone(),
                    kernel: b.kernel,
                    stride: b.stride,
                    project: spec(&b.project),
                    residual: b.residual,
                })
                .collect(),
            head: spec(&top.head),
        })
    }

    /// Packs the native engine for `isa` on `threads` workers and makes it
    /// this network's CPU path.
    pub fn build_native(&mut self, isa: Isa, threads: usize) -> Result<(), BackboneError> {
        let spec = self.native_spec()?;
        self.native = Some(Arc::new(LiteEngine::new(&spec, isa, threads)));
        Ok(())
    }

    /// The native engine with the default level (`OVR_SIMD`, else the best
    /// the CPU has) and threads (`OVR_THREADS`, else the physical cores).
    /// On a CPU without AVX2 (e.g. aarch64) the portable kernels are slower
    /// than candle's, so unless `OVR_SIMD=portable` asks for them the
    /// network stays on the candle path.
    pub(super) fn build_native_default(&mut self) -> Result<(), BackboneError> {
        let isa = Isa::from_env();
        if isa == Isa::Portable && !Isa::forced_by_env() {
            self.native = None;
            return Ok(());
        }
        self.build_native(isa, par::default_threads())
    }

    /// The packed engine, when this network runs on it.
    pub fn native(&self) -> Option<&LiteEngine> {
        match self.depthwise {
            super::DepthwiseImpl::Native if self.device.is_cpu() => self.native.as_deref(),
            _ => None,
        }
    }

    /// Pooled features `[B, D]` from the engine for pixels `[B, 3, S, S]`.
    pub(super) fn native_features(
        &self,
        engine: &LiteEngine,
        pixels: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let x = pixels.to_dtype(DType::F32)?.contiguous()?;
        let (b, c, h, w) = x.dims4()?;
        let s = engine.input_size();
        if (c, h, w) != (3, s, s) {
            candle_core::bail!("expected [B, 3, {s}, {s}] pixels, got {:?}", x.dims());
        }
        let dim = engine.feature_dim();
        let mut out = vec![0f32; b * dim];
        {
            let (storage, layout) = x.storage_and_layout();
            let Storage::Cpu(cpu) = &*storage else {
                candle_core::bail!("the native engine runs on CPU tensors only");
            };
            let all = cpu.as_slice::<f32>()?;
            let px = &all[layout.start_offset()..layout.start_offset() + b * 3 * s * s];
            engine.features(px, b, &mut out);
        }
        Tensor::from_vec(out, (b, dim), &Device::Cpu)
    }
}
