//! Invitations and followed rooms.
//!
//! - **Invitations**: a user added as *member* of a room whose invitations are on (the
//!   room's `invitations` inherits and its category's switch is on) gets an invitation to
//!   it, unless they added themselves. It is pushed to their signed-in sessions at once
//!   and kept in the database until they join the room or dismiss it, so that a client
//!   fetches the pending ones after sign-in (`invitations`, Lync's `getinv`).
//! - **Followed rooms**: a user follows rooms they may read and gets each one's unread
//!   count without joining it. Unread = the room's last sequence number minus the user's
//!   read mark, which only moves forward (`mark_read`).
//!
//! Both lists show only rooms the user may read now: losing the right hides an entry
//! (it comes back with the right), it does not delete it. Deleting a room deletes both.
//! Rights come from [`rights`]; SQL from `store::social`.

use std::sync::Arc;

use super::{rights, Hub};
use crate::model::{now_us, User};
use crate::protocol::pool::Change;
use crate::protocol::reply::{
    push_json, reply_json, Changed, Followed, FollowedRoom, Invitation, Invitations,
};
use crate::protocol::{ErrorCode, Op, Push, Request, RoleName, WireError};
use crate::store::social::FollowRow;
use crate::store::StoreError;

fn storage(e: StoreError) -> WireError {
    tracing::error!(error = %e, "storage failure");
    WireError::new(
        ErrorCode::Internal,
        "storage unavailable; nothing was changed",
    )
}

/// A grant of the member role that will leave an invitation once applied: worked out
/// before the grant (was the user a member already?), sent after it.
#[derive(Debug, Clone, Copy)]
pub struct DueInvitation {
    user: i64,
    room: i64,
    inviter: i64,
}

impl Hub {
    /// `invitations`, `dismiss_invitation`, `follow`, `unfollow`, `followed`, `mark_read`.
    pub(super) async fn social_op(&self, user: &User, req: &Request) -> Result<String, WireError> {
        let id = req.id;
        match &req.op {
            Op::Invitations => {
                let rows = self.store.invitations_of(user.id).await.map_err(storage)?;
                let dir = self.dir();
                let invitations = rows
                    .into_iter()
                    .filter_map(|i| {
                        let r = rights::readable(&dir, user, i.room).ok()?;
                        Some(Invitation {
                            room: i.room,
                            name: r.name.clone(),
                            inviter: i.inviter,
                            at_us: i.at_us,
                        })
                    })
                    .collect();
                Ok(reply_json(id, &Invitations { invitations }))
            }
            Op::DismissInvitation { room } => {
                let changed = self
                    .store
                    .remove_invitation(user.id, *room)
                    .await
                    .map_err(storage)?;
                self.invitations().remove(&(user.id, *room));
                Ok(reply_json(id, &Changed { changed }))
            }
            Op::Follow { room } => {
                let name = rights::readable(&self.dir(), user, *room)?.name.clone();
                // A new follow starts read up to now: unread counts what comes after.
                let last = self.last_seq(*room).await?;
                self.store
                    .follow(user.id, *room, last)
                    .await
                    .map_err(storage)?;
                let row = self.follow_row(user.id, *room).await?;
                Ok(reply_json(id, &self.followed_room(name, &row)))
            }
            Op::Unfollow { room } => {
                // No rights check: a user who lost the room may still drop it.
                let changed = self.store.unfollow(user.id, *room).await.map_err(storage)?;
                Ok(reply_json(id, &Changed { changed }))
            }
            Op::Followed => {
                let rows = self.store.follows_of(user.id).await.map_err(storage)?;
                let named: Vec<(String, FollowRow)> = {
                    let dir = self.dir();
                    rows.into_iter()
                        .filter_map(|f| {
                            let name = rights::readable(&dir, user, f.room).ok()?.name.clone();
                            Some((name, f))
                        })
                        .collect()
                };
                let followed = named
                    .into_iter()
                    .map(|(name, f)| self.followed_room(name, &f))
                    .collect();
                Ok(reply_json(id, &Followed { followed }))
            }
            Op::MarkRead { room, seq } => {
                let name = rights::readable(&self.dir(), user, *room)?.name.clone();
                let row = self.follow_row(user.id, *room).await?;
                let top = self.live_last_seq(*room).max(row.stored_last_seq);
                self.store
                    .mark_read(user.id, *room, (*seq).clamp(0, top))
                    .await
                    .map_err(storage)?;
                let row = self.follow_row(user.id, *room).await?;
                Ok(reply_json(id, &self.followed_room(name, &row)))
            }
            other => Err(WireError::new(
                ErrorCode::Internal,
                format!("{} is not an invitation or follow operation", other.name()),
            )),
        }
    }

