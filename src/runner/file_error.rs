//! Why a file operation (or a `/metrics` scrape, which reads HTTP the same way) failed,
//! and the kind each failure is counted as in the report. Only the error type: no I/O.

use std::borrow::Cow;

/// Why a file operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FileOpError {
    /// The TLS handshake with an `https://` web service failed.
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    /// No TCP connection to the front end.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The connection failed during the exchange.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// No complete answer within the request timeout.
    #[error("no complete answer within the request timeout")]
    Timeout,
    /// The response ended before it was complete.
    #[error("the response ended early")]
    Truncated,
    /// The response is not well-formed HTTP/1.1 or not what the service answers.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The service refused: the HTTP status and the `code` of the JSON error body.
    #[error("HTTP {status} ({code})")]
    Refused {
        /// The status.
        status: u16,
        /// The error code (docs/PROTOCOL.md §5), empty when the body has none.
        code: String,
    },
    /// A download's length differs from the size the file list gives.
    #[error("downloaded {got} bytes of a {want}-byte file")]
    SizeMismatch {
        /// Bytes received.
        got: u64,
        /// The file's size.
        want: u64,
    },
}

impl FileOpError {
    /// The kind counted in the report's errors by kind: the service's error code when it
    /// gave one (`forbidden`, `busy`, `too_large`…), the connection's failure otherwise.
    pub fn kind(&self) -> Cow<'_, str> {
        match self {
            FileOpError::Connect(_) => "connect_failed".into(),
            FileOpError::Tls(_) => "tls_failed".into(),
            FileOpError::Io(_) => "disconnect".into(),
            FileOpError::Timeout => "timeout".into(),
            FileOpError::Truncated => "truncated_reply".into(),
            FileOpError::Malformed(_) => "unparsable_reply".into(),
            FileOpError::Refused { code, .. } if !code.is_empty() => code.as_str().into(),
            FileOpError::Refused { status, .. } => format!("http_{status}").into(),
            FileOpError::SizeMismatch { .. } => "size_mismatch".into(),
        }
    }
}

/// A [`FileOpError::Malformed`] saying `what`.
pub(super) fn malformed(what: impl Into<String>) -> FileOpError {
    FileOpError::Malformed(what.into())
}
