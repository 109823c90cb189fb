//! Config, checked layer: a TOML file plus `--set key=value` overrides,
//! resolved into validated types every stage can trust. A wrong key or value
//! is an error naming the field and the allowed values.
//!
//! Layers: TOML text -> `toml::Table` (+ overrides) -> [`raw::RawConfig`]
//! (serde, unknown keys rejected) -> [`Config`] (ranges and enums checked).

pub mod extract;
pub mod raw;
pub mod study;
pub mod train;

use std::path::{Path, PathBuf};

pub use extract::{ExtractConfig, ResizeFilter, ResizeMode, DEFAULT_MAX_PIXELS};
use raw::RawConfig;
use train::{resolve_train, TrainConfig};

use crate::device::DeviceSpec;
use crate::features::efficientnet_lite::DepthwiseImpl;
pub use crate::features::variant::FeatureKind;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("config field `{field}` = {value}: {reason}; allowed: {allowed}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
        allowed: String,
    },
    #[error("config field `{field}` is required: {hint}")]
    Missing { field: String, hint: String },
    #[error("override `{text}` must look like `section.key=value`")]
    BadOverride { text: String },
}

/// Where the images come from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum DatasetKind {
    /// Built by `ovr fetch dataset emoji40` in the cache.
    Emoji40,
    /// Debian's IDX files, read directly.
    FashionMnist,
    /// `root/<class>/<image>` or `root/{train,val,test}/<class>/<image>`.
    ImageFolder { root: PathBuf },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DatasetConfig {
    pub kind: DatasetKind,
    /// Name used in cache paths and reports.
    pub name: String,
    /// Fraction of each class held out for validation when the tree has no split level.
    pub val_fraction: f64,
    /// Fraction held out for testing when the tree has no split level.
    pub test_fraction: f64,
    /// Keep at most this many images per class and split (a stratified subset).
    pub limit_per_class: Option<usize>,
    /// emoji40 only: keep one vendor's images (`twitter` or `google`).
    pub style: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BackboneConfig {
    /// The first (or only) backbone.
    pub name: String,
    /// Further backbones whose outputs are concatenated after `name`'s, each
    /// extracted and cached on its own (`name = ["a", "b"]` in the TOML).
    pub stack: Vec<String>,
    /// Which output of each backbone is used.
    pub features: FeatureKind,
    /// Local safetensors file; `None` means the cached converted weights.
    pub weights: Option<PathBuf>,
    pub depthwise: DepthwiseImpl,
}

impl BackboneConfig {
    /// Every backbone, `name` first.
    pub fn names(&self) -> Vec<&str> {
        std::iter::once(self.name.as_str())
            .chain(self.stack.iter().map(String::as_str))
            .collect()
    }

    /// One config per backbone (penultimate features, nothing stacked); only
    /// the first keeps `weights`.
    pub fn parts(&self) -> Vec<BackboneConfig> {
        self.names()
            .into_iter()
            .enumerate()
            .map(|(i, n)| BackboneConfig {
                name: n.to_string(),
                stack: Vec::new(),
                features: FeatureKind::Penultimate,
                weights: if i == 0 { self.weights.clone() } else { None },
                depthwise: self.depthwise,
            })
            .collect()
    }
}

/// Serializes a value by its `Display` text (device specs).
pub(crate) fn display<T: std::fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The checked configuration of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Config {
    pub seed: u64,
    /// Where extraction and training run: `cpu` (default) or `cuda:N`
    /// (builds with `--features cuda`).
    #[serde(serialize_with = "display")]
    pub device: DeviceSpec,
    pub cache_dir: Option<PathBuf>,
    pub dataset: DatasetConfig,
    pub backbone: BackboneConfig,
    pub extract: ExtractConfig,
    pub train: TrainConfig,
    /// `[audit]`: near-duplicate threshold and out-of-fold settings.
    pub audit: crate::audit::config::AuditConfig,
    /// The merged TOML (file + overrides) this config was resolved from;
    /// saved with ensembles so `compare` and `score` see the same settings.
    #[serde(skip)]
    pub source_toml: String,
}

pub const BACKBONES_HINT: &str = "efficientnet-lite0, efficientnet-lite1, efficientnet-lite2, \
resnet18, resnet50, convnext-*, repvgg-*, dinov2-vits14";

impl Config {
    /// Reads `path` (if any), applies `overrides` (`section.key=value`), checks everything.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Config, ConfigError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                Self::from_toml_str(&text, &p.display().to_string(), overrides)
            }
            None => Self::from_toml_str("", "(defaults)", overrides),
        }
    }

    /// Resolves TOML text (`origin` names it in errors) plus overrides.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        let mut table = text
            .parse::<toml::Table>()
            .map_err(|e| ConfigError::Parse {
                origin: origin.to_string(),
                message: e.to_string(),
            })?;
        if table.contains_key("study") {
            return Err(ConfigError::Parse {
                origin: origin.to_string(),
                message:
                    "this is a study file (it has a [study] table): run it with `ovr study FILE`"
                        .into(),
            });
        }
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let source_toml = toml::to_string(&table).unwrap_or_default();
        let raw: RawConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    origin: origin.to_string(),
                    message: e.to_string(),
                })?;
        let mut config = resolve(raw)?;
        config.source_toml = source_toml;
        Ok(config)
    }
}

