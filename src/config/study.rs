//! Config, study layer: a run config plus a `[study]` table listing named
//! arms (features x head x settings), resolved into one checked [`Config`]
//! per arm. Each arm starts from the file's own sections (after the command
//! line's `--set` overrides) and applies its fields, then its own `set`
//! list, so an arm is exactly what `ovr train` would run with those flags.
//!
//! ```toml
//! [study]
//! reference = "c"
//! [[study.arms]]
//! name = "a"
//! title = "stacked logits + MLP"
//! backbone = ["efficientnet-lite0", "efficientnet-lite2"]
//! features = "logits"
//! head = "multiclass-mlp"
//! set = ["train.mlp.lr=0.001"]
//! ```

use crate::util::choice::Choice;
use serde::Deserialize;

use super::{
    apply_override, invalid, set_path, table_text, toml_error, CliSettings, Config, ConfigError,
};
use crate::heads::finetune::FinetuneSpec;

/// What an arm trains and which of its outputs is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArmHead {
    /// Logistic multinomial head, temperature-scaled.
    MulticlassLinear,
    /// MLP softmax head (`[train.mlp]`), temperature-scaled.
    MulticlassMlp,
    /// Logistic one-vs-rest specialists, calibrated argmax.
    SpecialistsLinear,
    /// MLP one-vs-rest specialists (one binary network per class), calibrated argmax.
    SpecialistsMlp,
    /// Top blocks of the backbone + a linear head, trained from cached activations.
    Finetune,
}

