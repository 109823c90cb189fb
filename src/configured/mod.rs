//! Between the config and the commands: the stages as one checked
//! [`crate::config::Config`] drives them, for the few steps that genuinely
//! need several sections at once. The stages never import `config`; these
//! do, and `commands/`, `audit`, `curves` and `study` call them.
//! [`features`]: a dataset's (or a scored folder's) features for the
//! configured backbones; [`ensemble`]: a training run's manifest and a saved
//! ensemble reopened with the config it was trained with.

pub mod ensemble;
pub mod features;
