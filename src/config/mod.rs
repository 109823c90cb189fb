//! Config, checked layer: a TOML file plus `--set key=value` overrides,
//! resolved into validated types every stage can trust. A wrong key or value
//! is an error naming the field and the allowed values.
//!
//! Layers: TOML text -> `toml::Table` (+ `--set` overrides) ->
//! [`raw::RawConfig`] (serde, unknown keys rejected; + the typed shortcut
//! flags, [`cli::CliSettings`]) -> [`Config`] (ranges and enums checked, by
//! one resolver per section: dataset and backbone here, `[extract]` in
//! `extract.rs`, `[train]` in `train.rs`). Enum spellings: `choice.rs`.

pub mod audit;
pub mod backbone;
pub mod c_rule;
pub mod choice;
pub mod cli;
pub mod dataset;
pub mod extract;
pub mod raw;
pub mod study;
pub mod train;

use std::path::{Path, PathBuf};

use backbone::resolve_backbone;
pub use backbone::{BackboneParams, BACKBONES_HINT};
pub use cli::{CliSettings, DatasetChoice};
use dataset::resolve_dataset;
pub use dataset::{DatasetKind, DatasetParams, DATASET_KINDS};
pub use extract::{ExtractParams, ResizeFilter, ResizeMode, DEFAULT_MAX_PIXELS};
use raw::RawConfig;
use train::resolve_train;
pub use train::TrainParams;

use crate::device::DeviceSpec;
pub use crate::features::variant::FeatureKind;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not a config of this kind (no underlying error).
    #[error("config {origin}: {message}")]
    Parse { origin: String, message: String },
    /// `what` of the file failed to parse; the source is toml's error.
    #[error("config {origin}: {what}")]
    Toml {
        origin: String,
        what: &'static str,
        #[source]
        source: Box<toml::de::Error>,
    },
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
    #[error("config {origin}: cannot write it as TOML")]
    Encode {
        origin: String,
        #[source]
        source: toml::ser::Error,
    },
}

/// Shorthand for `map_err(toml_error(origin, what))` on a toml parse.
pub(crate) fn toml_error<'a>(
    origin: &'a str,
    what: &'static str,
) -> impl FnOnce(toml::de::Error) -> ConfigError + 'a {
    move |source| ConfigError::Toml {
        origin: origin.to_string(),
        what,
        source: Box::new(source),
    }
}

/// The checked configuration of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Config {
    pub seed: u64,
    /// Where extraction and training run: `cpu` (default) or `cuda:N`
    /// (builds with `--features cuda`).
    #[serde(serialize_with = "crate::util::choice::serialize_display")]
    pub device: DeviceSpec,
    pub cache_dir: Option<PathBuf>,
    pub dataset: DatasetParams,
    pub backbone: BackboneParams,
    pub extract: ExtractParams,
    pub train: TrainParams,
    /// `[audit]`: near-duplicate threshold and out-of-fold settings.
    pub audit: crate::config::audit::AuditConfig,
    /// The merged TOML (file + overrides) this config was resolved from;
    /// saved with ensembles so `compare` and `score` see the same settings.
    #[serde(skip)]
    pub source_toml: String,
}

impl Config {
    /// Reads `path` (if any), applies `overrides` (`section.key=value`), checks everything.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Config, ConfigError> {
        Self::load_cli(path, overrides, &CliSettings::default())
    }

    /// [`Config::load`], then the shortcut flags of the command line.
    pub fn load_cli(
        path: Option<&Path>,
        overrides: &[String],
        cli: &CliSettings,
    ) -> Result<Config, ConfigError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                Self::from_toml_cli(&text, &p.display().to_string(), overrides, cli)
            }
            None => Self::from_toml_cli("", "(defaults)", overrides, cli),
        }
    }

    /// Resolves TOML text (`origin` names it in errors) plus overrides.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        Self::from_toml_cli(text, origin, overrides, &CliSettings::default())
    }

    /// [`Config::from_toml_str`], then the shortcut flags (they win over
    /// both the text and `overrides`).
    pub fn from_toml_cli(
        text: &str,
        origin: &str,
        overrides: &[String],
        cli: &CliSettings,
    ) -> Result<Config, ConfigError> {
        let parse = |message: String| ConfigError::Parse {
            origin: origin.to_string(),
            message,
        };
        let mut table = text
            .parse::<toml::Table>()
            .map_err(toml_error(origin, "not valid TOML"))?;
        if table.contains_key("study") {
            return Err(parse(
                "this is a study file (it has a [study] table): run it with `ovr study FILE`"
                    .into(),
            ));
        }
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let mut raw: RawConfig = toml::Value::Table(table)
            .try_into()
            .map_err(toml_error(origin, "not a valid ovr config"))?;
        raw.apply_cli(cli);
        let source_toml = toml::to_string(&raw).map_err(|source| ConfigError::Encode {
            origin: origin.to_string(),
            source,
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
    let value = value.trim();
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    set_path(table, key, parsed).ok_or_else(bad)
}

/// Sets the dotted `key` (`section.field`, any depth) to `value`, creating
/// the tables on the way; `None` when a part is empty or not a table.
pub fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Option<()> {
    let path: Vec<&str> = key.trim().split('.').map(str::trim).collect();
    if path.iter().any(|p| p.is_empty()) {
        return None;
    }
    let (last, parents) = path.split_last()?;
    let mut cur = table;
    for p in parents {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut()?;
    }
    cur.insert(last.to_string(), value);
    Some(())
}

/// The table as TOML text (`origin` names it in the error).
pub(crate) fn table_text(table: &toml::Table, origin: &str) -> Result<String, ConfigError> {
    toml::to_string(table).map_err(|source| ConfigError::Encode {
        origin: origin.to_string(),
        source,
    })
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

/// The top-level `device` (default cpu).
fn resolve_device(d: Option<&str>) -> Result<DeviceSpec, ConfigError> {
    match d {
        None => Ok(DeviceSpec::Cpu),
        Some(d) => DeviceSpec::parse(d)
            .map_err(|_| invalid("device", d, "unknown device", crate::device::ALLOWED)),
    }
}

/// Checks a raw config and fills in defaults.
pub fn resolve(raw: RawConfig) -> Result<Config, ConfigError> {
    let dataset = resolve_dataset(raw.dataset.unwrap_or_default())?;
    let backbone = resolve_backbone(raw.backbone.unwrap_or_default())?;
    let device = resolve_device(raw.device.as_deref())?;
    let extract = extract::resolve_extract(raw.extract.unwrap_or_default(), device.is_cuda())?;
    let train = resolve_train(raw.train, device)?;
    Ok(Config {
        seed: raw.seed.unwrap_or(42),
        device,
        cache_dir: raw.cache_dir.as_deref().map(expand_home),
        dataset,
        backbone,
        extract,
        train,
        audit: crate::config::audit::resolve_audit(raw.audit)?,
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
