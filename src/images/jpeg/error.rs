//! Stage 1 (images), the fast JPEG path's one error type: a stream it would
//! decode wrongly. Never shown to users: the caller then hands the file to
//! jpeg-decoder, whose verdict is the one reported.

/// Why the fast path stops on a stream it would decode wrongly.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JpegError {
    #[error("JPEG ends inside its {0}")]
    Truncated(&'static str),
    #[error("JPEG marker segment {0} is malformed")]
    Malformed(&'static str),
    #[error("JPEG scan refers to a missing {0} table")]
    MissingTable(&'static str),
    #[error("JPEG Huffman code not in its table")]
    BadCode,
}
