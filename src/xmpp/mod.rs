//! An XMPP client for driving third-party chat servers (ejabberd, Prosody) with the same
//! measurements as chatcap's own protocol (issue 10; docs/notes/issue10-xmpp-research.md).
//!
//! # Layout
//! - [`xml`]: the XML stream, read with quick-xml into small element trees.
//! - [`scram`]: SASL SCRAM-SHA-1 and PLAIN.
//! - [`client`]: one session: sign-in, binding, stream management, multi-user chat, the
//!   room archive.
//! - [`admin`]: provisioning ejabberd (users, rooms, affiliations) through its HTTP API.
//!
//! Not yet a load-generator driver: `chatcap run` still speaks chatcap's protocol only.

pub mod admin;
pub mod client;
pub mod scram;
pub mod xml;

pub use client::{Account, ArchivePage, GroupMessage, Joined, Mechanism, XmppClient};

/// Why an XMPP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum XmppError {
    /// TCP connect failed.
    #[error("connect failed: {0}")]
    Connect(std::io::Error),
    /// The socket failed.
    #[error("socket: {0}")]
    Io(std::io::Error),
    /// The stream is not well-formed XML.
    #[error(transparent)]
    Xml(#[from] xml::XmlError),
    /// Our side of SASL refused the server (nonce, signature).
    #[error("sign-in: {0}")]
    Sasl(#[from] scram::SaslError),
    /// The server refused the sign-in (`not-authorized`…).
    #[error("sign-in refused: {0}")]
    SignIn(String),
    /// The server refused a stanza (`item-not-found`, `forbidden`…), with its text.
    #[error("refused: {condition}{}", if text.is_empty() { String::new() } else { format!(" ({text})") })]
    Refused {
        /// The defined condition.
        condition: String,
        /// The server's text, if any.
        text: String,
    },
    /// The server does not do what was asked (a mechanism, stream management).
    #[error("not supported by the server: {0}")]
    Unsupported(String),
    /// The server broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server closed the stream with an error (`<stream:error>`).
    #[error("stream error: {0}")]
    StreamError(String),
    /// The stream ended.
    #[error("the server closed the stream")]
    Closed,
    /// No answer in time.
    #[error("no answer in time")]
    Timeout,
    /// The server's administration interface refused or failed.
    #[error("administration: {0}")]
    Admin(String),
}
