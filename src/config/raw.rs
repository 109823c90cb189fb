//! Config, raw layer: the TOML file as written by the user, every field
//! optional, unknown keys rejected. `--set section.key=value` overrides are
//! applied to the TOML table before it is read into these types.
//! [`super::resolve`] turns this into checked types.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub seed: Option<u64>,
    pub device: Option<String>,
    pub cache_dir: Option<String>,
    pub dataset: Option<RawDataset>,
    pub backbone: Option<RawBackbone>,
    pub extract: Option<RawExtract>,
    pub train: Option<RawTrain>,
    pub audit: Option<crate::audit::config::RawAudit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataset {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub root: Option<String>,
    pub val_fraction: Option<f64>,
    pub test_fraction: Option<f64>,
    pub limit_per_class: Option<i64>,
    pub style: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackbone {
    /// One backbone name, or a list whose features are concatenated.
    pub name: Option<toml::Value>,
    pub features: Option<String>,
    pub weights: Option<String>,
    pub depthwise: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtract {
    pub batch_size: Option<i64>,
    pub decode_threads: Option<i64>,
    pub resize: Option<String>,
    pub filter: Option<String>,
    pub exif_orientation: Option<bool>,
    pub jpeg_dct_scaling: Option<bool>,
    pub max_pixels: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrain {
    pub c_grid: Option<Vec<f64>>,
    pub multiclass_c_grid: Option<Vec<f64>>,
    pub class_weight: Option<String>,
    pub multiclass_class_weight: Option<String>,
    pub selection: Option<String>,
    pub grid_extension: Option<i64>,
    pub holdout_classes: Option<i64>,
    pub warm_start: Option<bool>,
    pub vector_scaling_lambdas: Option<Vec<f64>>,
    pub dirichlet_lambdas: Option<Vec<f64>>,
    pub calibration_folds: Option<i64>,
    pub max_iter: Option<i64>,
    pub tol: Option<f64>,
    pub lanes: Option<i64>,
    pub fuse: Option<i64>,
    pub calibration: Option<String>,
    pub calibration_split: Option<toml::Value>,
    pub combiner: Option<String>,
    pub specialist_head: Option<String>,
    pub multiclass_head: Option<String>,
    pub mlp: Option<RawMlp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMlp {
    pub hidden: Option<Vec<i64>>,
    pub lr: Option<f64>,
    pub weight_decay: Option<f64>,
    pub max_epochs: Option<i64>,
    pub patience: Option<i64>,
    pub batch_size: Option<i64>,
}
