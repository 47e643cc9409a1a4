//! The head of a server → client message, the only part the benches parse (type, request
//! id, error code): shared by every bench that reads replies, so none reaches into another.

use serde::Deserialize;

/// What every server → client message starts with; the rest is skipped unparsed.
#[derive(Debug, Deserialize)]
pub struct ReplyHead<'a> {
    /// `reply`, `error`, or a push type.
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    /// The request id (replies and most errors).
    pub id: Option<u64>,
    /// The error code (errors).
    pub code: Option<String>,
}
