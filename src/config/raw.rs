//! Config, raw layer: the TOML file as written by the user, every field
//! optional, unknown keys rejected. `--set section.key=value` overrides are
//! applied to the TOML table before it is read into these types; the typed
//! command-line shortcuts ([`super::cli::CliSettings`]) are applied to them
//! by [`RawConfig::apply_cli`]. [`super::resolve`] turns this into checked
//! types; what is serialized from here is the config saved with ensembles.

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<RawDataset>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backbone: Option<RawBackbone>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extract: Option<RawExtract>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<RawTrain>,
    pub audit: Option<crate::config::audit::RawAudit>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataset {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_per_class: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackbone {
    /// One backbone name, or a list whose features are concatenated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<toml::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depthwise: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtract {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_threads: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resize: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exif_orientation: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jpeg_dct_scaling: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pixels: Option<i64>,
    pub dtype: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrain {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c_grid: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiclass_c_grid: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_weight: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiclass_class_weight: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid_extension: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_classes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_scaling_lambdas: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dirichlet_lambdas: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration_folds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_iter: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tol: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lanes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuse: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration_split: Option<toml::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub combiner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specialist_head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiclass_head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlp: Option<RawMlp>,
    /// Rows per block when `ovr train` streams the training split: see
    /// `ensemble::params::TrainParams::block_rows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_rows: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c_rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c_rule_folds: Option<i64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMlp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_epochs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patience: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<i64>,
}
