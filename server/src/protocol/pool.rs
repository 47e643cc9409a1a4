//! The pool protocol between chat servers, and between the `chatcap pool` commands and a
//! chat server (port 8011).
//!
//! Length-delimited frames (u32 big-endian length, then the body, as on the session link);
//! the body starts with a one-byte kind. Integers are big-endian.
//!
//! | kind | direction | body after the kind byte |
//! |---|---|---|
//! | 1 `Hello` | dialer → server | u16 version, UTF-8 name (a chat server's, or `admin`) |
//! | 2 `Challenge` | server → dialer | a random nonce: prove the link secret |
//! | 3 `Proof` | dialer → server | HMAC-SHA256(link secret, nonce ‖ name) |
//! | 4 `Welcome` | server → dialer | UTF-8 name of the answering server |
//! | 10 `Posted` | peer → peer | u8 persist, the committed message as JSON |
//! | 11 `Roster` | peer → peer | n × (i64 room, i64 user, u8 present) |
//! | 12 `Presence` | peer → peer | n × (i64 user, u8 state) |
//! | 13 `Changed` | peer → peer | a [`Change`] as JSON |
//! | 20 `Admin` | admin → server | an [`AdminRequest`] as JSON |
//! | 21 `AdminReply` | server → admin | the answer as JSON |
//!
//! Each chat server dials every other server of its pool and *sends* on that connection
//! only (the answering server only answers the handshake): what a server commits, which of
//! its users are in which rooms, their presence, and changes to rooms and categories. Right
//! after `Welcome` the dialer sends its whole roster and presence, so a receiver that lost
//! the connection rebuilds what it knows of that server from scratch.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::client::PresenceState;
use super::reply::Message;

/// Version spoken by this build; `Hello` with another version is refused.
pub const VERSION: u16 = 1;

/// The name administration clients give in `Hello`.
pub const ADMIN: &str = "admin";

/// Most entries in one `Roster` or `Presence` frame (keeps frames far below the codec's
/// limit when a whole roster is sent at once).
pub const MAX_ENTRIES: usize = 100_000;

/// A change to the directory or to a room's content, made through one chat server and
/// applied by every other (each reads the changed rows again from the shared database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A category was created or changed (its lists too).
    Category {
        /// Category id.
        id: i64,
    },
    /// A room was created or changed (settings or roles).
    Room {
        /// Room id.
        id: i64,
    },
    /// A room was deleted.
    RoomDeleted {
        /// Room id.
        id: i64,
    },
    /// An administrator cleared a room's history before a time.
    HistoryCleared {
        /// Room id.
        room: i64,
        /// Messages before this time are gone.
        before_us: i64,
    },
    /// An administrator removed or replaced a message.
    MessageChanged {
        /// Room id.
        room: i64,
        /// Its number.
        seq: i64,
        /// The new text (empty when removed).
        text: String,
        /// Removed.
        removed: bool,
    },
    /// A user was invited to a room: every server remembers it (a join uses it up) and
    /// pushes `json` to the user's sessions.
    Invited {
        /// The user.
        user: i64,
        /// The room.
        room: i64,
        /// The `invitation` push's JSON text.
        json: String,
    },
}

/// What the `chatcap pool` commands ask a chat server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AdminRequest {
    /// This server's state (sessions, rooms, lease).
    Status,
    /// Hand this server's sessions to the other active servers and take no new ones.
    Drain,
    /// Take sessions again after a drain (if the server holds or can take a slot).
    Undrain,
    /// Set the pool's active servers (like Set-CsPersistentChatActiveServer).
    SetActive {
        /// Names of the servers to be active, at most four.
        servers: Vec<String>,
    },
}

/// One frame of the pool protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolFrame {
    /// First frame of a connection.
    Hello {
        /// Protocol version.
        version: u16,
        /// A chat server's name, or [`ADMIN`].
        name: String,
    },
    /// Prove the link secret.
    Challenge {
        /// Random bytes.
        nonce: Bytes,
    },
    /// The answer to `Challenge`.
    Proof {
        /// HMAC-SHA256(link secret, nonce ‖ name).
        mac: Bytes,
    },
    /// The connection is accepted.
    Welcome {
        /// The answering server's name.
        name: String,
    },
    /// A message the sending server committed.
    Posted {
        /// Its category keeps history.
        persist: bool,
        /// The message.
        msg: Message,
    },
    /// Users of the sending server entering (`true`) or leaving rooms.
    Roster(Vec<(i64, i64, bool)>),
    /// Presence of users signed in through the sending server.
    Presence(Vec<(i64, PresenceState)>),
    /// A change made through the sending server.
    Changed(Change),
    /// A request of `chatcap pool`.
    Admin(AdminRequest),
    /// Its answer (JSON).
    AdminReply(serde_json::Value),
}

