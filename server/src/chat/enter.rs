//! Entering and leaving rooms: a join's history (or a moved session's catch-up), the
//! presence and roster bookkeeping of who is in a room, and a room as one user sees it.

use std::sync::Arc;

use super::room::{Hot, Moved, RoomLive};
use super::{internal, rights, Hub, SessionKey};
use crate::compliance::event::{viewed_range, EventKind};
use crate::model::User;
use crate::protocol::pool::PoolFrame;
use crate::protocol::reply::{push_json, Joined};
use crate::protocol::session::Frame;
use crate::protocol::{ErrorCode, Push, RoomInfo, WireError};

/// Most messages pushed to a session moved from another chat server, per room (what it
/// missed while the move took place: normally none or a few).
const MAX_CATCH_UP: u32 = 10_000;

/// What a session entering a room gets of what was said before.
#[derive(Debug, Clone, Copy)]
pub(super) enum Since {
    /// The room's last `n` messages, as history in the reply.
    History(u32),
    /// Every message after this number, pushed.
    After(i64),
}

/// A room's info as seen by `user`.
pub fn room_info(dir: &crate::model::Directory, r: &crate::model::Room, user: i64) -> RoomInfo {
    RoomInfo {
        id: r.id,
        name: r.name.clone(),
        description: r.description.clone(),
        category: r.category,
        kind: r.kind,
        privacy: r.privacy,
        disabled: r.disabled,
        addin_url: r.addin_url.clone(),
        invitations: r.invitations,
        roles: dir.roles_of(r.id, user).names(),
    }
}

impl Hub {
    /// Load a room's recent history and numbering, once; then deliver what was committed
    /// while it loaded.
    pub(super) async fn loaded_room(self: &Arc<Self>, id: i64) -> Result<Arc<RoomLive>, WireError> {
        let live = self.room(id);
        let cap = self.config.history as usize;
        let window = self.config.dedupe_window;
        let fetch = cap.max(window) as u32;
        let store = self.store.clone();
        live.ensure_loaded(
            cap,
            window,
            || async move { store.room_tail(id, fetch).await },
        )
        .await
        .map_err(internal)?;
        let mut hot = live.hot();
        if !hot.pending.is_empty() {
            self.drain(&live, &mut hot);
        }
        drop(hot);
        Ok(live)
    }

