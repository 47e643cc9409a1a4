//! The error for what the user gave us — bad flags, files or settings — which every
//! command may return and `main` turns into exit code 2.

/// An error in what the user gave us (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