/// A pool frame that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolFrameError {
    /// The frame is empty.
    #[error("empty pool frame")]
    Empty,
    /// The body is shorter than its kind requires.
    #[error("pool frame truncated ({kind})")]
    Truncated {
        /// The frame kind byte.
        kind: u8,
    },
    /// The kind byte is unknown.
    #[error("unknown pool frame kind {0}")]
    UnknownKind(u8),
    /// A text field is not UTF-8, or JSON is not what the kind needs.
    #[error("pool frame {kind}: {reason}")]
    Bad {
        /// The frame kind byte.
        kind: u8,
        /// What is wrong.
        reason: String,
    },
}

fn state_code(s: PresenceState) -> u8 {
    match s {
        PresenceState::Online => 0,
        PresenceState::Busy => 1,
        PresenceState::DoNotDisturb => 2,
        PresenceState::Away => 3,
        PresenceState::Offline => 4,
    }
}

fn state_from(code: u8) -> Option<PresenceState> {
    Some(match code {
        0 => PresenceState::Online,
        1 => PresenceState::Busy,
        2 => PresenceState::DoNotDisturb,
        3 => PresenceState::Away,
        4 => PresenceState::Offline,
        _ => return None,
    })
}

impl PoolFrame {
    /// The body (without the length prefix).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            PoolFrame::Hello { version, name } => {
                out.put_u8(1);
                out.put_u16(*version);
                out.put_slice(name.as_bytes());
            }
            PoolFrame::Challenge { nonce } => {
                out.put_u8(2);
                out.put_slice(nonce);
            }
            PoolFrame::Proof { mac } => {
                out.put_u8(3);
                out.put_slice(mac);
            }
            PoolFrame::Welcome { name } => {
                out.put_u8(4);
                out.put_slice(name.as_bytes());
            }
            PoolFrame::Posted { persist, msg } => {
                out.put_u8(10);
                out.put_u8(u8::from(*persist));
                put_json(&mut out, msg);
            }
            PoolFrame::Roster(entries) => {
                out.put_u8(11);
                for (room, user, present) in entries {
                    out.put_i64(*room);
                    out.put_i64(*user);
                    out.put_u8(u8::from(*present));
                }
            }
            PoolFrame::Presence(entries) => {
                out.put_u8(12);
                for (user, state) in entries {
                    out.put_i64(*user);
                    out.put_u8(state_code(*state));
                }
            }
            PoolFrame::Changed(c) => {
                out.put_u8(13);
                put_json(&mut out, c);
            }
            PoolFrame::Admin(r) => {
                out.put_u8(20);
                put_json(&mut out, r);
            }
            PoolFrame::AdminReply(v) => {
                out.put_u8(21);
                put_json(&mut out, v);
            }
        }
        out.freeze()
    }

    /// Decode one body (without the length prefix).
    pub fn decode(mut body: Bytes) -> Result<PoolFrame, PoolFrameError> {
        if body.is_empty() {
            return Err(PoolFrameError::Empty);
        }
        let kind = body.get_u8();
        let bad = |reason: String| PoolFrameError::Bad { kind, reason };
        let text = |b: Bytes| String::from_utf8(b.to_vec()).map_err(|_| bad("not UTF-8".into()));
        fn from_json<T: serde::de::DeserializeOwned>(
            kind: u8,
            b: &[u8],
        ) -> Result<T, PoolFrameError> {
            serde_json::from_slice(b).map_err(|e| PoolFrameError::Bad {
                kind,
                reason: e.to_string(),
            })
        }
        // The JSON parts that are internally tagged enums: the tag must be a name.
        fn from_tagged<T: serde::de::DeserializeOwned>(
            kind: u8,
            b: &[u8],
            tag: &str,
        ) -> Result<T, PoolFrameError> {
            super::tag_is_text(b, tag).map_err(|reason| PoolFrameError::Bad { kind, reason })?;
            from_json(kind, b)
        }
        let records = |body: &Bytes, size: usize| {
            if body.remaining() % size == 0 {
                Ok(body.remaining() / size)
            } else {
                Err(PoolFrameError::Truncated { kind })
            }
        };
        Ok(match kind {
            1 => {
                if body.remaining() < 2 {
                    return Err(PoolFrameError::Truncated { kind });
                }
                let version = body.get_u16();
                PoolFrame::Hello {
                    version,
                    name: text(body)?,
                }
            }
            2 => PoolFrame::Challenge { nonce: body },
            3 => PoolFrame::Proof { mac: body },
            4 => PoolFrame::Welcome { name: text(body)? },
            10 => {
                if body.is_empty() {
                    return Err(PoolFrameError::Truncated { kind });
                }
                let persist = body.get_u8() != 0;
                PoolFrame::Posted {
                    persist,
                    msg: from_json(kind, &body)?,
                }
            }
            11 => {
                let n = records(&body, 17)?;
                let entries = (0..n)
                    .map(|_| (body.get_i64(), body.get_i64(), body.get_u8() != 0))
                    .collect();
                PoolFrame::Roster(entries)
            }
            12 => {
                let n = records(&body, 9)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let user = body.get_i64();
                    let code = body.get_u8();
                    let state =
                        state_from(code).ok_or_else(|| bad(format!("presence state {code}")))?;
                    entries.push((user, state));
                }
                PoolFrame::Presence(entries)
            }
            13 => PoolFrame::Changed(from_tagged(kind, &body, "kind")?),
            20 => PoolFrame::Admin(from_tagged(kind, &body, "op")?),
            21 => PoolFrame::AdminReply(from_json(kind, &body)?),
            other => return Err(PoolFrameError::UnknownKind(other)),
        })
    }
}