/// Sets `a.b.c = value` in the table; the value is read as TOML when it parses
/// (numbers, booleans, arrays, quoted strings), else taken as a bare string.
pub fn apply_override(table: &mut toml::Table, text: &str) -> Result<(), ConfigError> {
    let bad = || ConfigError::BadOverride {
        text: text.to_string(),
    };
    let (key, value) = text.split_once('=').ok_or_else(bad)?;
    let path: Vec<&str> = key.trim().split('.').map(str::trim).collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let value = value.trim();
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let (last, parents) = path.split_last().ok_or_else(bad)?;
    let mut cur = table;
    for p in parents {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(bad)?;
    }
    cur.insert(last.to_string(), parsed);
    Ok(())
}

pub(crate) fn invalid(
    field: &str,
    value: impl std::fmt::Display,
    reason: &str,
    allowed: &str,
) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
        allowed: allowed.to_string(),
    }
}

fn fraction(field: &str, v: Option<f64>, default: f64) -> Result<f64, ConfigError> {
    let v = v.unwrap_or(default);
    if !(0.0..1.0).contains(&v) || !v.is_finite() {
        return Err(invalid(field, v, "out of range", "a number in [0, 1)"));
    }
    Ok(v)
}

pub(crate) fn positive(
    field: &str,
    v: Option<i64>,
    default: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    if v < 1 || v as u64 > max as u64 {
        return Err(invalid(
            field,
            v,
            "out of range",
            &format!("an integer in 1..={max}"),
        ));
    }
    Ok(v as usize)
}

