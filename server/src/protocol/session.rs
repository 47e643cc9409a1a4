//! The session protocol between front ends and a chat server (port 5041).
//!
//! One TCP connection (a *link*) carries many user sessions. Each frame is length-delimited
//! (u32 big-endian length, then the body); the body starts with a one-byte kind:
//!
//! | kind | direction | body after the kind byte |
//! |---|---|---|
//! | 1 `Hello` | FE → chat | u16 version, UTF-8 front-end name |
//! | 2 `Open` | FE → chat | u64 session, i64 user id |
//! | 3 `Request` | FE → chat | u64 session, the client's JSON request, verbatim |
//! | 4 `Close` | FE → chat | u64 session |
//! | 5 `Send` | chat → FE | u64 session, one JSON text frame for that session |
//! | 6 `Fanout` | chat → FE | u32 n, n × u64 sessions, one JSON text frame for all of them |
//! | 7 `Kick` | chat → FE | u64 session, UTF-8 reason: the chat server ended the session |
//! | 8 `Welcome` | chat → FE | the pool's token key (answer to `Hello`) |
//! | 9 `Service` | FE → chat | u64 session, i64 user id: a session already signed in, for one web-service call |
//! | 10 `Challenge` | chat → FE | a random nonce: prove the link secret before `Welcome` |
//! | 11 `Proof` | FE → chat | HMAC-SHA256(link secret, nonce ‖ front-end name) |
//! | 12 `Status` | chat → FE | u8 flags: 1 accepting (route new sessions here), 2 evacuate (move this server's sessions to others) |
//! | 13 `Chat` | chat → FE | i64 room, i64 seq, u32 n, n × u64 sessions, one text for all of them about message `seq` of `room`: its `chat` push, or its poster's acknowledgement |
//! | 14 `Joined` | chat → FE | u64 session, i64 room, i64 last_seq: the session is in the room |
//! | 15 `Left` | chat → FE | u64 session, i64 room: the session is no longer in the room |
//! | 16 `Watch` | chat → FE | u64 session, n × i64 users: the session's contact list |
//! | 17 `Resume` | FE → chat | u64 session, i64 user, u32 n, n × (i64 room, i64 after_seq), m × i64 contacts |
//!
//! The front end authenticates the user before `Open`; the chat server trusts the link,
//! and hands the front end the key that checks tokens in `Welcome` (front ends hold no
//! secret of their own and need no database). A `Service` session is how the web services
//! (room management, files) run an operation as a user with the same rights as the chat
//! protocol: it is signed in from the start, never changes the user's presence, and is
//! closed with `Close` once the reply has arrived. A chat server with a link secret
//! (`link_secret`) answers `Hello` with `Challenge` and sends `Welcome` only after a valid
//! `Proof`: then nobody who merely reaches the port learns the token key.
//! A push to many sessions of one front end crosses the link once (`Fanout`, or `Chat` for
//! a chat message, which also names its room and number) and is serialised once.
//!
//! What lets a front end move a session to another chat server of the pool without the
//! client noticing (docs/POOL.md, "Failover"): `Status` says which chat servers take new
//! sessions and which want theirs moved; `Joined`, `Left`, `Watch` and the numbers in
//! `Chat` let the front end know each session's rooms, the last message it passed on in
//! each room, and its contacts; `Resume` opens the session on another server, signed in,
//! in those rooms, and has every message after those numbers pushed to it. All integers
//! are big-endian.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Version spoken by this build; `Hello` with another version is refused.
pub const VERSION: u16 = 2;

/// Largest frame accepted on a link (a fan-out to every session of a large room fits).
pub const MAX_FRAME: usize = 8 * 1024 * 1024;

