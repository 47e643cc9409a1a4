//! Read-only directory operations that room management needs: the categories a user may
//! see (`list_categories`), a room's member lists (`room_roles`), and users by name
//! (`find_users`). The web service's room-management page is built on them; chat clients
//! may use them too.
//!
//! Who sees what (documented in `docs/PROTOCOL.md` §3 and §7):
//! - `list_categories`: administrators see every category with its access lists; other
//!   users see the categories that admit them (AllowedMembers, not DeniedMembers), without
//!   the lists, each with `may_create` (the user is one of its Creators).
//! - `room_roles`: whoever may read the room (as for `participants`), its managers, and
//!   administrators. Others get what `join` would give them: `room_not_found` for rooms
//!   they may not find (secret rooms stay hidden), `forbidden` for closed rooms.
//! - `find_users`: any signed-in user (the address book is not secret).
//!
//! Nothing here writes: no database changes, no pushes.

use super::{rights, Hub};
use crate::model::{Directory, User};
use crate::protocol::reply::{reply_json, Categories, CategoryInfo, RoomRoles, Users};
use crate::protocol::{ErrorCode, Op, Request, RoleName, UserInfo, WireError};

/// Default number of users `find_users` returns.
pub const FIND_USERS_DEFAULT: u32 = 20;
/// Most users `find_users` returns.
pub const FIND_USERS_MAX: u32 = 100;

fn user_info(u: &User) -> UserInfo {
    UserInfo {
        id: u.id,
        name: u.name.clone(),
        admin: u.admin,
    }
}

/// The categories `user` may see, by id.
fn categories(dir: &Directory, user: &User) -> Vec<CategoryInfo> {
    let mut out: Vec<CategoryInfo> = dir
        .categories
        .values()
        .filter(|c| user.admin || rights::category_admits(c, user.id))
        .map(|c| CategoryInfo {
            id: c.id,
            name: c.name.clone(),
            allow_everyone: c.allow_everyone,
            invitations: c.invitations,
            file_upload: c.file_upload,
            history: c.history,
            may_create: rights::may_create_in(dir, user, c.id).is_ok(),
            allowed: user.admin.then(|| c.allowed.clone()),
            denied: user.admin.then(|| c.denied.clone()),
            creators: user.admin.then(|| c.creators.clone()),
        })
        .collect();
    out.sort_by_key(|c| c.id);
    out
}

/// The room's three lists, if `user` may see them.
fn room_roles(dir: &Directory, user: &User, room: i64) -> Result<RoomRoles, WireError> {
    if rights::manageable(dir, user, room).is_err() {
        rights::readable(dir, user, room)?;
    }
    let mut out = RoomRoles {
        room,
        members: Vec::new(),
        managers: Vec::new(),
        presenters: Vec::new(),
    };
    let Some(holders) = dir.roles.get(&room) else {
        return Ok(out);
    };
    let mut ids: Vec<i64> = holders.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let roles = dir.roles_of(room, id);
        // A role held by a user this server does not know (created elsewhere, never seen)
        // is still listed, under a placeholder name.
        let info = dir.users.get(&id).map(user_info).unwrap_or(UserInfo {
            id,
            name: format!("user {id}"),
            admin: false,
        });
        for (role, list) in [
            (RoleName::Member, &mut out.members),
            (RoleName::Manager, &mut out.managers),
            (RoleName::Presenter, &mut out.presenters),
        ] {
            if roles.has(role) {
                list.push(info.clone());
            }
        }
    }
    Ok(out)
}

/// Users whose name contains `needle` (lower case), exact matches first, then by id.
fn users_matching(dir: &Directory, needle: &str, limit: usize) -> Vec<UserInfo> {
    let mut found: Vec<&User> = dir
        .users
        .values()
        .filter(|u| u.name.to_lowercase().contains(needle))
        .collect();
    found.sort_by_key(|u| (u.name.to_lowercase() != needle, u.id));
    found.into_iter().take(limit).map(user_info).collect()
}

