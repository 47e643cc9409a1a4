//! Management: categories (administrators), rooms (creators and managers), roles
//! (managers), and the administrators' operations on content (delete a room, clear
//! history before a date, remove or replace a message).
//!
//! Each change is written to the database first; then every chat server of the pool, this
//! one first, reads the changed rows again and tells its affected sessions
//! (`peers::apply_change`).

use std::sync::Arc;

use super::{rights, Hub, SessionKey};
use crate::model::{Category, Room, User};
use crate::protocol::pool::Change;
use crate::protocol::reply::{reply_json, Changed, Created};
use crate::protocol::{ErrorCode, Op, Request, RoleName, WireError};
use crate::store::StoreError;

fn store_err(e: StoreError) -> WireError {
    match e {
        StoreError::Conflict(what) => {
            WireError::new(ErrorCode::Conflict, format!("{what} name already taken"))
        }
        other => {
            tracing::error!(error = %other, "storage failure");
            WireError::new(
                ErrorCode::Internal,
                "storage unavailable; nothing was changed",
            )
        }
    }
}

fn check_name(name: &str) -> Result<(), WireError> {
    if name.trim().is_empty() || name.len() > 256 {
        return Err(WireError::new(
            ErrorCode::InvalidArgument,
            "a name must be 1–256 bytes and not blank",
        ));
    }
    Ok(())
}