/// One frame of the session protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// First frame of a link: protocol version and the front end's name.
    Hello {
        /// Protocol version.
        version: u16,
        /// Front-end name, for logs.
        name: String,
    },
    /// A user session starts on this link.
    Open {
        /// Session id, unique on the link.
        session: u64,
        /// The authenticated user.
        user: i64,
    },
    /// A client request for a session, as the client sent it.
    Request {
        /// Session id.
        session: u64,
        /// The JSON text.
        json: Bytes,
    },
    /// The session ended on the front end (client gone).
    Close {
        /// Session id.
        session: u64,
    },
    /// One text frame for one session.
    Send {
        /// Session id.
        session: u64,
        /// The JSON text.
        json: Bytes,
    },
    /// One text frame for many sessions of this link.
    Fanout {
        /// Session ids.
        sessions: Vec<u64>,
        /// The JSON text.
        json: Bytes,
    },
    /// The chat server ended a session.
    Kick {
        /// Session id.
        session: u64,
        /// Why.
        reason: String,
    },
    /// The chat server accepted a link: the key that checks sign-in tokens.
    Welcome {
        /// The token key's bytes.
        secret: Bytes,
    },
    /// A session for one web-service call, signed in as `user` from the start.
    Service {
        /// Session id, unique on the link.
        session: u64,
        /// The authenticated user.
        user: i64,
    },
    /// The chat server asks the front end to prove the link secret.
    Challenge {
        /// Random bytes.
        nonce: Bytes,
    },
    /// The front end's answer to `Challenge`.
    Proof {
        /// HMAC-SHA256(link secret, nonce ‖ front-end name).
        mac: Bytes,
    },
    /// Whether this chat server takes new sessions, and whether it wants its sessions
    /// moved to other servers of the pool.
    Status {
        /// Route new sessions here.
        accepting: bool,
        /// Move this server's sessions elsewhere (drained, or cut off from the database).
        evacuate: bool,
    },
    /// A text about one chat message for sessions of this link: the message's push, or
    /// the acknowledgement of its poster. Either way those sessions now have it.
    Chat {
        /// Its room.
        room: i64,
        /// Its number in the room.
        seq: i64,
        /// Session ids.
        sessions: Vec<u64>,
        /// The JSON text (a `chat` push, or a post's reply).
        json: Bytes,
    },
    /// A session is in a room now; everything after `last_seq` will be pushed to it.
    Joined {
        /// Session id.
        session: u64,
        /// Room id.
        room: i64,
        /// The room's last number the session has (in its history).
        last_seq: i64,
    },
    /// A session is no longer in a room.
    Left {
        /// Session id.
        session: u64,
        /// Room id.
        room: i64,
    },
    /// A session's contact list (presence subscriptions).
    Watch {
        /// Session id.
        session: u64,
        /// The contacts.
        users: Vec<i64>,
    },
    /// Open a session moved from another chat server: signed in as `user`, in `rooms`,
    /// with every message after each room's number pushed to it, watching `contacts`.
    Resume {
        /// Session id.
        session: u64,
        /// The authenticated user.
        user: i64,
        /// (room, last number passed on to the session).
        rooms: Vec<(i64, i64)>,
        /// The contacts.
        contacts: Vec<i64>,
    },
}

/// A frame that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The body is shorter than its kind requires.
    #[error("session frame truncated ({kind})")]
    Truncated {
        /// The frame kind byte.
        kind: u8,
    },
    /// The kind byte is not one of the table's.
    #[error("unknown session frame kind {0}")]
    UnknownKind(u8),
    /// A text field is not UTF-8.
    #[error("session frame text is not UTF-8")]
    NotUtf8,
    /// The frame is empty.
    #[error("empty session frame")]
    Empty,
}

