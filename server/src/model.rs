//! Plain data of the chat domain, shared by the store (which loads and saves it) and the
//! chat core (which decides with it). No I/O and no locking here.

use std::collections::HashMap;

use crate::protocol::{Privacy, RoleName, RoomKind};

/// A user of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User id.
    pub id: i64,
    /// Unique sign-in name.
    pub name: String,
    /// Persistent Chat administrator.
    pub admin: bool,
}

/// A category and its access lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Category {
    /// Category id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// AllowedMembers = everyone.
    pub allow_everyone: bool,
    /// AllowedMembers (besides everyone).
    pub allowed: Vec<i64>,
    /// DeniedMembers: the ethical wall.
    pub denied: Vec<i64>,
    /// Creators.
    pub creators: Vec<i64>,
    /// Invitations switch.
    pub invitations: bool,
    /// File upload switch.
    pub file_upload: bool,
    /// Chat history switch: off = messages are not stored.
    pub history: bool,
}

/// Which list of a category a principal is on (stored as a small integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// AllowedMembers.
    Allowed = 0,
    /// DeniedMembers.
    Denied = 1,
    /// Creators.
    Creator = 2,
}

/// A room's stored settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
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
    /// Disabled.
    pub disabled: bool,
    /// Add-in URL.
    pub addin_url: Option<String>,
    /// Invitations inherit (true) or off (false).
    pub invitations: bool,
    /// Last sequence number committed.
    pub last_seq: i64,
}

/// The set of roles one user holds in one room, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Roles(pub u8);

impl Roles {
    /// No role.
    pub const NONE: Roles = Roles(0);

    /// The bit of one role.
    pub fn bit(role: RoleName) -> u8 {
        1 << role_code(role)
    }

    /// Holds this role.
    pub fn has(self, role: RoleName) -> bool {
        self.0 & Self::bit(role) != 0
    }

    /// Add or remove a role.
    pub fn set(&mut self, role: RoleName, on: bool) {
        if on {
            self.0 |= Self::bit(role);
        } else {
            self.0 &= !Self::bit(role);
        }
    }

    /// Holds any role (is on one of the room's lists).
    pub fn any(self) -> bool {
        self.0 != 0
    }

    /// The roles as names, in a stable order.
    pub fn names(self) -> Vec<RoleName> {
        [RoleName::Member, RoleName::Manager, RoleName::Presenter]
            .into_iter()
            .filter(|r| self.has(*r))
            .collect()
    }
}

/// Storage code of a role.
pub fn role_code(role: RoleName) -> i16 {
    match role {
        RoleName::Member => 0,
        RoleName::Manager => 1,
        RoleName::Presenter => 2,
    }
}

/// Role from its storage code.
pub fn role_from_code(code: i16) -> Option<RoleName> {
    match code {
        0 => Some(RoleName::Member),
        1 => Some(RoleName::Manager),
        2 => Some(RoleName::Presenter),
        _ => None,
    }
}

/// Storage code of a room kind.
pub fn kind_code(kind: RoomKind) -> i16 {
    match kind {
        RoomKind::Normal => 0,
        RoomKind::Auditorium => 1,
    }
}

/// Room kind from its storage code (unknown codes read as normal).
pub fn kind_from_code(code: i16) -> RoomKind {
    if code == 1 {
        RoomKind::Auditorium
    } else {
        RoomKind::Normal
    }
}

/// Storage code of a privacy setting.
pub fn privacy_code(p: Privacy) -> i16 {
    match p {
        Privacy::Open => 0,
        Privacy::Closed => 1,
        Privacy::Secret => 2,
    }
}

/// Privacy from its storage code (unknown codes read as secret, the safe side).
pub fn privacy_from_code(code: i16) -> Privacy {
    match code {
        0 => Privacy::Open,
        1 => Privacy::Closed,
        _ => Privacy::Secret,
    }
}

/// Everything the chat core keeps in memory about who may do what: loaded once at start,
/// then kept in step with every change the server makes.
#[derive(Debug, Default)]
pub struct Directory {
    /// Users by id.
    pub users: HashMap<i64, User>,
    /// Categories by id.
    pub categories: HashMap<i64, Category>,
    /// Rooms by id.
    pub rooms: HashMap<i64, Room>,
    /// Room id by name.
    pub room_names: HashMap<String, i64>,
    /// Roles: room → user → roles.
    pub roles: HashMap<i64, HashMap<i64, Roles>>,
    /// Rooms a user holds any role in.
    pub user_rooms: HashMap<i64, Vec<i64>>,
}

impl Directory {
    /// A user's roles in a room.
    pub fn roles_of(&self, room: i64, user: i64) -> Roles {
        self.roles
            .get(&room)
            .and_then(|m| m.get(&user))
            .copied()
            .unwrap_or_default()
    }

    /// Set or clear one role, keeping `user_rooms` in step.
    pub fn set_role(&mut self, room: i64, user: i64, role: RoleName, on: bool) {
        let entry = self.roles.entry(room).or_default();
        let roles = entry.entry(user).or_default();
        let before = roles.any();
        roles.set(role, on);
        let after = roles.any();
        if !after {
            entry.remove(&user);
        }
        if before != after {
            let list = self.user_rooms.entry(user).or_default();
            if after {
                list.push(room);
            } else {
                list.retain(|r| *r != room);
            }
        }
    }

    /// Insert or replace a room, keeping the name index in step.
    pub fn put_room(&mut self, room: Room) {
        if let Some(old) = self.rooms.get(&room.id) {
            self.room_names.remove(&old.name);
        }
        self.room_names.insert(room.name.clone(), room.id);
        self.rooms.insert(room.id, room);
    }

    /// Remove a room and every role in it.
    pub fn remove_room(&mut self, id: i64) {
        if let Some(old) = self.rooms.remove(&id) {
            self.room_names.remove(&old.name);
        }
        if let Some(users) = self.roles.remove(&id) {
            for user in users.keys() {
                if let Some(list) = self.user_rooms.get_mut(user) {
                    list.retain(|r| *r != id);
                }
            }
        }
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Year, month, day, hour, minute, second, microsecond of a Unix time in µs (UTC).
pub fn civil(at_us: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = at_us.div_euclid(1_000_000);
    let us = at_us.rem_euclid(1_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, sod / 3600, sod % 3600 / 60, sod % 60, us)
}