impl Hub {
    /// Every user exists: known here, or created since this server loaded its directory
    /// (`chatcap user add`, another server of the pool).
    async fn check_users(&self, ids: &[i64]) -> Result<(), WireError> {
        for id in ids {
            match self.learn_user_id(*id).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(WireError::new(
                        ErrorCode::UserNotFound,
                        format!("user {id} not found"),
                    ))
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        Ok(())
    }

    /// Management and administration requests.
    pub(super) async fn dispatch_admin(
        self: &Arc<Self>,
        _key: SessionKey,
        user: &User,
        req: &Request,
    ) -> Result<String, WireError> {
        let id = req.id;
        match &req.op {
            Op::CreateCategory(spec) => {
                rights::admin_only(user, "create categories")?;
                check_name(&spec.name)?;
                self.check_users(&[spec.allowed.as_slice(), &spec.denied, &spec.creators].concat())
                    .await?;
                let cat = Category {
                    id: 0,
                    name: spec.name.clone(),
                    allow_everyone: spec.allow_everyone,
                    allowed: spec.allowed.clone(),
                    denied: spec.denied.clone(),
                    creators: spec.creators.clone(),
                    invitations: spec.invitations,
                    file_upload: spec.file_upload,
                    history: spec.history,
                };
                let new_id = self.store.create_category(&cat).await.map_err(store_err)?;
                self.changed(Change::Category { id: new_id }).await;
                Ok(reply_json(id, &Created { id: new_id }))
            }
            Op::UpdateCategory { category, patch } => {
                rights::admin_only(user, "change categories")?;
                let mut cat = self
                    .dir()
                    .categories
                    .get(category)
                    .cloned()
                    .ok_or_else(|| {
                        WireError::new(
                            ErrorCode::CategoryNotFound,
                            format!("category {category} not found"),
                        )
                    })?;
                for list in [&patch.allowed, &patch.denied, &patch.creators]
                    .into_iter()
                    .flatten()
                {
                    self.check_users(list).await?;
                }
                if let Some(v) = patch.allow_everyone {
                    cat.allow_everyone = v;
                }
                if let Some(v) = &patch.allowed {
                    cat.allowed = v.clone();
                }
                if let Some(v) = &patch.denied {
                    cat.denied = v.clone();
                }
                if let Some(v) = &patch.creators {
                    cat.creators = v.clone();
                }
                if let Some(v) = patch.invitations {
                    cat.invitations = v;
                }
                if let Some(v) = patch.file_upload {
                    cat.file_upload = v;
                }
                if let Some(v) = patch.history {
                    cat.history = v;
                }
                self.store.update_category(&cat).await.map_err(store_err)?;
                self.changed(Change::Category { id: cat.id }).await;
                Ok(reply_json(id, &Changed { changed: 1 }))
            }
            Op::CreateRoom(spec) => {
                rights::may_create_in(&self.dir(), user, spec.category)?;
                check_name(&spec.name)?;
                let room = Room {
                    id: 0,
                    name: spec.name.clone(),
                    description: spec.description.clone(),
                    category: spec.category,
                    kind: spec.kind,
                    privacy: spec.privacy,
                    disabled: false,
                    addin_url: spec.addin_url.clone().filter(|u| !u.is_empty()),
                    invitations: spec.invitations,
                    last_seq: 0,
                };
                // The creator becomes manager (and member) of the new room.
                let roles = [(user.id, RoleName::Manager), (user.id, RoleName::Member)];
                let new_id = self
                    .store
                    .create_room(&room, &roles)
                    .await
                    .map_err(store_err)?;
                self.changed(Change::Room { id: new_id }).await;
                Ok(reply_json(id, &Created { id: new_id }))
            }
            Op::UpdateRoom { room, patch } => {
                let mut r = rights::manageable(&self.dir(), user, *room)?.clone();
                if let Some(v) = &patch.name {
                    check_name(v)?;
                    r.name = v.clone();
                }
                if let Some(v) = &patch.description {
                    r.description = v.clone();
                }
                if let Some(v) = patch.kind {
                    r.kind = v;
                }
                if let Some(v) = patch.privacy {
                    r.privacy = v;
                }
                if let Some(v) = patch.disabled {
                    r.disabled = v;
                }
                if let Some(v) = &patch.addin_url {
                    r.addin_url = Some(v.clone()).filter(|u| !u.is_empty());
                }
                if let Some(v) = patch.invitations {
                    r.invitations = v;
                }
                self.store.update_room(&r).await.map_err(store_err)?;
                self.changed(Change::Room { id: *room }).await;
                Ok(reply_json(id, &Changed { changed: 1 }))
            }
            Op::SetRole {
                room,
                user: target,
                role,
                grant,
            } => {
                rights::manageable(&self.dir(), user, *room)?;
                self.check_users(&[*target]).await?;
                let invitation = self.invitation_due(user, *room, *target, *role, *grant);
                self.store
                    .set_role(*room, *target, *role, *grant)
                    .await
                    .map_err(store_err)?;
                // The target's roles changed (e.g. a new presenter): the room is told.
                self.changed(Change::Room { id: *room }).await;
                self.send_invitation(invitation).await;
                Ok(reply_json(id, &Changed { changed: 1 }))
            }
            Op::DeleteRoom { room } => {
                rights::admin_only(user, "delete rooms")?;
                if !self.dir().rooms.contains_key(room) {
                    return Err(WireError::new(
                        ErrorCode::RoomNotFound,
                        format!("room {room} not found"),
                    ));
                }
                // Close the room to posts first (disabled in memory, everyone out), then let
                // what was numbered reach the database, and only then delete: no message
                // can be stored after its room is gone.
                let was_disabled = self.set_disabled_in_memory(*room, true);
                self.evict_all(*room, "deleted");
                self.flush().await;
                if let Err(e) = self.store.delete_room(*room).await {
                    self.set_disabled_in_memory(*room, was_disabled);
                    return Err(store_err(e));
                }
                self.changed(Change::RoomDeleted { id: *room }).await;
                self.forget_room_social(*room).await;
                Ok(reply_json(id, &Changed { changed: 1 }))
            }
            Op::ClearHistory { room, before_us } => {
                rights::admin_only(user, "clear history")?;
                if !self.dir().rooms.contains_key(room) {
                    return Err(WireError::new(
                        ErrorCode::RoomNotFound,
                        format!("room {room} not found"),
                    ));
                }
                // Numbering never restarts, even when every message is deleted: it comes
                // from the room's row (`store::sequence`), which clearing leaves alone.
                self.flush().await;
                let n = self
                    .store
                    .clear_history(*room, *before_us)
                    .await
                    .map_err(store_err)?;
                let cleared = Change::HistoryCleared {
                    room: *room,
                    before_us: *before_us,
                };
                self.changed(cleared).await;
                Ok(reply_json(id, &Changed { changed: n }))
            }
            Op::RemoveMessage {
                room,
                seq,
                replacement,
            } => {
                rights::admin_only(user, "remove messages")?;
                if !self.dir().rooms.contains_key(room) {
                    return Err(WireError::new(
                        ErrorCode::RoomNotFound,
                        format!("room {room} not found"),
                    ));
                }
                self.flush().await;
                let (text, removed) = match replacement {
                    Some(t) => (t.clone(), false),
                    None => (String::new(), true),
                };
                if !self
                    .store
                    .edit_message(*room, *seq, &text, removed)
                    .await
                    .map_err(store_err)?
                {
                    return Err(WireError::new(
                        ErrorCode::MessageNotFound,
                        format!("no message {seq} in room {room}"),
                    ));
                }
                let edited = Change::MessageChanged {
                    room: *room,
                    seq: *seq,
                    text,
                    removed,
                };
                self.changed(edited).await;
                Ok(reply_json(id, &Changed { changed: 1 }))
            }
            other => Err(WireError::new(
                ErrorCode::Internal,
                format!("{} is not handled here", other.name()),
            )),
        }
    }

    /// Set a room's disabled flag in memory only; returns the previous value.
    fn set_disabled_in_memory(&self, room: i64, disabled: bool) -> bool {
        let mut dir = self.dir_mut();
        match dir.rooms.get_mut(&room) {
            Some(r) => std::mem::replace(&mut r.disabled, disabled),
            None => disabled,
        }
    }
}