impl Hub {
    /// `list_categories`, `room_roles`, `find_users`.
    pub(super) async fn directory_op(
        &self,
        user: &User,
        req: &Request,
    ) -> Result<String, WireError> {
        let id = req.id;
        match &req.op {
            Op::ListCategories => {
                let categories = categories(&self.dir(), user);
                Ok(reply_json(id, &Categories { categories }))
            }
            Op::RoomRoles { room } => {
                room_roles(&self.dir(), user, *room).map(|r| reply_json(id, &r))
            }
            Op::FindUsers { query, limit } => {
                let limit = limit.unwrap_or(FIND_USERS_DEFAULT).clamp(1, FIND_USERS_MAX) as usize;
                let query = query.trim();
                if query.len() > 256 {
                    return Err(WireError::new(
                        ErrorCode::InvalidArgument,
                        "query must be at most 256 bytes",
                    ));
                }
                self.learn_user(query).await?;
                let users = users_matching(&self.dir(), &query.to_lowercase(), limit);
                Ok(reply_json(id, &Users { users }))
            }
            other => Err(WireError::new(
                ErrorCode::Internal,
                format!("{} is not a directory operation", other.name()),
            )),
        }
    }

    /// A user created after this server loaded its directory (`chatcap user add`, or
    /// another server of the pool) is unknown here until it signs in: an exact name looks
    /// it up in the database once, so that a manager can add it to a room right away.
    async fn learn_user(&self, name: &str) -> Result<(), WireError> {
        if name.is_empty() || self.dir().users.values().any(|u| u.name == name) {
            return Ok(());
        }
        match self.store.user_by_name(name).await {
            Ok(Some(u)) => {
                self.dir_mut().users.entry(u.id).or_insert(u);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "storage failure looking a user up");
                Err(WireError::new(
                    ErrorCode::Internal,
                    "storage unavailable; try again",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Category, Room};
    use crate::protocol::{Privacy, RoomKind};

    fn user(id: i64, admin: bool) -> User {
        User {
            id,
            name: format!("u{id}@t"),
            admin,
        }
    }

    fn dir() -> Directory {
        let mut d = Directory::default();
        for u in [
            user(1, true),
            user(2, false),
            user(3, false),
            user(4, false),
        ] {
            d.users.insert(u.id, u);
        }
        d.categories.insert(
            1,
            Category {
                id: 1,
                name: "open".into(),
                allow_everyone: true,
                denied: vec![4],
                creators: vec![2],
                ..Default::default()
            },
        );
        d.categories.insert(
            2,
            Category {
                id: 2,
                name: "walled".into(),
                allow_everyone: false,
                allowed: vec![3],
                ..Default::default()
            },
        );
        d.put_room(Room {
            id: 5,
            name: "secret".into(),
            description: String::new(),
            category: 1,
            kind: RoomKind::Auditorium,
            privacy: Privacy::Secret,
            disabled: false,
            addin_url: None,
            invitations: true,
            last_seq: 0,
        });
        d.set_role(5, 2, RoleName::Manager, true);
        d.set_role(5, 2, RoleName::Member, true);
        d.set_role(5, 3, RoleName::Presenter, true);
        d
    }

    #[test]
    fn categories_show_lists_to_administrators_only() {
        let d = dir();
        let admin = categories(&d, &user(1, true));
        assert_eq!(admin.len(), 2);
        assert_eq!(admin[0].denied, Some(vec![4]));
        let plain = categories(&d, &user(2, false));
        assert_eq!(plain.iter().map(|c| c.id).collect::<Vec<_>>(), vec![1]);
        assert!(plain[0].may_create && plain[0].denied.is_none());
        // Behind the wall of category 1, not allowed in category 2: sees nothing.
        assert!(categories(&d, &user(4, false)).is_empty());
    }

    #[test]
    fn room_lists_are_hidden_from_those_who_may_not_find_the_room() {
        let d = dir();
        let roles = room_roles(&d, &user(2, false), 5).expect("manager sees the lists");
        assert_eq!(roles.managers.len(), 1);
        assert_eq!(roles.members[0].id, 2);
        assert_eq!(roles.presenters[0].id, 3);
        assert!(
            room_roles(&d, &user(3, false), 5).is_ok(),
            "presenter reads"
        );
        assert!(room_roles(&d, &user(1, true), 5).is_ok(), "administrator");
        let outsider = room_roles(&d, &user(4, false), 5).unwrap_err();
        assert_eq!(outsider.code, ErrorCode::RoomNotFound);
    }

    #[test]
    fn exact_names_come_first() {
        let mut d = dir();
        d.users.insert(
            12,
            User {
                id: 12,
                name: "u1@t.x".into(),
                admin: false,
            },
        );
        let found = users_matching(&d, "u1@t", 10);
        assert_eq!(found[0].id, 1);
        assert_eq!(found.len(), 2);
        assert_eq!(users_matching(&d, "u", 3).len(), 3);
    }
}
