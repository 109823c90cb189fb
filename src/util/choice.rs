//! Enum spellings, shared by every stage: one table of `(spelling, variant)`
//! per enum a config field or a flag takes ([`Choice`]). A stage implements
//! it next to its own enum; the config resolver parses through it and lists
//! its spellings in errors (`config::choice::choice`), clap's value parser
//! reads it ([`clap_parser`]), and `choice_serde!` makes serde go through
//! it, so a spelling is written once. Imports no stage.

/// An enum with one spelling per variant.
pub trait Choice: Copy + PartialEq + Send + Sync + 'static {
    /// Every variant with its spelling, in the order errors list them.
    const TABLE: &'static [(&'static str, Self)];
    /// What a wrong value is called in errors, e.g. "unknown resize mode".
    const UNKNOWN: &'static str;
    /// Old spellings still read (never written, not listed in errors).
    const ALIASES: &'static [(&'static str, Self)] = &[];

    /// The spelling of `self`.
    fn name(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }

    /// The variant spelled `s` (in the table or among the aliases).
    fn parse(s: &str) -> Option<Self> {
        Self::TABLE
            .iter()
            .chain(Self::ALIASES)
            .find(|(n, _)| *n == s)
            .map(|(_, v)| *v)
    }

    /// Every spelling, comma-separated (the "allowed" of errors).
    fn allowed() -> String {
        let names: Vec<&str> = Self::TABLE.iter().map(|(n, _)| *n).collect();
        names.join(", ")
    }
}

/// A clap value parser accepting exactly the table's spellings (and listing
/// them in `--help` and in its error).
pub fn clap_parser<T: Choice>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser as _;
    let names: Vec<&'static str> = T::TABLE.iter().map(|(n, _)| *n).collect();
    clap::builder::PossibleValuesParser::new(names)
        .map(|s: String| T::parse(&s).unwrap_or(T::TABLE[0].1))
}

/// Serializes a value by its `Display` text (device specs).
pub fn serialize_display<T: std::fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// `Serialize` / `Deserialize` of a [`Choice`] through its spellings.
macro_rules! choice_serde {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::util::choice::Choice::name(*self))
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use $crate::util::choice::Choice;
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
