//! Client → server requests: `{"id": <u64>, "type": "<op>", ...fields}`.
//!
//! Every request carries a client-chosen `id` that its reply echoes. Field names are
//! snake_case; times are microseconds since the Unix epoch (`*_us`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One request as sent by a client: its id and the operation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Request {
    /// Client-chosen request id, echoed by the reply.
    pub id: u64,
    /// The operation and its arguments.
    #[serde(flatten)]
    pub op: Op,
}

/// Room type: in an auditorium only presenters post.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// Every member may post.
    #[default]
    Normal,
    /// Only presenters post; everyone who may join reads.
    Auditorium,
}

/// Who finds and who joins a room.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Privacy {
    /// Anyone allowed by the category finds and joins it.
    Open,
    /// Anyone allowed by the category finds it; only members join (the default).
    #[default]
    Closed,
    /// Only members find or join it.
    Secret,
}

/// A role a user holds in a room.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    /// Joins, reads and (outside auditoriums) posts.
    Member,
    /// Edits the room and its member lists.
    Manager,
    /// Posts in an auditorium.
    Presenter,
}

/// A new category (administrators only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CategorySpec {
    /// Unique name.
    pub name: String,
    /// Everyone may be in rooms of the category (AllowedMembers = everyone). Default true.
    #[serde(default = "yes")]
    pub allow_everyone: bool,
    /// Users allowed in the category's rooms besides `allow_everyone`.
    #[serde(default)]
    pub allowed: Vec<i64>,
    /// Users who can never join a room of the category (ethical wall).
    #[serde(default)]
    pub denied: Vec<i64>,
    /// Users who may create rooms in the category.
    #[serde(default)]
    pub creators: Vec<i64>,
    /// Invitations may be sent for rooms of the category. Default true.
    #[serde(default = "yes")]
    pub invitations: bool,
    /// Files may be posted to rooms of the category. Default true.
    #[serde(default = "yes")]
    pub file_upload: bool,
    /// Messages are stored. Off: messages are delivered but not kept. Default true.
    #[serde(default = "yes")]
    pub history: bool,
}

/// Changes to a category; absent fields stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CategoryPatch {
    /// See [`CategorySpec::allow_everyone`].
    pub allow_everyone: Option<bool>,
    /// Replaces the allowed list.
    pub allowed: Option<Vec<i64>>,
    /// Replaces the denied list.
    pub denied: Option<Vec<i64>>,
    /// Replaces the creators list.
    pub creators: Option<Vec<i64>>,
    /// See [`CategorySpec::invitations`].
    pub invitations: Option<bool>,
    /// See [`CategorySpec::file_upload`].
    pub file_upload: Option<bool>,
    /// See [`CategorySpec::history`].
    pub history: Option<bool>,
}

/// A new room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RoomSpec {
    /// Unique name in the pool.
    pub name: String,
    /// Category id.
    pub category: i64,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Normal or auditorium.
    #[serde(default)]
    pub kind: RoomKind,
    /// Open, closed (default) or secret.
    #[serde(default)]
    pub privacy: Privacy,
    /// One add-in URL, if any.
    #[serde(default)]
    pub addin_url: Option<String>,
    /// Invitations inherit the category switch (true) or are off (false). Default true.
    #[serde(default = "yes")]
    pub invitations: bool,
}

/// Changes to a room; absent fields stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RoomPatch {
    /// New unique name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New type.
    pub kind: Option<RoomKind>,
    /// New privacy.
    pub privacy: Option<Privacy>,
    /// Disable (members are disconnected, room hidden) or enable.
    pub disabled: Option<bool>,
    /// New add-in URL; an empty string removes it.
    pub addin_url: Option<String>,
    /// Invitations inherit (true) or off (false).
    pub invitations: Option<bool>,
}

/// A user's presence state.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    /// Signed in and available.
    Online,
    /// Busy.
    Busy,
    /// Do not disturb.
    DoNotDisturb,
    /// Away.
    Away,
    /// Not signed in (or appearing offline).
    #[default]
    Offline,
}

fn yes() -> bool {
    true
}