impl crate::util::choice::Choice for ArmHead {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("multiclass-linear", ArmHead::MulticlassLinear),
        ("multiclass-mlp", ArmHead::MulticlassMlp),
        ("specialists-linear", ArmHead::SpecialistsLinear),
        ("specialists-mlp", ArmHead::SpecialistsMlp),
        ("finetune", ArmHead::Finetune),
    ];
    const UNKNOWN: &'static str = "unknown head";
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStudy {
    name: Option<String>,
    reference: Option<String>,
    resamples: Option<i64>,
    #[serde(default)]
    arms: Vec<RawArm>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArm {
    name: String,
    title: Option<String>,
    backbone: Option<toml::Value>,
    features: Option<String>,
    head: String,
    #[serde(default)]
    set: Vec<String>,
    finetune: Option<FinetuneSpec>,
}

/// One checked arm.
#[derive(Debug, Clone)]
pub struct Arm {
    pub name: String,
    pub title: String,
    pub head: ArmHead,
    /// The run config of this arm (dataset, backbone(s), features, training).
    pub config: Config,
    /// Fine-tune settings (`head = "finetune"` only).
    pub finetune: Option<FinetuneSpec>,
}

/// A checked study: arms in file order.
#[derive(Debug, Clone)]
pub struct Study {
    pub name: String,
    pub arms: Vec<Arm>,
    /// Index of the arm the others are compared against.
    pub reference: usize,
    pub resamples: usize,
    /// The file's own config (no arm applied).
    pub base: Config,
}

/// Parses a study file (`origin` names it in errors) with `--set` overrides.
pub fn parse_study(text: &str, origin: &str, overrides: &[String]) -> Result<Study, ConfigError> {
    parse_study_cli(text, origin, overrides, &CliSettings::default())
}

/// [`parse_study`], then the command line's shortcut flags (`--device`) for
/// the base and every arm, as `ovr train` would apply them.
pub fn parse_study_cli(
    text: &str,
    origin: &str,
    overrides: &[String],
    cli: &CliSettings,
) -> Result<Study, ConfigError> {
    let mut table: toml::Table = text.parse().map_err(toml_error(origin, "not valid TOML"))?;
    let raw: RawStudy = match table.remove("study") {
        Some(v) => v
            .try_into()
            .map_err(toml_error(origin, "the [study] table is not valid"))?,
        None => {
            return Err(ConfigError::Missing {
                field: "study.arms".into(),
                hint: "a study file lists its arms as [[study.arms]] tables (see configs/classic-question.toml)".into(),
            })
        }
    };
    for o in overrides {
        apply_override(&mut table, o)?;
    }
    let base = Config::from_toml_cli(&table_text(&table, origin)?, origin, &[], cli)?;
    if raw.arms.is_empty() {
        return Err(ConfigError::Missing {
            field: "study.arms".into(),
            hint: "list at least one [[study.arms]]".into(),
        });
    }
    let mut arms: Vec<Arm> = Vec::new();
    for (i, a) in raw.arms.into_iter().enumerate() {
        let arm = resolve_arm(i, a, &table, origin, cli)?;
        if arm.name.is_empty() || arms.iter().any(|b| b.name == arm.name) {
            return Err(invalid(
                &format!("study.arms[{i}].name"),
                &arm.name,
                "arm names must be non-empty and unique",
                "a short unique name per arm",
            ));
        }
        arms.push(arm);
    }
    let reference = match &raw.reference {
        None => 0,
        Some(r) => arms.iter().position(|a| &a.name == r).ok_or_else(|| {
            let names: Vec<&str> = arms.iter().map(|a| a.name.as_str()).collect();
            invalid(
                "study.reference",
                r,
                "no arm has this name",
                &names.join(", "),
            )
        })?,
    };
    let resamples = match raw.resamples {
        None => crate::metrics::RESAMPLES_DEFAULT,
        Some(n) if n >= 1 => n as usize,
        Some(n) => return Err(invalid("study.resamples", n, "must be >= 1", "e.g. 2000")),
    };
    Ok(Study {
        name: raw.name.unwrap_or_else(|| base.dataset.name.clone()),
        arms,
        reference,
        resamples,
        base,
    })
}

/// The file's sections with arm `a`'s fields and `set` list applied, through
/// the same override logic as `--set`, then resolved like `ovr train`.
fn resolve_arm(
    i: usize,
    a: RawArm,
    table: &toml::Table,
    origin: &str,
    cli: &CliSettings,
) -> Result<Arm, ConfigError> {
    let field = |f: &str| format!("study.arms[{i}].{f}");
    let head = ArmHead::parse(&a.head).ok_or_else(|| {
        invalid(
            &field("head"),
            &a.head,
            ArmHead::UNKNOWN,
            &ArmHead::allowed(),
        )
    })?;
    let mut t = table.clone();
    let mut fields: Vec<(&'static str, toml::Value)> = Vec::new();
    if let Some(b) = a.backbone {
        fields.push(("backbone.name", b));
    }
    if let Some(f) = a.features {
        fields.push(("backbone.features", toml::Value::String(f)));
    }
    let kind = |k: &'static str, v: &str| (k, toml::Value::String(v.into()));
    match head {
        ArmHead::MulticlassLinear => fields.push(kind("train.multiclass_head", "linear")),
        ArmHead::MulticlassMlp => fields.push(kind("train.multiclass_head", "mlp")),
        ArmHead::SpecialistsLinear => fields.push(kind("train.specialist_head", "linear")),
        ArmHead::SpecialistsMlp => fields.push(kind("train.specialist_head", "mlp")),
        ArmHead::Finetune => {}
    }
    for (key, value) in fields {
        set_path(&mut t, key, value).ok_or_else(|| {
            invalid(
                &field("name"),
                &a.name,
                &format!("`{key}` is not a table field"),
                key,
            )
        })?;
    }
    for o in &a.set {
        apply_override(&mut t, o)?;
    }
    let arm_origin = format!("{origin}, arm `{}`", a.name);
    let config = Config::from_toml_cli(&table_text(&t, &arm_origin)?, &arm_origin, &[], cli)?;
    let finetune = match (head, a.finetune) {
        (ArmHead::Finetune, f) => {
            let f = f.unwrap_or_default();
            f.validate().map_err(|e| {
                invalid(
                    &field("finetune"),
                    format!("{f:?}"),
                    &e.to_string(),
                    "see FinetuneSpec",
                )
            })?;
            Some(f)
        }
        (_, Some(_)) => {
            return Err(invalid(
                &field("finetune"),
                "(table)",
                "only arms with head = \"finetune\" take fine-tune settings",
                "remove it or set head = \"finetune\"",
            ))
        }
        (_, None) => None,
    };
    Ok(Arm {
        title: a.title.unwrap_or_else(|| a.name.clone()),
        name: a.name,
        head,
        config,
        finetune,
    })
}

#[cfg(test)]
#[path = "study_tests.rs"]
mod tests;
