//! `ovr classify IMAGE...`: ImageNet top-k of each image through the
//! configured EfficientNet-Lite (a quick check that the port sees right).

use std::path::PathBuf;

use candle_core::{Tensor, D};

use crate::assets::cache::Cache;
use crate::config::Config;
use crate::configured::features::ensure_weights;
use crate::error::ImageError;
use crate::features::registry::load_lite;
use crate::images::decode::{prepare, read_image_file};
use crate::progress::Verbosity;
use crate::{Error, Result};

/// The 1000 ImageNet-1k class names in index order.
pub fn imagenet_classes() -> Vec<&'static str> {
    include_str!("../features/imagenet_classes.txt")
        .lines()
        .collect()
}

pub fn run(images: &[PathBuf], top: usize, config: &Config, cache: &Cache) -> Result<()> {
    ensure_weights(config, cache, Verbosity::Normal)?;
    let net = load_lite(&config.backbone, cache)?.ok_or_else(|| {
        Error::Usage(format!(
            "classify needs an EfficientNet-Lite backbone, not `{}`",
            config.backbone.name
        ))
    })?;
    let variant = net.variant();
    let names = imagenet_classes();
    let s = variant.input_size();
    for img in images {
        let bad = |e: ImageError| Error::Image {
            path: img.clone(),
            source: Box::new(e),
        };
        let opts = config.extract.decode_options();
        let bytes = read_image_file(img, &opts).map_err(|e| bad(e.into()))?;
        let pixels = prepare(&bytes, s, &opts).map_err(|e| bad(e.into()))?;
        let x = Tensor::from_vec(pixels, (1, 3, s, s), &candle_core::Device::Cpu)
            .map_err(|e| bad(e.into()))?;
        let (_, logits) = net.forward_both(&x)?;
        let probs = candle_nn::ops::softmax(&logits, D::Minus1)
            .and_then(|p| p.squeeze(0)?.to_vec1::<f32>())
            .map_err(|e| bad(e.into()))?;
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        println!("{}", img.display());
        for &i in order.iter().take(top) {
            println!(
                "  {:>4} {:<28} {:.4}",
                i,
                names.get(i).copied().unwrap_or("?"),
                probs[i]
            );
        }
    }
    Ok(())
}