/// Every operation a client can ask for. The JSON `type` field selects the variant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// Authenticate the connection with a bearer token; must be the first request.
    SignIn {
        /// Token issued by `chatcap provision` or the admin API.
        token: String,
    },
    /// Liveness check; replies with the server time.
    Ping,
    /// Join one room and receive its last `history` messages.
    Join {
        /// Room id.
        room: i64,
        /// Messages of history to return (default: the server's, 30; 0–500).
        history: Option<u32>,
    },
    /// Join many rooms at once; `rooms` absent = every room the user is a member of.
    Bjoin {
        /// Room ids, or absent for all of the user's rooms.
        rooms: Option<Vec<i64>>,
        /// Messages of history per room (default: the server's).
        history: Option<u32>,
    },
    /// Leave a room.
    Part {
        /// Room id.
        room: i64,
    },
    /// Post a message to a joined room.
    Post {
        /// Room id.
        room: i64,
        /// Message text.
        text: String,
        /// Client-chosen id; a retry with the same id is stored once.
        client_msg_id: String,
        /// Sender's clock at send time, echoed in every delivery (for latency measurement).
        sent_at_us: Option<i64>,
    },
    /// Messages of a room by sequence number (catch-up).
    History {
        /// Room id.
        room: i64,
        /// Return messages with seq > after_seq (default 0).
        after_seq: Option<i64>,
        /// At most this many (default 100, max 500).
        limit: Option<u32>,
    },
    /// Search messages in rooms the user may read.
    Search {
        /// Words that must all appear (case-insensitive).
        text: Option<String>,
        /// An exact phrase that must appear (case-insensitive).
        phrase: Option<String>,
        /// Author's user id.
        author: Option<i64>,
        /// Posted at or after (µs).
        from_us: Option<i64>,
        /// Posted before (µs).
        to_us: Option<i64>,
        /// Restrict to these rooms.
        rooms: Option<Vec<i64>>,
        /// At most this many results (default 50, max 500).
        limit: Option<u32>,
    },
    /// Who is in the room now.
    Participants {
        /// Room id.
        room: i64,
    },
    /// Find rooms the user may see (secret rooms only for members).
    ListRooms {
        /// Substring of the name (case-insensitive).
        query: Option<String>,
        /// Only rooms of this category.
        category: Option<i64>,
        /// Only rooms the user holds a role in.
        mine: Option<bool>,
        /// At most this many (default 100, max 1000).
        limit: Option<u32>,
    },
    /// A room's settings and the user's roles in it.
    RoomInfo {
        /// Room id.
        room: i64,
    },
    /// Set the signed-in user's presence; watchers of the user get a `presence` push.
    SetPresence {
        /// The new state.
        state: PresenceState,
    },
    /// Watch these users' presence (replaces the session's list; at most 1,000).
    Subscribe {
        /// User ids (contacts).
        users: Vec<i64>,
    },
    /// Create a category (administrators).
    CreateCategory(CategorySpec),
    /// Change a category (administrators).
    UpdateCategory {
        /// Category id.
        category: i64,
        /// The changes.
        #[serde(flatten)]
        patch: CategoryPatch,
    },
    /// Create a room (category creators and administrators); the creator becomes manager.
    CreateRoom(RoomSpec),
    /// Change a room (managers and administrators).
    UpdateRoom {
        /// Room id.
        room: i64,
        /// The changes.
        #[serde(flatten)]
        patch: RoomPatch,
    },
    /// Grant or revoke a role in a room (managers and administrators).
    SetRole {
        /// Room id.
        room: i64,
        /// The user.
        user: i64,
        /// The role.
        role: RoleName,
        /// true grants, false revokes.
        grant: bool,
    },
    /// Delete a room and its history (administrators).
    DeleteRoom {
        /// Room id.
        room: i64,
    },
    /// Delete a room's messages posted before a time (administrators).
    ClearHistory {
        /// Room id.
        room: i64,
        /// Messages posted strictly before this time are deleted.
        before_us: i64,
    },
    /// Remove a message, or replace its text (administrators).
    RemoveMessage {
        /// Room id.
        room: i64,
        /// The message's sequence number.
        seq: i64,
        /// Replacement text; absent removes the text.
        replacement: Option<String>,
    },
    /// The signed-in user's pending invitations (fetched after sign-in).
    Invitations,
    /// Dismiss the invitation to a room.
    DismissInvitation {
        /// Room id.
        room: i64,
    },
    /// Follow a room: its unread count without joining it.
    Follow {
        /// Room id.
        room: i64,
    },
    /// Stop following a room.
    Unfollow {
        /// Room id.
        room: i64,
    },
    /// The followed rooms with their unread counts.
    Followed,
    /// Mark a followed room read up to a sequence number.
    MarkRead {
        /// Room id.
        room: i64,
        /// Read up to here (clamped to the room's last seq; the mark never moves back).
        seq: i64,
    },
    /// Start an upload to a room (file web service sessions only): checks the rights and
    /// the category's file switch, hands out a file id (docs/FILES.md).
    FileBegin {
        /// Room id.
        room: i64,
    },
    /// Record an uploaded file and announce it in the room (file web service sessions only).
    FileCommit {
        /// Room id.
        room: i64,
        /// The stored name: the id from `file_begin` and the name's extension.
        file: String,
        /// The uploader's file name (metadata only).
        name: String,
        /// Size in bytes.
        size: u64,
        /// SHA-256 of the bytes, lowercase hex.
        sha256: String,
    },
    /// A file's metadata, to download it (file web service sessions only; recorded as a
    /// download).
    FileInfo {
        /// Room id.
        room: i64,
        /// The stored name.
        file: String,
    },
    /// The files of a room, newest first.
    FileList {
        /// Room id.
        room: i64,
        /// At most this many (default 100, max 1000).
        limit: Option<u32>,
    },
    /// The categories the user may see, and whether the user may create rooms in each.
    ListCategories,
    /// A room's members, managers and presenters (readers, managers, administrators).
    RoomRoles {
        /// Room id.
        room: i64,
    },
    /// Users whose name contains `query` (case-insensitive), exact matches first.
    FindUsers {
        /// Part of a sign-in name.
        query: String,
        /// At most this many (default 20, max 100).
        limit: Option<u32>,
    },
}

