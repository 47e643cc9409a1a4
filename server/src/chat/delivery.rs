//! After the commit: deliver each committed message to the sessions of this server that
//! are in its room, in sequence order, then acknowledge it to its poster and add it to the
//! room's recent-history cache.
//!
//! Messages reach a room's live state from two places: this server's group committer,
//! and (in a pool) the other chat servers, which send every message they commit. Numbers
//! come from the database, so a message may arrive before an earlier one committed
//! elsewhere: it waits in the room's `pending` map until the gap is filled — by the other
//! server's message, normally within a millisecond, or else from the database after
//! [`GAP_WAIT`] (its server may have died between its commit and sending it). A poster's
//! acknowledgement is sent when its message is delivered here, so every message before it
//! reaches the poster first.
//!
//! The message is serialised once and crosses each front-end link once (one `Chat` frame
//! listing that link's sessions, with the room and number so that the front end knows
//! where each session is), however many members the room has.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

use super::room::{Hot, Loaded, Pending, RoomLive};
use super::{Hub, PostTag};
use crate::compliance::event::EventKind;
use crate::protocol::pool::PoolFrame;
use crate::protocol::reply::{push_json, reply_json, Ack};
use crate::protocol::session::Frame;
use crate::protocol::{ErrorCode, Push, WireError};
use crate::store::commit::{CommitSink, Entry, Outcome};
use crate::store::StoreError;
use crate::telemetry::catalog;

/// How long a gap in a room's numbers may stay open before it is filled from the database.
pub const GAP_WAIT: Duration = Duration::from_millis(100);

/// Most messages read from the database to fill one gap.
const GAP_READ: u32 = 500;

/// The hub's side of the group committer. Holds the hub weakly: the committer task must
/// not keep a stopped server alive.
pub struct Sink(pub Weak<Hub>);

impl CommitSink for Sink {
    type Tag = PostTag;

    fn committed(&self, batch: Vec<(Entry<PostTag>, Outcome)>) {
        let Some(hub) = self.0.upgrade() else { return };
        for (e, outcome) in batch {
            if outcome != Outcome::Stored {
                hub.posted(&e.msg);
            }
            match outcome {
                Outcome::Stored => {
                    // Recorded for every post, also where the category keeps no history.
                    let m = &e.msg;
                    hub.comply(EventKind::Chat, m.room, m.author, &m.text, Some(m.seq));
                    metrics::counter!(catalog::POSTS_ACKED.name).increment(1);
                    if hub.outbox.any() {
                        hub.outbox.send(&PoolFrame::Posted {
                            persist: e.persist,
                            msg: e.msg.clone(),
                        });
                    }
                    hub.offer(Pending {
                        msg: e.msg,
                        persist: e.persist,
                        tag: Some(e.tag),
                    });
                }
                Outcome::Duplicate { seq, posted_at_us } => {
                    metrics::counter!(catalog::POSTS_ACKED.name).increment(1);
                    e.tag.acked(&hub, e.msg.room, seq, posted_at_us, true);
                }
                Outcome::NoRoom => {
                    let err = WireError::new(
                        ErrorCode::RoomNotFound,
                        format!("room {} was deleted; the post was not stored", e.msg.room),
                    );
                    e.tag.refused(&hub, err);
                }
                Outcome::Failed => {
                    // The database refused the batch for GIVE_UP_AFTER (down, cut off):
                    // the client may retry, as with any `busy`.
                    let err = WireError::new(
                        ErrorCode::Busy,
                        "storage unavailable; retry with the same client_msg_id \
                         (a post stored meanwhile is acknowledged once)",
                    );
                    e.tag.refused(&hub, err);
                }
            }
        }
    }
}

impl PostTag {
    /// The posting session (it does not get its own message as a push).
    fn session(&self) -> Option<super::SessionKey> {
        match self {
            PostTag::Client { key, .. } => Some(*key),
            PostTag::Internal(_) => None,
        }
    }

    /// The post is committed as `seq` (a retry: the original's number and time).
    pub(super) fn acked(self, hub: &Hub, room: i64, seq: i64, posted_at_us: i64, duplicate: bool) {
        match self {
            PostTag::Client { key, request } => {
                let ack = Ack {
                    room,
                    seq,
                    posted_at_us,
                    duplicate,
                };
                // As a `Chat` frame: the front end learns that the poster has message
                // `seq` of the room (a poster gets no push of its own post), so a move of
                // the session never pushes it again.
                let frame = Frame::Chat {
                    room,
                    seq,
                    sessions: vec![key.session],
                    json: reply_json(request, &ack).into(),
                };
                hub.send_frame(key.link, frame);
            }
            PostTag::Internal(done) => {
                let _ = done.send(Ok(seq));
            }
        }
    }

    /// The post was not stored.
    fn refused(self, hub: &Hub, err: WireError) {
        match self {
            PostTag::Client { key, request } => hub.send_error(key, Some(request), &err),
            PostTag::Internal(done) => {
                let _ = done.send(Err(err));
            }
        }
    }
}

impl Hub {
    /// A committed message, from this server's committer or another chat server's: deliver
    /// it in its room's order (see the module doc).
    pub(crate) fn offer(self: &Arc<Self>, p: Pending) {
        let live = self.live_room(p.msg.room);
        let Some(live) = live else {
            return self.settle_undelivered(p);
        };
        let mut hot = live.hot();
        match hot.loaded {
            // No session of this server is in the room: nothing to deliver, nothing cached.
            Loaded::No => {
                drop(hot);
                self.settle_undelivered(p)
            }
            Loaded::Loading => {
                hot.pending.insert(p.msg.seq, p);
            }
            Loaded::Yes => {
                hot.pending.insert(p.msg.seq, p);
                self.drain(&live, &mut hot);
            }
        }
    }

