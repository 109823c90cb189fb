//! Config, enum spellings: the resolver's side of the variant tables
//! ([`Choice`], in `util::choice`, implemented by each stage next to its
//! enum): a field's value read through its table, or an error naming the
//! field, the value and every spelling.

use super::{invalid, ConfigError};
pub use crate::util::choice::{clap_parser, Choice};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::extract::ResizeMode;
    use crate::config::train::{HeadKind, Selection, WeightChoice};
    use crate::features::efficientnet_lite::DepthwiseImpl;
    use crate::features::variant::FeatureKind;
    use crate::heads::ClassWeighting;
    use crate::images::dataset::Split;

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
        round_trip::<crate::calibration::Combiner>();
        round_trip::<crate::ensemble::predict::Approach>();
        round_trip::<crate::features::feature_set::FeatureDtype>();
        round_trip::<crate::config::study::ArmHead>();
        round_trip::<crate::features::lite_cpu::Isa>();
        round_trip::<crate::export::Format>();
        round_trip::<crate::assets::pins::PackageClient>();
    }

    #[test]
    fn old_spellings_still_parse_and_every_table_entry_is_a_distinct_variant() {
        use crate::calibration::Combiner;
        use crate::ensemble::predict::Approach;
        assert_eq!(Combiner::parse("raw-argmax"), Some(Combiner::SoftmaxLogits));
        assert_eq!(
            Approach::parse("specialists-raw-argmax"),
            Some(Approach::Specialists(Combiner::SoftmaxLogits))
        );
        // Every combiner has its specialists approach, and the serde form of
        // a combiner (manifests) is its table spelling.
        for c in Combiner::ALL {
            let a = Approach::Specialists(c);
            assert_eq!(Approach::parse(a.name()), Some(a), "{c:?}");
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.name())
            );
        }
        assert_eq!(Combiner::TABLE.len(), Combiner::ALL.len());
        let e = serde_json::from_str::<Combiner>("\"bogus\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown combiner `bogus`") && e.contains("softmax-logits"),
            "{e}"
        );
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