impl Op {
    /// The wire name of the operation, for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Op::SignIn { .. } => "sign_in",
            Op::Ping => "ping",
            Op::Join { .. } => "join",
            Op::Bjoin { .. } => "bjoin",
            Op::Part { .. } => "part",
            Op::Post { .. } => "post",
            Op::History { .. } => "history",
            Op::Search { .. } => "search",
            Op::Participants { .. } => "participants",
            Op::ListRooms { .. } => "list_rooms",
            Op::RoomInfo { .. } => "room_info",
            Op::SetPresence { .. } => "set_presence",
            Op::Subscribe { .. } => "subscribe",
            Op::CreateCategory(_) => "create_category",
            Op::UpdateCategory { .. } => "update_category",
            Op::CreateRoom(_) => "create_room",
            Op::UpdateRoom { .. } => "update_room",
            Op::SetRole { .. } => "set_role",
            Op::DeleteRoom { .. } => "delete_room",
            Op::ClearHistory { .. } => "clear_history",
            Op::RemoveMessage { .. } => "remove_message",
            Op::Invitations => "invitations",
            Op::DismissInvitation { .. } => "dismiss_invitation",
            Op::Follow { .. } => "follow",
            Op::Unfollow { .. } => "unfollow",
            Op::Followed => "followed",
            Op::MarkRead { .. } => "mark_read",
            Op::FileBegin { .. } => "file_begin",
            Op::FileCommit { .. } => "file_commit",
            Op::FileInfo { .. } => "file_info",
            Op::FileList { .. } => "file_list",
            Op::ListCategories => "list_categories",
            Op::RoomRoles { .. } => "room_roles",
            Op::FindUsers { .. } => "find_users",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_round_trips_through_json() {
        let text =
            r#"{"id":7,"type":"post","room":3,"text":"hi","client_msg_id":"a1","sent_at_us":5}"#;
        let req: Request = serde_json::from_str(text).expect("parses");
        assert_eq!(req.id, 7);
        assert_eq!(
            req.op,
            Op::Post {
                room: 3,
                text: "hi".into(),
                client_msg_id: "a1".into(),
                sent_at_us: Some(5)
            }
        );
        let back: Request =
            serde_json::from_str(&serde_json::to_string(&req).expect("ser")).expect("de");
        assert_eq!(back, req);
    }
}
