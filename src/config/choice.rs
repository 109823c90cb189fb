//! Config, enum spellings: one table of `(spelling, variant)` per enum a
//! config field or a flag takes. The resolver parses through it, the error
//! text's "allowed: ..." is generated from it, clap's value parser reads it
//! ([`clap_parser`]), and the config's own enums serialize and deserialize
//! through it (`choice_serde!`), so a spelling is written once.

use super::{invalid, ConfigError};

/// An enum with one spelling per variant.
pub trait Choice: Copy + PartialEq + Send + Sync + 'static {
    /// Every variant with its spelling, in the order errors list them.
    const TABLE: &'static [(&'static str, Self)];
    /// What a wrong value is called in errors, e.g. "unknown resize mode".
    const UNKNOWN: &'static str;

    /// The spelling of `self`.
    fn name(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }

    /// The variant spelled `s`.
    fn parse(s: &str) -> Option<Self> {
        Self::TABLE.iter().find(|(n, _)| *n == s).map(|(_, v)| *v)
    }

    /// Every spelling, comma-separated (the "allowed" of errors).
    fn allowed() -> String {
        let names: Vec<&str> = Self::TABLE.iter().map(|(n, _)| *n).collect();
        names.join(", ")
    }
}

/// The value of `field` (`default` when unset), or an error listing the
/// table's spellings (`note` appended to them when given).
pub fn choice<T: Choice>(
    field: &str,
    v: Option<&str>,
    default: T,
    note: Option<&str>,
) -> Result<T, ConfigError> {
    let Some(s) = v else { return Ok(default) };
    T::parse(s).ok_or_else(|| {
        let allowed = match note {
            Some(n) => format!("{} {n}", T::allowed()),
            None => T::allowed(),
        };
        invalid(field, s, T::UNKNOWN, &allowed)
    })
}

/// A clap value parser accepting exactly the table's spellings (and listing
/// them in `--help` and in its error).
pub fn clap_parser<T: Choice>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser as _;
    let names: Vec<&'static str> = T::TABLE.iter().map(|(n, _)| *n).collect();
    clap::builder::PossibleValuesParser::new(names)
        .map(|s: String| T::parse(&s).unwrap_or(T::TABLE[0].1))
}

/// `Serialize` / `Deserialize` of a [`Choice`] through its spellings.
macro_rules! choice_serde {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::config::choice::Choice::name(*self))
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use $crate::config::choice::Choice;
                let s = String::deserialize(d)?;
                <$t>::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "{} `{s}`; allowed: {}",
                        <$t>::UNKNOWN,
                        <$t>::allowed()
                    ))
                })
            }
        }
    };
}
pub(crate) use choice_serde;

use crate::features::efficientnet_lite::DepthwiseImpl;
use crate::features::variant::FeatureKind;
use crate::heads::ClassWeighting;
use crate::images::dataset::Split;

impl Choice for DepthwiseImpl {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("native", DepthwiseImpl::Native),
        ("direct", DepthwiseImpl::Direct),
        ("candle", DepthwiseImpl::CandleGrouped),
        ("portable", DepthwiseImpl::Portable),
    ];
    const UNKNOWN: &'static str = "unknown implementation";
}

impl Choice for FeatureKind {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("penultimate", FeatureKind::Penultimate),
        ("logits", FeatureKind::Logits),
    ];
    const UNKNOWN: &'static str = "unknown feature kind";
}

impl Choice for ClassWeighting {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("none", ClassWeighting::None),
        ("balanced", ClassWeighting::Balanced),
    ];
    const UNKNOWN: &'static str = "unknown weighting";
}

impl Choice for Split {
    const TABLE: &'static [(&'static str, Self)] = &[
        ("train", Split::Train),
        ("val", Split::Val),
        ("test", Split::Test),
    ];
    const UNKNOWN: &'static str = "unknown split";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::extract::ResizeMode;
    use crate::config::train::{HeadKind, Selection, WeightChoice};

    fn round_trip<T: Choice + std::fmt::Debug>() {
        for (name, v) in T::TABLE {
            assert_eq!(T::parse(name), Some(*v), "{name}");
            assert_eq!(v.name(), *name);
        }
        assert_eq!(T::parse("no-such-value"), None);
    }

    #[test]
    fn every_table_round_trips() {
        round_trip::<DepthwiseImpl>();
        round_trip::<FeatureKind>();
        round_trip::<ClassWeighting>();
        round_trip::<Split>();
        round_trip::<ResizeMode>();
        round_trip::<HeadKind>();
        round_trip::<WeightChoice>();
        round_trip::<Selection>();
    }

    #[test]
    fn serde_goes_through_the_table_and_errors_list_it() {
        assert_eq!(
            serde_json::to_string(&Selection::CalibratedNll).unwrap(),
            "\"calibrated-nll\""
        );
        let s: Selection = serde_json::from_str("\"weighted-nll\"").unwrap();
        assert_eq!(s, Selection::WeightedNll);
        let e = serde_json::from_str::<Selection>("\"auc\"").unwrap_err();
        assert!(
            e.to_string().contains("calibrated-nll, nll, weighted-nll"),
            "{e}"
        );
        let err = choice::<Selection>("train.selection", Some("auc"), Selection::Nll, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.selection") && err.contains("weighted-nll"),
            "{err}"
        );
        assert_eq!(
            choice("x", None, Selection::Nll, None).unwrap(),
            Selection::Nll
        );
    }

    #[test]
    fn clap_accepts_only_the_table() {
        use clap::builder::TypedValueParser;
        let cmd = clap::Command::new("t");
        let p = clap_parser::<Split>();
        let ok = p.parse_ref(&cmd, None, std::ffi::OsStr::new("val"));
        assert_eq!(ok.unwrap(), Split::Val);
        assert!(p
            .parse_ref(&cmd, None, std::ffi::OsStr::new("dev"))
            .is_err());
    }
}
