//! The Lync Server 2013 Persistent Chat performance user model (DESIGN.md §2): the room
//! classes and per-user rates that `model = "lync2013"` stands for, and the table's published
//! pool-wide figures that the dry run prints next to a plan's. Numbers only; no logic beyond
//! scaling.

use super::plan::{OpKind, OpRate, RoomClass};

/// Users the published model is rated for (4 chat servers).
pub const USERS: u32 = 80_000;
/// Average endpoints (connections) per user.
pub const ENDPOINTS_PER_USER: f64 = 1.5;
/// Participants returned by one poll of a visible room (the model polls 25 per room).
pub const PARTICIPANTS_PER_POLL: u32 = 25;

/// One room class of the model.
#[derive(Debug, Clone, Copy)]
pub struct ClassModel {
    /// Class name.
    pub name: &'static str,
    /// Members per room.
    pub size: u32,
    /// Rooms of the class per user.
    pub rooms_per_user: u32,
    /// Rooms of the class at 80,000 users, as published.
    pub rooms: u32,
    /// Auditorium share.
    pub auditorium_share: f64,
    /// Open-room share.
    pub open_share: f64,
    /// Posts per user per hour: the published pool-wide chat rate × 3600 / 80,000.
    pub posts_per_user_per_hour: f64,
    /// Posts per second at 80,000 users, as published.
    pub posts_per_s: f64,
}

/// Small, medium and large rooms.
pub const CLASSES: [ClassModel; 3] = [
    ClassModel {
        name: "small",
        size: 30,
        rooms_per_user: 12,
        rooms: 32_000,
        auditorium_share: 0.01,
        open_share: 0.03,
        posts_per_user_per_hour: 1.0,
        posts_per_s: 22.22,
    },
    ClassModel {
        name: "medium",
        size: 150,
        rooms_per_user: 2,
        rooms: 1_067,
        auditorium_share: 0.01,
        open_share: 0.03,
        posts_per_user_per_hour: 0.075,
        posts_per_s: 1.67,
    },
    ClassModel {
        name: "large",
        size: 16_000,
        rooms_per_user: 2,
        rooms: 10,
        auditorium_share: 0.5,
        open_share: 0.5,
        posts_per_user_per_hour: 0.006_75,
        posts_per_s: 0.15,
    },
];

/// Participant polls per user per hour: 2.25 visible rooms (1.5 endpoints × 1.5 rooms), each
/// polled every 5 minutes.
pub const POLLS_PER_USER_PER_HOUR: f64 = 2.25 * 12.0;
/// Presence changes per user per hour.
pub const PRESENCE_PER_USER_PER_HOUR: f64 = 6.0;

/// Published pool-wide figures at 80,000 users.
pub mod published {
    /// Participants polled per second.
    pub const PARTICIPANTS_POLLED_PER_S: f64 = 15_000.0;
    /// Presence changes per second.
    pub const PRESENCE_PER_S: f64 = 133.33;
    /// Peak join (sign-in) rate.
    pub const SIGN_INS_PER_S: f64 = 10.0;
    /// Total chat rate.
    pub const POSTS_PER_S: f64 = 24.0;
    /// Deliveries per second with 1.5 endpoints per user (about 3,300 per user, derived in
    /// the reference notes, not published).
    pub const DELIVERIES_PER_S: f64 = 5_000.0;
}

/// The model's room classes for `users` users. Room sizes above `users` are cut to `users`
/// (a 16,000-member room cannot exist among 300 users); rooms per user stay as published, so
/// the room counts scale with `users`.
pub fn room_classes(users: u32) -> Vec<RoomClass> {
    CLASSES
        .iter()
        .map(|c| RoomClass {
            name: c.name.to_string(),
            size: c.size.min(users),
            rooms_per_user: c.rooms_per_user,
            auditorium_share: c.auditorium_share,
            open_share: c.open_share,
        })
        .collect()
}

/// The model's operations at level high: posts per class, participant polls, presence.
pub fn ops() -> Vec<OpRate> {
    let mut ops: Vec<OpRate> = CLASSES
        .iter()
        .map(|c| OpRate {
            op: OpKind::Post,
            per_user_per_hour: c.posts_per_user_per_hour,
            room_class: Some(c.name.to_string()),
        })
        .collect();
    ops.push(OpRate {
        op: OpKind::PollParticipants,
        per_user_per_hour: POLLS_PER_USER_PER_HOUR,
        room_class: None,
    });
    ops.push(OpRate {
        op: OpKind::Presence,
        per_user_per_hour: PRESENCE_PER_USER_PER_HOUR,
        room_class: None,
    });
    ops
}
