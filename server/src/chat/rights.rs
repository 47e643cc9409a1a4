//! Who may do what: the rights of DESIGN.md as pure functions of the directory.
//!
//! - A category's DeniedMembers can never join its rooms, whatever their room roles
//!   (the ethical wall); a user must be in AllowedMembers (or the category allows
//!   everyone) to find or join any of its rooms.
//! - Open rooms: found and joined by everyone the category allows. Closed: found by them,
//!   joined by members (any role). Secret: found and joined by members only; to others a
//!   secret room does not exist (`room_not_found`, never `forbidden`).
//! - Auditorium: only presenters post. Managers edit rooms and their lists; creators of a
//!   category create rooms in it; administrators do everything, and alone delete rooms,
//!   clear history and remove messages.
//!
//! Nothing here does I/O or locks: callers pass the directory they hold.

use crate::model::{Category, Directory, Room, User};
use crate::protocol::{ErrorCode, Privacy, RoleName, RoomKind, WireError};

/// The category lets `user` in (allowed, and not behind the ethical wall).
pub fn category_admits(cat: &Category, user: i64) -> bool {
    !cat.denied.contains(&user) && (cat.allow_everyone || cat.allowed.contains(&user))
}

fn not_found(room: i64) -> WireError {
    WireError::new(ErrorCode::RoomNotFound, format!("room {room} not found"))
}

/// The room, if `user` may know it exists (directory search, room info).
pub fn visible<'d>(dir: &'d Directory, user: &User, room: i64) -> Result<&'d Room, WireError> {
    let r = dir.rooms.get(&room).ok_or_else(|| not_found(room))?;
    if user.admin {
        return Ok(r);
    }
    let cat = dir
        .categories
        .get(&r.category)
        .ok_or_else(|| not_found(room))?;
    let member = dir.roles_of(room, user.id).any();
    if !category_admits(cat, user.id)
        || (r.privacy == Privacy::Secret && !member)
        || (r.disabled && !member)
    {
        return Err(not_found(room));
    }
    Ok(r)
}

/// The room, if `user` may join it and read its messages.
pub fn readable<'d>(dir: &'d Directory, user: &User, room: i64) -> Result<&'d Room, WireError> {
    let r = visible(dir, user, room)?;
    let cat = dir
        .categories
        .get(&r.category)
        .ok_or_else(|| not_found(room))?;
    // The ethical wall binds administrators too: they manage the room but cannot read it.
    if cat.denied.contains(&user.id) {
        return Err(not_found(room));
    }
    if r.disabled {
        return Err(WireError::new(
            ErrorCode::RoomDisabled,
            format!("room {room} is disabled"),
        ));
    }
    if user.admin || r.privacy == Privacy::Open || dir.roles_of(room, user.id).any() {
        return Ok(r);
    }
    Err(WireError::new(
        ErrorCode::Forbidden,
        format!("only members may join room {room}"),
    ))
}

/// `user` may post in the room (given they may read it).
pub fn may_post(dir: &Directory, user: &User, room: &Room) -> Result<(), WireError> {
    if room.kind == RoomKind::Auditorium
        && !user.admin
        && !dir.roles_of(room.id, user.id).has(RoleName::Presenter)
    {
        return Err(WireError::new(
            ErrorCode::Forbidden,
            format!("only presenters post in auditorium {}", room.id),
        ));
    }
    Ok(())
}

/// The room, if `user` may change its settings and lists.
pub fn manageable<'d>(dir: &'d Directory, user: &User, room: i64) -> Result<&'d Room, WireError> {
    let r = dir.rooms.get(&room).ok_or_else(|| not_found(room))?;
    if user.admin || dir.roles_of(room, user.id).has(RoleName::Manager) {
        return Ok(r);
    }
    visible(dir, user, room)?;
    Err(WireError::new(
        ErrorCode::Forbidden,
        format!("only managers may change room {room}"),
    ))
}

/// `user` may create rooms in the category.
pub fn may_create_in(dir: &Directory, user: &User, category: i64) -> Result<(), WireError> {
    let cat = dir.categories.get(&category).ok_or_else(|| {
        WireError::new(
            ErrorCode::CategoryNotFound,
            format!("category {category} not found"),
        )
    })?;
    if user.admin || (cat.creators.contains(&user.id) && category_admits(cat, user.id)) {
        return Ok(());
    }
    Err(WireError::new(
        ErrorCode::Forbidden,
        format!("not a creator in category {category}"),
    ))
}

/// `user` is an administrator.
pub fn admin_only(user: &User, what: &str) -> Result<(), WireError> {
    if user.admin {
        Ok(())
    } else {
        Err(WireError::new(
            ErrorCode::Forbidden,
            format!("only administrators may {what}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Room;

    fn dir(privacy: Privacy, kind: RoomKind) -> Directory {
        let mut d = Directory::default();
        d.categories.insert(
            1,
            Category {
                id: 1,
                allow_everyone: true,
                denied: vec![9],
                ..Default::default()
            },
        );
        d.put_room(Room {
            id: 5,
            name: "r".into(),
            description: String::new(),
            category: 1,
            kind,
            privacy,
            disabled: false,
            addin_url: None,
            invitations: true,
            last_seq: 0,
        });
        d.set_role(5, 2, RoleName::Member, true);
        d.set_role(5, 9, RoleName::Member, true);
        d.set_role(5, 3, RoleName::Presenter, true);
        d
    }

    fn user(id: i64) -> User {
        User {
            id,
            name: format!("u{id}"),
            admin: false,
        }
    }

    #[test]
    fn secret_rooms_do_not_exist_for_outsiders() {
        let d = dir(Privacy::Secret, RoomKind::Normal);
        assert_eq!(
            readable(&d, &user(4), 5).unwrap_err().code,
            ErrorCode::RoomNotFound
        );
        assert!(readable(&d, &user(2), 5).is_ok());
    }

    #[test]
    fn closed_rooms_are_found_but_not_joined_by_outsiders() {
        let d = dir(Privacy::Closed, RoomKind::Normal);
        assert!(visible(&d, &user(4), 5).is_ok());
        assert_eq!(
            readable(&d, &user(4), 5).unwrap_err().code,
            ErrorCode::Forbidden
        );
    }

    #[test]
    fn the_ethical_wall_beats_membership() {
        let d = dir(Privacy::Open, RoomKind::Normal);
        assert_eq!(
            readable(&d, &user(9), 5).unwrap_err().code,
            ErrorCode::RoomNotFound
        );
    }

    #[test]
    fn only_presenters_post_in_auditoriums() {
        let d = dir(Privacy::Open, RoomKind::Auditorium);
        let room = d.rooms.get(&5).expect("room");
        assert!(may_post(&d, &user(2), room).is_err());
        assert!(may_post(&d, &user(3), room).is_ok());
    }
}