impl Frame {
    /// Append the body (without the length prefix) to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Hello { version, name } => {
                out.put_u8(1);
                out.put_u16(*version);
                out.put_slice(name.as_bytes());
            }
            Frame::Open { session, user } => {
                out.put_u8(2);
                out.put_u64(*session);
                out.put_i64(*user);
            }
            Frame::Request { session, json } => {
                out.put_u8(3);
                out.put_u64(*session);
                out.put_slice(json);
            }
            Frame::Close { session } => {
                out.put_u8(4);
                out.put_u64(*session);
            }
            Frame::Send { session, json } => {
                out.put_u8(5);
                out.put_u64(*session);
                out.put_slice(json);
            }
            Frame::Fanout { sessions, json } => {
                out.put_u8(6);
                put_sessions(out, sessions);
                out.put_slice(json);
            }
            Frame::Kick { session, reason } => {
                out.put_u8(7);
                out.put_u64(*session);
                out.put_slice(reason.as_bytes());
            }
            Frame::Welcome { secret } => {
                out.put_u8(8);
                out.put_slice(secret);
            }
            Frame::Service { session, user } => {
                out.put_u8(9);
                out.put_u64(*session);
                out.put_i64(*user);
            }
            Frame::Challenge { nonce } => {
                out.put_u8(10);
                out.put_slice(nonce);
            }
            Frame::Proof { mac } => {
                out.put_u8(11);
                out.put_slice(mac);
            }
            Frame::Status {
                accepting,
                evacuate,
            } => {
                out.put_u8(12);
                out.put_u8(u8::from(*accepting) | (u8::from(*evacuate) << 1));
            }
            Frame::Chat {
                room,
                seq,
                sessions,
                json,
            } => {
                out.put_u8(13);
                out.put_i64(*room);
                out.put_i64(*seq);
                put_sessions(out, sessions);
                out.put_slice(json);
            }
            Frame::Joined {
                session,
                room,
                last_seq,
            } => {
                out.put_u8(14);
                out.put_u64(*session);
                out.put_i64(*room);
                out.put_i64(*last_seq);
            }
            Frame::Left { session, room } => {
                out.put_u8(15);
                out.put_u64(*session);
                out.put_i64(*room);
            }
            Frame::Watch { session, users } => {
                out.put_u8(16);
                out.put_u64(*session);
                users.iter().for_each(|u| out.put_i64(*u));
            }
            Frame::Resume {
                session,
                user,
                rooms,
                contacts,
            } => {
                out.put_u8(17);
                out.put_u64(*session);
                out.put_i64(*user);
                // Rooms per user are bounded by the directory, far below 2^32.
                out.put_u32(rooms.len() as u32);
                for (room, after) in rooms {
                    out.put_i64(*room);
                    out.put_i64(*after);
                }
                contacts.iter().for_each(|u| out.put_i64(*u));
            }
        }
    }

    /// The body as bytes (without the length prefix).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    /// Decode one body (without the length prefix).
    pub fn decode(mut body: Bytes) -> Result<Frame, FrameError> {
        if body.is_empty() {
            return Err(FrameError::Empty);
        }
        let kind = body.get_u8();
        let need = |body: &Bytes, n: usize| {
            if body.remaining() < n {
                Err(FrameError::Truncated { kind })
            } else {
                Ok(())
            }
        };
        let text = |b: Bytes| String::from_utf8(b.to_vec()).map_err(|_| FrameError::NotUtf8);
        Ok(match kind {
            1 => {
                need(&body, 2)?;
                let version = body.get_u16();
                Frame::Hello {
                    version,
                    name: text(body)?,
                }
            }
            2 => {
                need(&body, 16)?;
                Frame::Open {
                    session: body.get_u64(),
                    user: body.get_i64(),
                }
            }
            3 => {
                need(&body, 8)?;
                Frame::Request {
                    session: body.get_u64(),
                    json: body,
                }
            }
            4 => {
                need(&body, 8)?;
                Frame::Close {
                    session: body.get_u64(),
                }
            }
            5 => {
                need(&body, 8)?;
                Frame::Send {
                    session: body.get_u64(),
                    json: body,
                }
            }
            6 => {
                let sessions = get_sessions(&mut body, kind)?;
                Frame::Fanout {
                    sessions,
                    json: body,
                }
            }
            12 => {
                need(&body, 1)?;
                let flags = body.get_u8();
                Frame::Status {
                    accepting: flags & 1 != 0,
                    evacuate: flags & 2 != 0,
                }
            }
            13 => {
                need(&body, 16)?;
                let (room, seq) = (body.get_i64(), body.get_i64());
                let sessions = get_sessions(&mut body, kind)?;
                Frame::Chat {
                    room,
                    seq,
                    sessions,
                    json: body,
                }
            }
            14 => {
                need(&body, 24)?;
                Frame::Joined {
                    session: body.get_u64(),
                    room: body.get_i64(),
                    last_seq: body.get_i64(),
                }
            }
            15 => {
                need(&body, 16)?;
                Frame::Left {
                    session: body.get_u64(),
                    room: body.get_i64(),
                }
            }
            16 => {
                need(&body, 8)?;
                let session = body.get_u64();
                Frame::Watch {
                    session,
                    users: get_i64s(&mut body, kind)?,
                }
            }
            17 => {
                need(&body, 20)?;
                let (session, user) = (body.get_u64(), body.get_i64());
                let n = body.get_u32() as usize;
                need(&body, n.saturating_mul(16))?;
                let rooms = (0..n).map(|_| (body.get_i64(), body.get_i64())).collect();
                Frame::Resume {
                    session,
                    user,
                    rooms,
                    contacts: get_i64s(&mut body, kind)?,
                }
            }
            7 => {
                need(&body, 8)?;
                let session = body.get_u64();
                Frame::Kick {
                    session,
                    reason: text(body)?,
                }
            }
            8 => Frame::Welcome { secret: body },
            10 => Frame::Challenge { nonce: body },
            11 => Frame::Proof { mac: body },
            9 => {
                need(&body, 16)?;
                Frame::Service {
                    session: body.get_u64(),
                    user: body.get_i64(),
                }
            }
            other => return Err(FrameError::UnknownKind(other)),
        })
    }
}

