//! Server → client messages: replies to requests, typed errors, and pushes.
//!
//! Every object has a `type`: `reply` (success, with `id` and `result`), `error` (with `id`
//! when the request's id could be read, a stable `code` and a human `message`), or one of
//! the push types (`chat`, `message_changed`, `room_changed`, `room_closed`, `roster`,
//! `busy`, `bye`, `invitation`, …).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::client::{PresenceState, Privacy, RoleName, RoomKind};

/// Stable, machine-readable error codes. Documented one by one in `docs/PROTOCOL.md`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON, or a field is missing or of the wrong type.
    BadRequest,
    /// The `type` is not one the server knows.
    UnknownType,
    /// A request other than `sign_in` came before a successful sign-in.
    NotSignedIn,
    /// `sign_in` came twice on one connection.
    AlreadySignedIn,
    /// The token is malformed, forged, or names an unknown user.
    InvalidToken,
    /// The token has expired.
    TokenExpired,
    /// No such room, or a secret room the user may not see.
    RoomNotFound,
    /// No such category.
    CategoryNotFound,
    /// No such user.
    UserNotFound,
    /// No such message.
    MessageNotFound,
    /// No such file in the room.
    FileNotFound,
    /// The user lacks the right for this operation.
    Forbidden,
    /// The operation needs the room to be joined first.
    NotJoined,
    /// The room is disabled.
    RoomDisabled,
    /// The text or frame is larger than the server accepts.
    TooLarge,
    /// A name is already taken.
    Conflict,
    /// An argument is out of range (e.g. history > 500).
    InvalidArgument,
    /// The server is overloaded and refused the request; retry later.
    Busy,
    /// The session sent requests faster than its allowance; retry later.
    RateLimited,
    /// An internal failure (storage unavailable); the request had no effect unless stated.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::BadRequest,
        ErrorCode::UnknownType,
        ErrorCode::NotSignedIn,
        ErrorCode::AlreadySignedIn,
        ErrorCode::InvalidToken,
        ErrorCode::TokenExpired,
        ErrorCode::RoomNotFound,
        ErrorCode::CategoryNotFound,
        ErrorCode::UserNotFound,
        ErrorCode::MessageNotFound,
        ErrorCode::FileNotFound,
        ErrorCode::Forbidden,
        ErrorCode::NotJoined,
        ErrorCode::RoomDisabled,
        ErrorCode::TooLarge,
        ErrorCode::Conflict,
        ErrorCode::InvalidArgument,
        ErrorCode::Busy,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
    ];

    /// The wire spelling of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::NotSignedIn => "not_signed_in",
            ErrorCode::AlreadySignedIn => "already_signed_in",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::RoomNotFound => "room_not_found",
            ErrorCode::CategoryNotFound => "category_not_found",
            ErrorCode::UserNotFound => "user_not_found",
            ErrorCode::MessageNotFound => "message_not_found",
            ErrorCode::FileNotFound => "file_not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::RoomDisabled => "room_disabled",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Conflict => "conflict",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Busy => "busy",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
        }
    }
}

/// An error as the protocol reports it: a code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct WireError {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl WireError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A user as other users see them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct UserInfo {
    /// User id.
    pub id: i64,
    /// Unique sign-in name (`user42@chatcap.test`).
    pub name: String,
    /// Persistent Chat administrator.
    #[serde(default)]
    pub admin: bool,
}

/// A room's settings, and the asking user's roles in it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct RoomInfo {
    /// Room id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Category id.
    pub category: i64,
    /// Normal or auditorium.
    pub kind: RoomKind,
    /// Open, closed or secret.
    pub privacy: Privacy,
    /// Disabled rooms are hidden and cannot be joined.
    pub disabled: bool,
    /// The add-in URL, if any.
    pub addin_url: Option<String>,
    /// Invitations inherit the category (true) or are off (false).
    pub invitations: bool,
    /// The asking user's roles in the room.
    pub roles: Vec<RoleName>,
}

/// One chat message, as stored and as delivered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Message {
    /// Room id.
    pub room: i64,
    /// Per-room sequence number: 1, 2, 3… with no gaps.
    pub seq: i64,
    /// Author's user id.
    pub author: i64,
    /// Message text (empty when removed by an administrator).
    pub text: String,
    /// The client's id for the post.
    pub client_msg_id: String,
    /// Server time of the commit (µs since the epoch).
    pub posted_at_us: i64,
    /// The sender's clock at send time, if the sender gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_us: Option<i64>,
    /// Removed by an administrator.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

