//! Results on stdout, the last step of every command (extract summary, train
//! table, compare table, score rows). A reader that stops early (`ovr score
//! ... | head`) closes the pipe; that ends the run quietly with exit code 0,
//! like ripgrep, instead of a panic and exit code 101.

use std::io::Write;

/// Writing results to stdout failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write results to stdout")]
pub struct StdoutError {
    #[source]
    pub source: std::io::Error,
}

impl StdoutError {
    /// The reader closed the pipe: not a failure of the run.
    pub fn is_broken_pipe(&self) -> bool {
        self.source.kind() == std::io::ErrorKind::BrokenPipe
    }
}

/// Writes `text` to stdout and flushes it, returning the error instead of
/// panicking the way `print!` does.
pub fn print(text: &str) -> Result<(), StdoutError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| StdoutError { source })
}

/// The text std's `print!`/`println!` panic with when stdout is a closed pipe.
fn is_broken_pipe_panic(message: &str) -> bool {
    // EPIPE is 32 on Linux, macOS and the BSDs; std formats the OS error.
    #[cfg(unix)]
    let epipe = std::io::Error::from_raw_os_error(32).to_string();
    #[cfg(not(unix))]
    let epipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe).to_string();
    message.starts_with("failed printing to stdout") && message.contains(&epipe)
}

/// Installs a panic hook that turns the panic of a `print!`/`println!` into
/// a closed pipe into a quiet exit with code 0 (stdout buffers are flushed,
/// errors ignored); every other panic goes to the default hook unchanged.
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_broken_pipe_panic(message) {
            std::process::exit(0);
        }
        default(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_only_the_broken_pipe_print_panic() {
        #[cfg(unix)]
        {
            let e = std::io::Error::from_raw_os_error(32);
            assert!(is_broken_pipe_panic(&format!(
                "failed printing to stdout: {e}"
            )));
            let full = std::io::Error::from_raw_os_error(28);
            assert!(!is_broken_pipe_panic(&format!(
                "failed printing to stdout: {full}"
            )));
        }
        assert!(!is_broken_pipe_panic("index out of bounds"));
    }

    #[test]
    fn broken_pipe_kind_is_detected() {
        let e = StdoutError {
            source: std::io::Error::from(std::io::ErrorKind::BrokenPipe),
        };
        assert!(e.is_broken_pipe());
        let e = StdoutError {
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        assert!(!e.is_broken_pipe());
    }
}
