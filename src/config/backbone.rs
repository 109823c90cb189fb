//! Config, checked layer for `[backbone]`: the backbone (or the stack of
//! backbones whose features are concatenated), which of their outputs is the
//! feature vector, local weights and the depthwise implementation. Read by
//! the features stage.

use super::choice::choice;
use super::raw::RawBackbone;
use super::{expand_home, invalid, ConfigError};
use crate::features::efficientnet_lite::DepthwiseImpl;
pub use crate::features::params::{BackboneParams, BACKBONES_HINT};
use crate::features::variant::FeatureKind;

/// `backbone.name`: one name or a non-empty list of names.
fn backbone_names(name: Option<toml::Value>) -> Result<Vec<String>, ConfigError> {
    match name {
        None => Ok(vec!["efficientnet-lite0".into()]),
        Some(toml::Value::String(s)) => Ok(vec![s]),
        Some(toml::Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                invalid(
                    "backbone.name",
                    toml::Value::Array(a.clone()),
                    "must be a name or a non-empty list of names",
                    BACKBONES_HINT,
                )
            }),
        Some(other) => Err(invalid(
            "backbone.name",
            other,
            "must be a name or a list of names",
            BACKBONES_HINT,
        )),
    }
}

/// Every backbone known, stacked ones Lite (cached weights), none twice.
fn check_backbone_names(names: &[String]) -> Result<(), ConfigError> {
    for (i, bname) in names.iter().enumerate() {
        let lite = crate::features::efficientnet_lite::LiteVariant::from_id(bname).is_some();
        let known = lite || crate::features::timm::TIMM_BACKBONES.contains(&bname.as_str());
        if !known {
            return Err(invalid(
                "backbone.name",
                bname,
                "unknown backbone",
                BACKBONES_HINT,
            ));
        }
        if i > 0 && !lite {
            return Err(invalid(
                "backbone.name",
                bname,
                "only the first backbone may use `backbone.weights`; stacked ones must have cached weights",
                "efficientnet-lite0, efficientnet-lite1, efficientnet-lite2 after the first",
            ));
        }
        if names[..i].contains(bname) {
            return Err(invalid(
                "backbone.name",
                bname,
                "listed twice",
                "each backbone once",
            ));
        }
    }
    Ok(())
}

/// Checks `[backbone]`.
pub(super) fn resolve_backbone(b: RawBackbone) -> Result<BackboneParams, ConfigError> {
    let names = backbone_names(b.name)?;
    check_backbone_names(&names)?;
    let features = choice(
        "backbone.features",
        b.features.as_deref(),
        FeatureKind::Penultimate,
        None,
    )?;
    let depthwise = choice(
        "backbone.depthwise",
        b.depthwise.as_deref(),
        DepthwiseImpl::Native,
        None,
    )?;
    let mut names = names.into_iter();
    Ok(BackboneParams {
        name: names.next().unwrap_or_default(),
        stack: names.collect(),
        features,
        weights: b.weights.as_deref().map(expand_home),
        depthwise,
    })
}
