//! The `ovr` binary: parse the command line, run it, report errors on stderr.

use clap::Parser;

fn main() {
    let args = ovr::cli::Args::parse();
    if let Err(e) = ovr::commands::run(args) {
        let mut msg = format!("error: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !msg.contains(&text) {
                msg.push_str(&format!("\n  caused by: {text}"));
            }
            source = s.source();
        }
        eprintln!("{msg}");
        std::process::exit(e.exit_code());
    }
}