fn put_sessions(out: &mut BytesMut, sessions: &[u64]) {
    // A link never carries 2^32 sessions: the descriptor limit caps it far lower.
    out.put_u32(sessions.len() as u32);
    for s in sessions {
        out.put_u64(*s);
    }
}

/// A u32 count, then that many u64 session ids.
fn get_sessions(body: &mut Bytes, kind: u8) -> Result<Vec<u64>, FrameError> {
    if body.remaining() < 4 {
        return Err(FrameError::Truncated { kind });
    }
    let n = body.get_u32() as usize;
    if body.remaining() < n.saturating_mul(8) {
        return Err(FrameError::Truncated { kind });
    }
    Ok((0..n).map(|_| body.get_u64()).collect())
}

/// The rest of the body as i64s.
fn get_i64s(body: &mut Bytes, kind: u8) -> Result<Vec<i64>, FrameError> {
    if body.remaining() % 8 != 0 {
        return Err(FrameError::Truncated { kind });
    }
    Ok((0..body.remaining() / 8).map(|_| body.get_i64()).collect())
}

/// The length-delimited codec every link uses.
pub fn codec() -> tokio_util::codec::LengthDelimitedCodec {
    tokio_util::codec::LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let frames = [
            Frame::Hello {
                version: VERSION,
                name: "fe-1".into(),
            },
            Frame::Open {
                session: 9,
                user: -3,
            },
            Frame::Request {
                session: 1,
                json: Bytes::from_static(b"{\"id\":1}"),
            },
            Frame::Close { session: u64::MAX },
            Frame::Send {
                session: 2,
                json: Bytes::from_static(b"{}"),
            },
            Frame::Fanout {
                sessions: vec![1, 2, 3],
                json: Bytes::from_static(b"{\"a\":1}"),
            },
            Frame::Kick {
                session: 4,
                reason: "slow_consumer".into(),
            },
            Frame::Welcome {
                secret: Bytes::from_static(b"k3y"),
            },
            Frame::Service {
                session: 5,
                user: 77,
            },
            Frame::Challenge {
                nonce: Bytes::from_static(b"n0nce"),
            },
            Frame::Proof {
                mac: Bytes::from_static(b"m4c"),
            },
            Frame::Status {
                accepting: true,
                evacuate: true,
            },
            Frame::Status {
                accepting: false,
                evacuate: false,
            },
            Frame::Chat {
                room: 4,
                seq: 99,
                sessions: vec![7, 8],
                json: Bytes::from_static(b"{}"),
            },
            Frame::Joined {
                session: 1,
                room: 2,
                last_seq: 3,
            },
            Frame::Left {
                session: 1,
                room: 2,
            },
            Frame::Watch {
                session: 3,
                users: vec![1, -2],
            },
            Frame::Resume {
                session: 5,
                user: 6,
                rooms: vec![(1, 10), (2, 0)],
                contacts: vec![9],
            },
        ];
        for f in frames {
            assert_eq!(Frame::decode(f.to_bytes()), Ok(f.clone()));
        }
    }

    #[test]
    fn truncated_and_unknown_frames_are_errors() {
        assert_eq!(Frame::decode(Bytes::new()), Err(FrameError::Empty));
        assert_eq!(
            Frame::decode(Bytes::from_static(&[2, 0, 0])),
            Err(FrameError::Truncated { kind: 2 })
        );
        assert_eq!(
            Frame::decode(Bytes::from_static(&[99])),
            Err(FrameError::UnknownKind(99))
        );
        // A fan-out claiming more sessions than it carries must not allocate or panic.
        assert_eq!(
            Frame::decode(Bytes::from_static(&[6, 255, 255, 255, 255])),
            Err(FrameError::Truncated { kind: 6 })
        );
    }
}
