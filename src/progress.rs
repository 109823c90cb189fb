//! Progress reporting shared by long stages (fetch, extract): one indicatif
//! bar on stderr, hidden when stderr is not a terminal or `--quiet` is set.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How chatty diagnostics on stderr are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// A bar counting items with a rate, or a hidden one.
pub fn bar(total: u64, what: &str, verbosity: Verbosity) -> ProgressBar {
    let pb = ProgressBar::new(total);
    if verbosity == Verbosity::Quiet || !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{msg:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(what.to_string());
    pb
}
