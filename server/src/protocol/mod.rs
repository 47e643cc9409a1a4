//! The wire protocols, in one place that the server and the load generator both use.
//!
//! - [`client`]: what a client sends over its WebSocket (one JSON object per text frame).
//! - [`decode`]: reading a client's request off the wire, one way for every server role.
//! - [`reply`]: what the server sends back: replies, typed errors and pushes.
//! - [`files`]: file names and metadata of the file operations (docs/FILES.md).
//! - [`session`]: the compact binary frames that multiplex many user sessions over one
//!   front end ↔ chat server connection (port 5041).
//! - [`pool`]: the frames between the chat servers of a pool, and of the `chatcap pool`
//!   administration commands (port 8011).
//!
//! This module only describes bytes; it must not touch sockets, storage or chat state.
//! `docs/PROTOCOL.md` documents every message for client authors.

pub mod client;
pub mod decode;
pub mod files;
pub mod pool;
pub mod reply;
pub mod session;

pub use client::{
    CategoryPatch, CategorySpec, Op, PresenceState, Privacy, Request, RoleName, RoomKind,
    RoomPatch, RoomSpec,
};
pub use reply::{ErrorCode, Message, Push, RoomInfo, UserInfo, WireError};

/// Refuse a JSON object whose `tag` field is there but not a string: serde's internally
/// tagged enums would take an integer as the position of a variant (`"kind": 1` as the
/// second one). Anything else passes; the enum's own decoding says what is missing or
/// wrong.
pub fn tag_is_text(json: &[u8], tag: &str) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Fields(serde_json::Map<String, serde_json::Value>);
    match serde_json::from_slice::<Fields>(json) {
        Ok(Fields(map)) => match map.get(tag) {
            Some(v) if !v.is_string() => Err(format!("`{tag}` must be a string, not {v}")),
            _ => Ok(()),
        },
        Err(_) => Ok(()),
    }
}