/// Server-initiated messages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Push {
    /// A new message in a joined room.
    Chat(Message),
    /// An administrator removed or replaced a message.
    MessageChanged {
        /// Room id.
        room: i64,
        /// The message.
        seq: i64,
        /// The new text (empty when removed).
        text: String,
        /// The message was removed.
        removed: bool,
    },
    /// A joined room's settings changed.
    RoomChanged(RoomInfo),
    /// The user was removed from a joined room (room disabled or deleted, role revoked).
    RoomClosed {
        /// Room id.
        room: i64,
        /// Why: `disabled`, `deleted`, `removed`.
        reason: String,
    },
    /// Someone joined or left a room of at most ParticipantUpdateLimit participants.
    Roster {
        /// Room id.
        room: i64,
        /// The user.
        user: i64,
        /// true: joined; false: left.
        present: bool,
    },
    /// A watched user's presence changed.
    Presence {
        /// The user.
        user: i64,
        /// The new state.
        state: PresenceState,
    },
    /// History older than a time was cleared by an administrator.
    HistoryCleared {
        /// Room id.
        room: i64,
        /// Messages before this time are gone.
        before_us: i64,
    },
    /// The server is refusing work; the connection stays open.
    Busy {
        /// Why.
        reason: String,
    },
    /// The server closes the session; the reason says why.
    Bye {
        /// Why: `shutdown`, `slow_consumer`, `link_lost`.
        reason: String,
    },
    /// The user was added as member of a room with invitations on.
    Invitation(Invitation),
}

/// What a successful `sign_in` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignedIn {
    /// The signed-in user.
    pub user: UserInfo,
    /// Server time (µs), for clock comparison.
    pub server_time_us: i64,
}

/// What `join` returns, and one entry of `bjoin`'s result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Joined {
    /// The room.
    pub room: RoomInfo,
    /// Its last messages, oldest first.
    pub messages: Vec<Message>,
    /// Sequence number of the room's last committed message when the join took effect;
    /// every later message is pushed.
    pub last_seq: i64,
}

/// One room `bjoin` could not join.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JoinFailure {
    /// Room id.
    pub room: i64,
    /// Why.
    pub code: ErrorCode,
}

/// What `bjoin` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BjoinResult {
    /// Rooms joined.
    pub joined: Vec<Joined>,
    /// Rooms not joined.
    pub failed: Vec<JoinFailure>,
}

/// What `post` returns once the message is committed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ack {
    /// Room id.
    pub room: i64,
    /// The message's sequence number.
    pub seq: i64,
    /// Commit time (µs).
    pub posted_at_us: i64,
    /// This was a retry of a message already stored; nothing new was stored.
    pub duplicate: bool,
}

/// Messages returned by `history` and `search`, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Messages {
    /// The messages.
    pub messages: Vec<Message>,
}

/// Who is in a room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Participants {
    /// Room id.
    pub room: i64,
    /// Users with at least one session in the room.
    pub users: Vec<UserInfo>,
}

/// Rooms returned by `list_rooms`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Rooms {
    /// The rooms.
    pub rooms: Vec<RoomInfo>,
}

/// One user's presence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PresenceEntry {
    /// The user.
    pub user: i64,
    /// Their state.
    pub state: PresenceState,
}

/// What `subscribe` returns: the current state of every watched user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PresenceList {
    /// The watched users, by id.
    pub presence: Vec<PresenceEntry>,
}

/// The id of something created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Created {
    /// The new object's id.
    pub id: i64,
}

/// What `ping` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pong {
    /// Server time (µs).
    pub server_time_us: i64,
}

/// Count of things an operation changed (`clear_history`, `update_*`, `set_role`, …).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Changed {
    /// How many rows or items changed.
    pub changed: u64,
}

/// An invitation to a room: an entry of `invitations`, and the `invitation` push.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Invitation {
    /// Room id.
    pub room: i64,
    /// The room's name.
    pub name: String,
    /// Who added the user to the room.
    pub inviter: i64,
    /// When (µs since the epoch).
    pub at_us: i64,
}

/// What `invitations` returns: the pending invitations, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Invitations {
    /// The invitations.
    pub invitations: Vec<Invitation>,
}

/// A followed room and its unread count (`follow`, `mark_read`, entries of `followed`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FollowedRoom {
    /// Room id.
    pub room: i64,
    /// The room's name.
    pub name: String,
    /// The room's last sequence number.
    pub last_seq: i64,
    /// The last sequence number the user has read.
    pub last_read_seq: i64,
    /// Messages after `last_read_seq`: `last_seq - last_read_seq`.
    pub unread: i64,
}

/// What `followed` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Followed {
    /// The followed rooms the user may still read, by room id.
    pub followed: Vec<FollowedRoom>,
}

