//! Helpers with no stage of their own, shared by several stages so each
//! rule is written once: an error's causes as one line ([`chain`]), enum
//! spellings ([`choice`]: one variant table per enum for serde, clap and
//! error texts), lowercase hex ([`hex`]), the
//! little-endian f32 codec of every tensor file ([`le`]) and the rule for
//! names that become file or directory names ([`name`]). Nothing here
//! imports a stage.

pub mod chain;
pub mod choice;
pub mod hex;
pub mod le;
pub mod name;
