//! Helpers with no stage of their own, shared by several stages so each
//! rule is written once: lowercase hex ([`hex`]), the little-endian f32
//! codec of every tensor file ([`le`]) and the rule for names that become
//! file or directory names ([`name`]). Nothing here imports a stage.

pub mod hex;
pub mod le;
pub mod name;