/// Append `v` as JSON (these types are plain data with string keys: serialising them
/// cannot fail).
fn put_json<T: Serialize>(out: &mut BytesMut, v: &T) {
    out.put_slice(&serde_json::to_vec(v).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_must_be_a_name_not_a_position() {
        let frame = |kind: u8, json: &str| {
            let mut b = vec![kind];
            b.extend_from_slice(json.as_bytes());
            PoolFrame::decode(Bytes::from(b))
        };
        // serde alone reads `"kind":1` as the second variant (`room`), `"op":0` as `status`.
        for (kind, json) in [(13, r#"{"kind":1,"id":3}"#), (20, r#"{"op":0}"#)] {
            match frame(kind, json) {
                Err(PoolFrameError::Bad { reason, .. }) => {
                    assert!(reason.contains("must be a string"), "{reason}")
                }
                other => panic!("{json}: {other:?}"),
            }
        }
        assert_eq!(
            frame(13, r#"{"kind":"room","id":3}"#),
            Ok(PoolFrame::Changed(Change::Room { id: 3 }))
        );
        assert_eq!(
            frame(20, r#"{"op":"status"}"#),
            Ok(PoolFrame::Admin(AdminRequest::Status))
        );
    }

    #[test]
    fn every_kind_round_trips() {
        let msg = Message {
            room: 3,
            seq: 9,
            author: 4,
            text: "héllo".into(),
            client_msg_id: "c-1".into(),
            posted_at_us: 11,
            sent_at_us: Some(10),
            removed: false,
        };
        let frames = [
            PoolFrame::Hello {
                version: VERSION,
                name: "chat1".into(),
            },
            PoolFrame::Challenge {
                nonce: Bytes::from_static(b"n"),
            },
            PoolFrame::Proof {
                mac: Bytes::from_static(b"m"),
            },
            PoolFrame::Welcome {
                name: "chat2".into(),
            },
            PoolFrame::Posted { persist: true, msg },
            PoolFrame::Roster(vec![(1, 2, true), (3, -4, false)]),
            PoolFrame::Presence(vec![(1, PresenceState::Away), (2, PresenceState::Offline)]),
            PoolFrame::Changed(Change::MessageChanged {
                room: 1,
                seq: 2,
                text: "x".into(),
                removed: false,
            }),
            PoolFrame::Admin(AdminRequest::SetActive {
                servers: vec!["chat1".into()],
            }),
            PoolFrame::AdminReply(serde_json::json!({"ok": true})),
        ];
        for f in frames {
            assert_eq!(PoolFrame::decode(f.to_bytes()), Ok(f.clone()));
        }
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        assert_eq!(PoolFrame::decode(Bytes::new()), Err(PoolFrameError::Empty));
        assert_eq!(
            PoolFrame::decode(Bytes::from_static(&[11, 0, 0])),
            Err(PoolFrameError::Truncated { kind: 11 })
        );
        assert_eq!(
            PoolFrame::decode(Bytes::from_static(&[99])),
            Err(PoolFrameError::UnknownKind(99))
        );
        assert!(matches!(
            PoolFrame::decode(Bytes::from_static(b"\x0d{\"kind\":\"nope\"}")),
            Err(PoolFrameError::Bad { kind: 13, .. })
        ));
        assert!(matches!(
            PoolFrame::decode(Bytes::from_static(&[12, 0, 0, 0, 0, 0, 0, 0, 1, 9])),
            Err(PoolFrameError::Bad { kind: 12, .. })
        ));
    }
}