    /// Deliver what is pending in order; start filling a gap from the database when one
    /// is left.
    pub(super) fn drain(self: &Arc<Self>, live: &RoomLive, hot: &mut Hot) {
        while let Some(entry) = hot.pending.first_entry() {
            let seq = *entry.key();
            if seq > hot.last_committed + 1 {
                break;
            }
            let p = entry.remove();
            if seq <= hot.last_committed {
                // Read from the database at load time, or delivered already.
                if p.tag.is_some() {
                    hot.posting
                        .remove(&(p.msg.author, p.msg.client_msg_id.clone()));
                }
                self.settle_undelivered(p);
            } else {
                self.deliver_locked(hot, p);
            }
        }
        if !hot.pending.is_empty() && !hot.filling {
            hot.filling = true;
            tokio::spawn(fill_gap(self.clone(), live.id));
        }
    }

    /// Acknowledge a message that is not delivered here (nobody of this server is in its
    /// room, or it was delivered already).
    fn settle_undelivered(&self, p: Pending) {
        if let Some(tag) = p.tag {
            tag.acked(self, p.msg.room, p.msg.seq, p.msg.posted_at_us, false);
        }
    }

    /// A post of this server's is through its commit: no longer waiting.
    fn posted(&self, msg: &crate::protocol::Message) {
        if let Some(live) = self.live_room(msg.room) {
            let key = (msg.author, msg.client_msg_id.clone());
            live.hot().posting.remove(&key);
        }
    }

    /// Push one message to the room's sessions here (but its poster), acknowledge it, and
    /// add it to the cache. Under the room lock, in sequence order.
    fn deliver_locked(&self, hot: &mut Hot, p: Pending) {
        let Pending { msg, persist, tag } = p;
        let posting = (msg.author, msg.client_msg_id.clone());
        let except = match &tag {
            Some(t) => {
                hot.posting.remove(&posting);
                t.session()
            }
            None => hot.posting.get(&posting).copied(),
        };
        let links = hot.by_link(except);
        // Serialised only when someone else is there to receive it.
        let json = if links.is_empty() {
            Bytes::new()
        } else {
            Bytes::from(push_json(&Push::Chat(msg.clone())))
        };
        for (link, mut sessions) in links {
            if self.drop_this_delivery() {
                sessions.pop();
            }
            if !sessions.is_empty() {
                let frame = Frame::Chat {
                    room: msg.room,
                    seq: msg.seq,
                    sessions,
                    json: json.clone(),
                };
                self.send_frame(link, frame);
            }
        }
        let receivers =
            hot.present.len() - usize::from(except.is_some_and(|k| hot.present.contains_key(&k)));
        metrics::counter!(catalog::DELIVERIES.name).increment(receivers as u64);
        hot.remember(
            msg.author,
            &msg.client_msg_id,
            msg.seq,
            msg.posted_at_us,
            self.config.dedupe_window,
        );
        if let Some(tag) = tag {
            tag.acked(self, msg.room, msg.seq, msg.posted_at_us, false);
        }
        // A category without history keeps nothing, in memory either.
        let cap = if persist {
            self.config.history as usize
        } else {
            0
        };
        hot.cache_push(msg, cap);
    }
}

/// Wait [`GAP_WAIT`] for the missing messages of `room` to arrive; then read them from
/// the database ([`Hub::fill_to`]). A room never stalls on a gap.
async fn fill_gap(hub: Arc<Hub>, room: i64) {
    loop {
        tokio::time::sleep(GAP_WAIT).await;
        let Some(live) = hub.live_room(room) else {
            return;
        };
        let until = {
            let mut hot = live.hot();
            match hot.pending.first_key_value() {
                Some((first, _)) if *first > hot.last_committed + 1 => *first,
                _ => {
                    hot.filling = false;
                    return;
                }
            }
        };
        metrics::counter!(catalog::GAPS_FILLED.name).increment(1);
        match hub.fill_to(room, until).await {
            Ok(()) => {
                let mut hot = live.hot();
                hot.filling = false;
                // Another gap further up starts its own wait.
                hub.drain(&live, &mut hot);
                return;
            }
            Err(e) => {
                tracing::warn!(room, error = %e, "cannot read a gap's messages; trying again")
            }
        }
    }
}

impl Hub {
    /// Deliver every message of `room` numbered below `until` that has not been delivered
    /// here, reading from the database what has not arrived. Numbers the database does
    /// not hold were never stored (a category without history) and are skipped.
    pub(super) async fn fill_to(self: &Arc<Self>, room: i64, until: i64) -> Result<(), StoreError> {
        let Some(live) = self.live_room(room) else {
            return Ok(());
        };
        loop {
            let after = live.hot().last_committed;
            if until <= after + 1 {
                return Ok(());
            }
            let limit = GAP_READ.min((until - after - 1) as u32);
            let found = self.store.messages_after(room, after, limit).await?;
            let complete = found.len() < limit as usize;
            let mut hot = live.hot();
            for msg in found.into_iter().filter(|m| m.seq < until) {
                hot.pending.entry(msg.seq).or_insert(Pending {
                    msg,
                    persist: true,
                    tag: None,
                });
            }
            self.drain(&live, &mut hot);
            if complete && hot.last_committed < until - 1 {
                let (from, to) = (hot.last_committed + 1, until - 1);
                tracing::debug!(room, from, to, "numbers never stored; skipped");
                hot.last_committed = until - 1;
                self.drain(&live, &mut hot);
            }
        }
    }
}