    /// Put a session into a room: its history (`Since::History`) in the reply, or every
    /// message after a number pushed to it (`Since::After`, a session moved from another
    /// chat server). Tells the front end (`Joined`) so that it can move the session later.
    pub(super) async fn enter_room(
        self: &Arc<Self>,
        key: SessionKey,
        user: &User,
        room: i64,
        since: Since,
    ) -> Result<Joined, WireError> {
        if rights::readable(&self.dir(), user, room).is_err() {
            // A grant made through another chat server of the pool may not have reached
            // this one yet: the database decides before the join is refused.
            if let Err(e) = self.refresh_room(room).await {
                tracing::warn!(room, error = %e, "cannot read a room again");
            }
            rights::readable(&self.dir(), user, room)?;
        }
        let live = self.loaded_room(room).await?;
        if let Since::After(after) = since {
            // The session's old server may have passed on messages this one has not
            // delivered yet: bring the room up to them first, so that none of them is
            // pushed to the session a second time.
            if live.hot().last_committed < after {
                self.fill_to(room, after + 1).await.map_err(internal)?;
            }
        }
        // What the cache does not hold comes from the database, read before taking the
        // lock; the cache then supplies anything committed meanwhile.
        let older = {
            let hot = live.hot();
            let first_cached = hot.cache.front().map(|m| m.seq);
            match since {
                Since::History(n) => {
                    n as usize > hot.cache.len() && first_cached.is_some_and(|s| s > 1)
                }
                Since::After(after) => {
                    after < hot.last_committed && first_cached.is_none_or(|s| s > after + 1)
                }
            }
        };
        let mut messages = match (older, since) {
            (false, _) => Ok(Vec::new()),
            (true, Since::History(n)) => self.store.recent_messages(room, n).await,
            (true, Since::After(after)) => {
                self.store.messages_after(room, after, MAX_CATCH_UP).await
            }
        }
        .map_err(internal)?;
        let dir = self.dir();
        // Rights may have changed while we waited.
        let r = rights::readable(&dir, user, room)?;
        let info = room_info(&dir, r, user.id);
        let mut hot = live.hot();
        // The database may hold messages committed but not yet delivered: those come as
        // pushes after this join, so the history stops at the last delivered one.
        messages.retain(|m| m.seq <= hot.last_committed);
        let have = messages.last().map(|m| m.seq).unwrap_or(0);
        messages.extend(hot.cache.iter().filter(|m| m.seq > have).cloned());
        match since {
            Since::History(n) => {
                let skip = messages.len().saturating_sub(n as usize);
                messages.drain(..skip);
            }
            Since::After(after) => {
                messages.retain(|m| m.seq > after);
                tracing::debug!(
                    ?key,
                    room,
                    after,
                    last = hot.last_committed,
                    pushed = messages.len(),
                    "catching a moved session up"
                );
                for m in messages.drain(..) {
                    let frame = Frame::Chat {
                        room,
                        seq: m.seq,
                        sessions: vec![key.session],
                        json: push_json(&Push::Chat(m)).into(),
                    };
                    self.send_frame(key.link, frame);
                }
            }
        }
        let last_seq = hot.last_committed;
        if let Some(moved) = hot.enter(key, user.id) {
            // Under the room lock: a PART of this session cannot be recorded before it.
            self.comply(EventKind::Join, room, user.id, "", None);
            self.roster_moved(&hot, room, moved, true, Some(key));
        }
        let joined = Frame::Joined {
            session: key.session,
            room,
            last_seq,
        };
        self.send_frame(key.link, joined);
        drop(hot);
        drop(dir);
        if !self.session_rooms(key, room, true) {
            // The session closed while this join ran: it walked its rooms without this
            // one, so leave it here (no ghost participant, a PART for the JOIN).
            self.leave_room(key, room);
            return Err(WireError::new(ErrorCode::NotSignedIn, "the session ended"));
        }
        if let (Some(a), Some(b)) = (messages.first(), messages.last()) {
            let viewed = viewed_range(a.seq, b.seq);
            self.comply(EventKind::Backchat, room, user.id, &viewed, None);
        }
        Ok(Joined {
            room: info,
            messages,
            last_seq,
        })
    }

    pub(super) fn part(&self, key: SessionKey, room: i64) -> Result<(), WireError> {
        if !self.session_in(key, room) {
            return Err(WireError::new(
                ErrorCode::NotJoined,
                format!("not in room {room}"),
            ));
        }
        let _ = self.session_rooms(key, room, false);
        self.leave_room(key, room);
        Ok(())
    }

    /// Take a session out of a room's presence (part, disconnect, removal).
    pub(super) fn leave_room(&self, key: SessionKey, room: i64) {
        let live = self.room(room);
        let mut hot = live.hot();
        if let Some(&user) = hot.present.get(&key) {
            self.comply(EventKind::Part, room, user, "", None);
        }
        if let Some(moved) = hot.leave(key) {
            self.roster_moved(&hot, room, moved, false, None);
            let left = Frame::Left {
                session: key.session,
                room,
            };
            self.send_frame(key.link, left);
        }
    }

    /// Tell who needs to know that a user came into (`present`) or left a room: the other
    /// chat servers, when it is this server's first or last session of the user there;
    /// the room's sessions here, when the roster changed and the room has at most
    /// ParticipantUpdateLimit participants (counting the user).
    pub(super) fn roster_moved(
        &self,
        hot: &Hot,
        room: i64,
        moved: Moved,
        present: bool,
        except: Option<SessionKey>,
    ) {
        if moved.here {
            let entry = (room, moved.user, present);
            self.outbox.send(&PoolFrame::Roster(vec![entry]));
        }
        let size = hot.users.len() + usize::from(!present);
        if moved.anywhere && size <= self.config.participant_update_limit {
            let push = Push::Roster {
                room,
                user: moved.user,
                present,
            };
            self.push_to_room(hot, &push, except);
        }
    }
}
