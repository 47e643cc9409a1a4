//! Keeping the chat servers of a pool in step: changes to rooms, categories and content
//! (made through any server, applied by all), and what each server learns from the others
//! — who of theirs is in which room, their users' presence — and what it tells a server
//! that connects (its whole roster and presence).
//!
//! A change is written to the shared database first; then every server, the one it was
//! made through included, reads the changed rows again ([`Hub::apply_change`]) and acts on
//! its own sessions (evicting, announcing, pushing). One path whether the change was made
//! here or elsewhere. Reads of changed rows run one at a time, so the directory always
//! ends with the newest copy; and a join refused by this server's copy asks the database
//! first (a grant made elsewhere may not have arrived yet).

use std::sync::Arc;

use super::enter::room_info;
use super::{rights, Hub, SessionKey};
use crate::protocol::pool::{Change, PoolFrame};
use crate::protocol::{PresenceState, Push};
use crate::telemetry::catalog;

impl Hub {
    /// A change was made through this server: apply it, then tell the other servers.
    pub(crate) async fn changed(self: &Arc<Self>, change: Change) {
        self.apply_change(&change).await;
        self.outbox.send(&PoolFrame::Changed(change));
    }

    /// Apply a change made through this server or another one of the pool.
    pub async fn apply_change(self: &Arc<Self>, change: &Change) {
        match change {
            Change::Category { id } => {
                let _one_at_a_time = self.refreshing.lock().await;
                match self.store.category_by_id(*id).await {
                    Ok(Some(c)) => {
                        self.dir_mut().categories.insert(c.id, c);
                    }
                    Ok(None) => {
                        self.dir_mut().categories.remove(id);
                    }
                    Err(e) => return refresh_failed("category", *id, e),
                }
                // A new ethical wall or a narrower allowed list removes people from rooms now.
                let rooms: Vec<i64> = self
                    .dir()
                    .rooms
                    .values()
                    .filter(|r| r.category == *id)
                    .map(|r| r.id)
                    .collect();
                for room in rooms {
                    self.evict_unauthorised(room, "removed");
                }
            }
            Change::Room { id } => {
                let disabled = match self.refresh_room(*id).await {
                    Ok(Some(disabled)) => disabled,
                    Ok(None) => return,
                    Err(e) => return refresh_failed("room", *id, e),
                };
                if disabled {
                    self.evict_all(*id, "disabled");
                } else {
                    self.evict_unauthorised(*id, "removed");
                    self.announce_room(*id);
                }
            }
            Change::RoomDeleted { id } => {
                self.evict_all(*id, "deleted");
                self.dir_mut().remove_room(*id);
                self.drop_room(*id);
            }
            Change::HistoryCleared { room, before_us } => {
                let Some(live) = self.live_room(*room) else {
                    return;
                };
                let mut hot = live.hot();
                hot.cache.retain(|m| m.posted_at_us >= *before_us);
                let push = Push::HistoryCleared {
                    room: *room,
                    before_us: *before_us,
                };
                self.push_to_room(&hot, &push, None);
            }
            Change::MessageChanged {
                room,
                seq,
                text,
                removed,
            } => {
                let Some(live) = self.live_room(*room) else {
                    return;
                };
                let mut hot = live.hot();
                for m in hot.cache.iter_mut().filter(|m| m.seq == *seq) {
                    m.text = text.clone();
                    m.removed = *removed;
                }
                let push = Push::MessageChanged {
                    room: *room,
                    seq: *seq,
                    text: text.clone(),
                    removed: *removed,
                };
                self.push_to_room(&hot, &push, None);
            }
            Change::Invited { user, room, json } => {
                self.invitations().insert((*user, *room));
                self.push_to_user(*user, json);
            }
        }
    }

    /// Read a room and its roles again from the database into the directory; whether it
    /// is disabled (`None`: it no longer exists).
    pub(super) async fn refresh_room(
        &self,
        id: i64,
    ) -> Result<Option<bool>, crate::store::StoreError> {
        // One read-and-replace at a time: a read started later is applied later, so an
        // older copy never overwrites a newer one.
        let _one_at_a_time = self.refreshing.lock().await;
        let found = self.store.room_by_id(id).await?;
        // A room made through another server may be in a category made there too, whose
        // change has not arrived yet: without it the room would read as not found.
        let category = match &found {
            Some((room, _)) if !self.dir().categories.contains_key(&room.category) => {
                self.store.category_by_id(room.category).await?
            }
            _ => None,
        };
        let mut dir = self.dir_mut();
        if let Some(c) = category {
            dir.categories.entry(c.id).or_insert(c);
        }
        dir.remove_room(id);
        let Some((room, roles)) = found else {
            return Ok(None);
        };
        let disabled = room.disabled;
        dir.put_room(room);
        for (user, role) in roles {
            dir.set_role(id, user, role, true);
        }
        Ok(Some(disabled))
    }

