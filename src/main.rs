//! The `ovr` binary: parse the command line, run it, report errors on stderr
//! (a closed stdout pipe ends the run quietly with exit code 0): the error's
//! context, then each cause once, one a line.

fn main() {
    ovr::output::exit_quietly_on_broken_pipe();
    let args = ovr::cli::Args::parse_all_from(std::env::args_os());
    if let Err(e) = ovr::commands::run(args) {
        if e.is_broken_pipe() {
            std::process::exit(0);
        }
        let mut msg = format!("error: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(&format!("\n  caused by: {s}"));
            source = s.source();
        }
        eprintln!("{msg}");
        std::process::exit(e.exit_code());
    }
}