/// Any message a client receives, as clients that parse everything (the load generator,
/// tests) see it.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMsg {
    /// Success: the request id and the operation's result.
    Reply {
        /// The request id.
        id: u64,
        /// The operation's result.
        result: serde_json::Value,
    },
    /// Failure.
    Error {
        /// The request id, when it could be read.
        id: Option<u64>,
        /// The code.
        code: ErrorCode,
        /// The human message.
        message: String,
    },
    /// A push.
    Push(Push),
}

impl ServerMsg {
    /// Parse one text frame sent by the server.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "type")]
            kind: String,
        }
        #[derive(Deserialize)]
        struct ReplyBody {
            id: u64,
            result: serde_json::Value,
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            id: Option<u64>,
            code: ErrorCode,
            message: String,
        }
        let head: Head = serde_json::from_str(text)?;
        Ok(match head.kind.as_str() {
            "reply" => {
                let r: ReplyBody = serde_json::from_str(text)?;
                ServerMsg::Reply {
                    id: r.id,
                    result: r.result,
                }
            }
            "error" => {
                let e: ErrorBody = serde_json::from_str(text)?;
                ServerMsg::Error {
                    id: e.id,
                    code: e.code,
                    message: e.message,
                }
            }
            _ => ServerMsg::Push(serde_json::from_str(text)?),
        })
    }
}

/// Serialise a success reply; `result` is any of the result types above.
pub fn reply_json<T: Serialize>(id: u64, result: &T) -> String {
    #[derive(Serialize)]
    struct Reply<'a, T> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: u64,
        result: &'a T,
    }
    // Serialising plain data structs into a String cannot fail.
    serde_json::to_string(&Reply {
        kind: "reply",
        id,
        result,
    })
    .unwrap_or_default()
}

/// Serialise an error reply.
pub fn error_json(id: Option<u64>, err: &WireError) -> String {
    serde_json::json!({
        "type": "error",
        "id": id,
        "code": err.code,
        "message": err.message,
    })
    .to_string()
}

/// Serialise a push.
pub fn push_json(push: &Push) -> String {
    serde_json::to_string(push).unwrap_or_default()
}

/// A category as `list_categories` shows it. The three lists are present for
/// administrators only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct CategoryInfo {
    /// Category id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Every user is allowed in its rooms (AllowedMembers = everyone).
    pub allow_everyone: bool,
    /// Invitations switch.
    pub invitations: bool,
    /// File upload switch.
    pub file_upload: bool,
    /// Chat history switch (false: messages are delivered but not stored).
    pub history: bool,
    /// The asking user may create rooms in it.
    pub may_create: bool,
    /// AllowedMembers besides everyone (administrators only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<i64>>,
    /// DeniedMembers, the ethical wall (administrators only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied: Option<Vec<i64>>,
    /// Creators (administrators only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creators: Option<Vec<i64>>,
}

/// What `list_categories` returns, by id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Categories {
    /// The categories the asking user may see.
    pub categories: Vec<CategoryInfo>,
}

/// What `room_roles` returns: who holds each role in a room, by user id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct RoomRoles {
    /// Room id.
    pub room: i64,
    /// Members.
    pub members: Vec<UserInfo>,
    /// Managers.
    pub managers: Vec<UserInfo>,
    /// Presenters.
    pub presenters: Vec<UserInfo>,
}

/// What `find_users` returns: exact name matches first, then by id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Users {
    /// The users found.
    pub users: Vec<UserInfo>,
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn all_lists_every_code_once() {
        // A new variant fails to compile here until it has a place in `ALL`.
        let index = |c: ErrorCode| match c {
            ErrorCode::BadRequest => 0,
            ErrorCode::UnknownType => 1,
            ErrorCode::NotSignedIn => 2,
            ErrorCode::AlreadySignedIn => 3,
            ErrorCode::InvalidToken => 4,
            ErrorCode::TokenExpired => 5,
            ErrorCode::RoomNotFound => 6,
            ErrorCode::CategoryNotFound => 7,
            ErrorCode::UserNotFound => 8,
            ErrorCode::MessageNotFound => 9,
            ErrorCode::FileNotFound => 10,
            ErrorCode::Forbidden => 11,
            ErrorCode::NotJoined => 12,
            ErrorCode::RoomDisabled => 13,
            ErrorCode::TooLarge => 14,
            ErrorCode::Conflict => 15,
            ErrorCode::InvalidArgument => 16,
            ErrorCode::Busy => 17,
            ErrorCode::RateLimited => 18,
            ErrorCode::Internal => 19,
        };
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(index(*c), i);
            let wire = serde_json::to_value(c).expect("serialises");
            assert_eq!(wire, c.as_str());
        }
    }
}