    /// Send one text to every signed-in client session of `user` on this server.
    fn push_to_user(&self, user: i64, json: &str) {
        // A scan of every session: such pushes (invitations) are rare, and the hub keeps
        // no index by user.
        let keys: Vec<_> = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, s)| s.user == user && s.signed_in && !s.service)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.send(key, json.to_string());
        }
    }

    /// Another chat server's users entered (`true`) or left rooms: the rooms' rosters
    /// (participants, and roster pushes in small rooms) count them.
    pub fn remote_roster(&self, entries: &[(i64, i64, bool)]) {
        for &(room, user, present) in entries {
            let live = self.room(room);
            let mut hot = live.hot();
            if hot.remote(user, present) {
                let size = hot.users.len() + usize::from(!present);
                if size <= self.config.participant_update_limit {
                    let push = Push::Roster {
                        room,
                        user,
                        present,
                    };
                    self.push_to_room(&hot, &push, None);
                }
            }
        }
    }

    /// Another chat server told its users' presence.
    pub fn remote_presence(&self, entries: &[(i64, PresenceState)]) {
        for &(user, state) in entries {
            let change = self.presence_book().remote(user, state);
            if let Some(seen) = change.seen {
                self.push_presence(user, seen);
            }
        }
    }

    /// Every (room, user) with a session of this server, as `Roster` entries: what a
    /// server that connects is told first.
    pub fn local_roster(&self) -> Vec<(i64, i64, bool)> {
        let rooms: Vec<_> = self
            .rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut out = Vec::new();
        for live in rooms {
            let hot = live.hot();
            out.extend(hot.local_users().map(|u| (live.id, u, true)));
        }
        out
    }

    /// The presence of every user signed in here.
    pub fn local_presence(&self) -> Vec<(i64, PresenceState)> {
        self.presence_book().local_states()
    }

    /// Bring every room with sessions here up to the database: what another server
    /// committed but never sent (it died, or the link between us dropped) is delivered
    /// now. Run when a link to another server goes down or comes up.
    pub async fn catch_up(self: &Arc<Self>) {
        let loaded: Vec<(i64, i64)> = self
            .rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(|live| {
                let hot = live.hot();
                (hot.loaded == super::room::Loaded::Yes && !hot.present.is_empty())
                    .then_some((live.id, hot.last_committed))
            })
            .collect();
        if loaded.is_empty() {
            return;
        }
        let ids: Vec<i64> = loaded.iter().map(|(id, _)| *id).collect();
        let tops = match self.store.last_seqs(&ids).await {
            Ok(tops) => tops,
            Err(e) => {
                tracing::warn!(error = %e, "cannot compare rooms with the database");
                return;
            }
        };
        for (room, delivered) in loaded {
            let Some(top) = tops.get(&room).copied() else {
                continue;
            };
            if top > delivered {
                metrics::counter!(catalog::CATCH_UPS.name).increment(1);
                if let Err(e) = self.fill_to(room, top + 1).await {
                    tracing::warn!(room, error = %e, "cannot catch up with the database");
                }
            }
        }
    }

    /// Push the room's new settings to every session in it.
    fn announce_room(&self, room: i64) {
        let live = self.room(room);
        let hot = live.hot();
        let dir = self.dir();
        let Some(r) = dir.rooms.get(&room) else {
            return;
        };
        for (key, user) in hot.present.iter() {
            let push = Push::RoomChanged(room_info(&dir, r, *user));
            self.send(*key, crate::protocol::reply::push_json(&push));
        }
    }

    /// Remove every session from a room, telling each why.
    pub(super) fn evict_all(&self, room: i64, reason: &str) {
        self.evict_where(room, reason, |_, _| true);
    }

    /// Remove the sessions whose users may no longer read the room.
    fn evict_unauthorised(&self, room: i64, reason: &str) {
        self.evict_where(room, reason, |hub, user| {
            let dir = hub.dir();
            match dir.users.get(&user) {
                Some(u) => rights::readable(&dir, u, room).is_err(),
                None => true,
            }
        });
    }

    fn evict_where(&self, room: i64, reason: &str, out: impl Fn(&Hub, i64) -> bool) {
        let live = self.room(room);
        let present: Vec<(SessionKey, i64)> =
            live.hot().present.iter().map(|(k, u)| (*k, *u)).collect();
        let push = crate::protocol::reply::push_json(&Push::RoomClosed {
            room,
            reason: reason.to_string(),
        });
        for (key, user) in present {
            if out(self, user) {
                let _ = self.session_rooms(key, room, false);
                self.leave_room(key, room);
                self.send(key, push.clone());
            }
        }
    }
}

fn refresh_failed(what: &str, id: i64, e: crate::store::StoreError) {
    tracing::error!(error = %e, what, id, "cannot read a changed {what}; this server keeps its old copy");
}