    /// Before a role change is applied: the invitation it will leave, if any. Only a grant
    /// of `member` to someone else, not yet a member, in a room with invitations on.
    pub(super) fn invitation_due(
        &self,
        by: &User,
        room: i64,
        target: i64,
        role: RoleName,
        grant: bool,
    ) -> Option<DueInvitation> {
        if !grant || role != RoleName::Member || target == by.id {
            return None;
        }
        let dir = self.dir();
        let r = dir.rooms.get(&room)?;
        let category_on = dir.categories.get(&r.category)?.invitations;
        let fresh = !dir.roles_of(room, target).has(RoleName::Member);
        (r.invitations && category_on && fresh).then_some(DueInvitation {
            user: target,
            room,
            inviter: by.id,
        })
    }

    /// After the grant: store the invitation and push it to the invitee's signed-in
    /// sessions. Only for a room the invitee may now read (the ethical wall still holds);
    /// a failure is logged and does not undo the grant.
    pub(super) async fn send_invitation(self: &Arc<Self>, due: Option<DueInvitation>) {
        let Some(due) = due else { return };
        let name = {
            let dir = self.dir();
            let Some(invitee) = dir.users.get(&due.user) else {
                return;
            };
            match rights::readable(&dir, invitee, due.room) {
                Ok(r) => r.name.clone(),
                Err(_) => return,
            }
        };
        let at_us = now_us();
        match self
            .store
            .create_invitation(due.user, due.room, due.inviter, at_us)
            .await
        {
            Ok(true) => {}
            // Already invited (a concurrent grant): that one was pushed.
            Ok(false) => return,
            Err(e) => {
                tracing::error!(error = %e, room = due.room, user = due.user, "invitation not stored");
                return;
            }
        }
        let push = push_json(&Push::Invitation(Invitation {
            room: due.room,
            name,
            inviter: due.inviter,
            at_us,
        }));
        // The invitee's sessions may be on any chat server of the pool.
        self.changed(Change::Invited {
            user: due.user,
            room: due.room,
            json: push,
        })
        .await;
    }

    /// A join took effect: an invitation to the room is used up. Only a join this server
    /// knows an invitation for asks the database (joins come in storms at sign-in; the
    /// pending invitations are in memory, loaded at start and told by every server); a
    /// failure only leaves the invitation pending.
    pub(super) async fn invitation_used(&self, user: i64, room: i64) {
        if !self.invitations().contains(&(user, room)) {
            return;
        }
        match self.store.remove_invitation(user, room).await {
            Ok(_) => {
                self.invitations().remove(&(user, room));
            }
            Err(e) => tracing::warn!(error = %e, room, user, "invitation not cleared on join"),
        }
    }

    /// The pending invitations this server knows, (user, room).
    pub(super) fn invitations(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashSet<(i64, i64)>> {
        self.invitations.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A room was deleted: forget its invitations and follows (a failure leaves rows no
    /// read returns, since reads join the rooms table).
    pub(super) async fn forget_room_social(&self, room: i64) {
        if let Err(e) = self.store.forget_room_social(room).await {
            tracing::warn!(error = %e, room, "invitations and follows of a deleted room kept");
        }
    }

    async fn follow_row(&self, user: i64, room: i64) -> Result<FollowRow, WireError> {
        self.store
            .follow_of(user, room)
            .await
            .map_err(storage)?
            .ok_or_else(|| {
                WireError::new(
                    ErrorCode::InvalidArgument,
                    format!("room {room} is not followed"),
                )
            })
    }

    /// The room's last committed sequence number if this server has it in memory, else 0.
    /// Peeks: a followed room is not loaded just to be counted.
    fn live_last_seq(&self, room: i64) -> i64 {
        match self.live_room(room) {
            Some(l) if l.is_loaded() => l.hot().last_committed,
            _ => 0,
        }
    }

    /// The room's last sequence number: in memory when loaded, and never below what the
    /// database holds (a commit may be stored before it is delivered).
    async fn last_seq(&self, room: i64) -> Result<i64, WireError> {
        let stored = self.store.stored_last_seq(room).await.map_err(storage)?;
        Ok(self.live_last_seq(room).max(stored))
    }

    fn followed_room(&self, name: String, f: &FollowRow) -> FollowedRoom {
        let last_seq = self.live_last_seq(f.room).max(f.stored_last_seq);
        FollowedRoom {
            room: f.room,
            name,
            last_seq,
            last_read_seq: f.last_read_seq,
            unread: (last_seq - f.last_read_seq).max(0),
        }
    }
}