/// Checks a raw config and fills in defaults.
pub fn resolve(raw: RawConfig) -> Result<Config, ConfigError> {
    let d = raw.dataset.unwrap_or_default();
    let kind_name = d.kind.as_deref().unwrap_or(if d.root.is_some() {
        "image-folder"
    } else {
        "emoji40"
    });
    let kind = match kind_name {
        "emoji40" => DatasetKind::Emoji40,
        "fashion-mnist" => DatasetKind::FashionMnist,
        "image-folder" => DatasetKind::ImageFolder {
            root: d
                .root
                .as_deref()
                .map(expand_home)
                .ok_or_else(|| ConfigError::Missing {
                    field: "dataset.root".into(),
                    hint: "an image-folder dataset needs `root = \"path/to/images\"`".into(),
                })?,
        },
        other => {
            return Err(invalid(
                "dataset.kind",
                other,
                "unknown dataset kind",
                "emoji40, fashion-mnist, image-folder",
            ))
        }
    };
    if d.root.is_some() && !matches!(kind, DatasetKind::ImageFolder { .. }) {
        return Err(invalid(
            "dataset.root",
            d.root.as_deref().unwrap_or_default(),
            &format!("`root` only applies to kind = \"image-folder\", not \"{kind_name}\""),
            "remove `root` or set kind = \"image-folder\"",
        ));
    }
    let name = match (&d.name, &kind) {
        (Some(n), _) => n.clone(),
        (None, DatasetKind::ImageFolder { root }) => root
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "images".into()),
        (None, _) => kind_name.to_string(),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || name.starts_with('.')
    {
        return Err(invalid(
            "dataset.name",
            &name,
            "used in file names",
            "letters, digits, '-', '_', '.'",
        ));
    }
    let val_fraction = fraction("dataset.val_fraction", d.val_fraction, 0.2)?;
    let test_fraction = fraction("dataset.test_fraction", d.test_fraction, 0.2)?;
    if val_fraction + test_fraction >= 1.0 {
        return Err(invalid(
            "dataset.val_fraction + dataset.test_fraction",
            val_fraction + test_fraction,
            "leaves no training images",
            "a sum below 1",
        ));
    }
    let limit_per_class = match d.limit_per_class {
        None => None,
        Some(v) => Some(positive(
            "dataset.limit_per_class",
            Some(v),
            1,
            usize::MAX >> 1,
        )?),
    };
    let style = match d.style.as_deref() {
        None => None,
        Some(s) if kind != DatasetKind::Emoji40 => {
            return Err(invalid(
                "dataset.style",
                s,
                "applies to the emoji40 dataset only",
                "unset, or dataset.kind = \"emoji40\"",
            ))
        }
        Some(s) if crate::images::emoji40::STYLES.contains(&s) => Some(s.to_string()),
        Some(s) => {
            return Err(invalid(
                "dataset.style",
                s,
                "is not a style of emoji40",
                &crate::images::emoji40::STYLES.join(", "),
            ))
        }
    };

    let b = raw.backbone.unwrap_or_default();
    let names: Vec<String> = match b.name {
        None => vec!["efficientnet-lite0".into()],
        Some(toml::Value::String(s)) => vec![s],
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
            })?,
        Some(other) => {
            return Err(invalid(
                "backbone.name",
                other,
                "must be a name or a list of names",
                BACKBONES_HINT,
            ))
        }
    };
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
    let features = match b.features.as_deref().unwrap_or("penultimate") {
        "penultimate" => FeatureKind::Penultimate,
        "logits" => FeatureKind::Logits,
        other => {
            return Err(invalid(
                "backbone.features",
                other,
                "unknown feature kind",
                "penultimate, logits",
            ))
        }
    };
    let mut names = names.into_iter();
    let bname = names.next().unwrap_or_default();
    let stack: Vec<String> = names.collect();
    let depthwise = match b.depthwise.as_deref().unwrap_or("native") {
        "native" => DepthwiseImpl::Native,
        "direct" => DepthwiseImpl::Direct,
        "candle" => DepthwiseImpl::CandleGrouped,
        "portable" => DepthwiseImpl::Portable,
        other => {
            return Err(invalid(
                "backbone.depthwise",
                other,
                "unknown implementation",
                "native, direct, candle, portable",
            ))
        }
    };

    let device = match raw.device.as_deref() {
        None => DeviceSpec::Cpu,
        Some(d) => DeviceSpec::parse(d)
            .map_err(|_| invalid("device", d, "unknown device", crate::device::ALLOWED))?,
    };
    let extract = extract::resolve_extract(raw.extract.unwrap_or_default(), device.is_cuda())?;
    let mut train = resolve_train(raw.train)?;
    train.device = device;
    Ok(Config {
        seed: raw.seed.unwrap_or(42),
        device,
        cache_dir: raw.cache_dir.as_deref().map(expand_home),
        dataset: DatasetConfig {
            kind,
            name,
            val_fraction,
            test_fraction,
            limit_per_class,
            style,
        },
        backbone: BackboneConfig {
            name: bname,
            stack,
            features,
            weights: b.weights.as_deref().map(expand_home),
            depthwise,
        },
        extract,
        train,
        audit: crate::audit::config::resolve_audit(raw.audit)?,
        source_toml: String::new(),
    })
}

/// `~/x` -> `$HOME/x`; anything else unchanged.
pub fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests;
