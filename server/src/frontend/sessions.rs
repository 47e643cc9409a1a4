//! The front end's session table: for each session, the chat server it is on, the rooms it
//! is in and its contacts; for each (chat server, room), the last message number passed on.
//! Frames from a chat server reach only the sessions that are on that server.
//!
//! Moving sessions (docs/POOL.md, "Failover"): when a chat server's link drops, or the
//! server asks for its sessions to be moved (`Status` with evacuate: drained, or cut off
//! from the database), each of its client sessions is opened on another chat server with
//! `Resume` — signed in, in the same rooms, with every message after the last one passed
//! on pushed to it — and the client keeps its WebSocket. From then on the session hears
//! only from its new server. One table lock covers the number snapshot and the switch, so
//! a message is passed on either by the old server or by the new one, never both, never
//! neither. A session that cannot be moved (no other server up) ends with `link_lost`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::FrontEnd;
use crate::protocol::session::Frame;
use crate::telemetry::catalog;

/// What the front end keeps per connected session.
struct SessionHandle {
    tx: mpsc::Sender<Utf8Bytes>,
    kick: Option<oneshot::Sender<String>>,
    /// Index of the link (chat server) the session is on.
    link: usize,
    user: i64,
    /// A client session (moved between servers); false: a web-service call.
    client: bool,
    /// Rooms the session is in (`Joined`/`Left`).
    rooms: Vec<i64>,
    /// Its contacts (`Watch`).
    contacts: Vec<i64>,
}

/// Sessions, and the last message number passed on per (link, room).
#[derive(Default)]
pub struct Table {
    sessions: HashMap<u64, SessionHandle>,
    last_seq: HashMap<(usize, i64), i64>,
}

/// A session registered with the front end: its id, the link it was routed to, its
/// queue of frames from the chat server and the signal that ends it.
pub struct Registered {
    /// Session id (unique in this front end).
    pub id: u64,
    /// The link's sender (the session's first server).
    pub uplink: mpsc::Sender<Frame>,
    /// Frames for this session.
    pub rx: mpsc::Receiver<Utf8Bytes>,
    /// Fires with a reason when the session is ended from elsewhere.
    pub kick: oneshot::Receiver<String>,
}

impl FrontEnd {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a session for `user` on the chat server the user is routed to; `None`
    /// when no chat server is linked. `queue` bounds the frames waiting for it; `client`:
    /// a client's session, moved when its server goes (a client session registers with
    /// `false` and becomes one with [`FrontEnd::opened`]).
    pub fn register(&self, user: i64, queue: usize, client: bool) -> Option<Registered> {
        let (link, uplink) = self.route(user, None)?;
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(queue);
        let (kick_tx, kick) = oneshot::channel();
        let handle = SessionHandle {
            tx,
            kick: Some(kick_tx),
            link,
            user,
            client,
            rooms: Vec::new(),
            contacts: Vec::new(),
        };
        self.table().sessions.insert(id, handle);
        metrics::gauge!(catalog::FRONTEND_SESSIONS.name).increment(1.0);
        Some(Registered {
            id,
            uplink,
            rx,
            kick,
        })
    }

    /// The session is open on its chat server: from now on it moves when that server
    /// goes (a session moved before its `Open` was sent would be opened twice).
    pub fn opened(&self, id: u64) {
        if let Some(s) = self.table().sessions.get_mut(&id) {
            s.client = true;
        }
    }

    /// Forget a session (its task is ending).
    pub fn unregister(&self, id: u64) {
        if self.table().sessions.remove(&id).is_some() {
            metrics::gauge!(catalog::FRONTEND_SESSIONS.name).decrement(1.0);
        }
    }

    /// The sender of the link the session is on now (`None`: gone, or its link is down).
    pub fn uplink_of(&self, id: u64) -> Option<mpsc::Sender<Frame>> {
        let link = self.table().sessions.get(&id)?.link;
        self.link(link)
    }

    /// Route a text frame from the chat server on `link` to sessions' queues; a chat
    /// message (`seq` = (room, number)) also moves the link's number for the room.
    pub(super) fn deliver(
        &self,
        link: usize,
        seq: Option<(i64, i64)>,
        sessions: &[u64],
        json: Bytes,
    ) {
        let Ok(text) = Utf8Bytes::try_from(json) else {
            tracing::warn!("chat server sent text that is not UTF-8; dropped");
            return;
        };
        let mut slow = Vec::new();
        {
            let mut table = self.table();
            if let Some((room, n)) = seq {
                let last = table.last_seq.entry((link, room)).or_insert(n);
                *last = (*last).max(n);
            }
            for id in sessions {
                match table.sessions.get(id) {
                    Some(s) if s.link == link => {
                        if let Err(mpsc::error::TrySendError::Full(_)) = s.tx.try_send(text.clone())
                        {
                            slow.push(*id);
                        }
                    }
                    _ => {}
                }
            }
        }
        metrics::counter!(catalog::FRONTEND_FORWARDED.name).increment(sessions.len() as u64);
        for id in slow {
            metrics::counter!(catalog::SLOW_CONSUMERS.name).increment(1);
            self.kick(id, "slow_consumer");
        }
    }

    /// Track what a chat server said about a session: it joined or left a room, or set
    /// its contacts.
    pub(super) fn track(&self, link: usize, frame: Frame) {
        let mut table = self.table();
        let Table { sessions, last_seq } = &mut *table;
        match frame {
            Frame::Joined {
                session,
                room,
                last_seq: n,
            } => {
                let last = last_seq.entry((link, room)).or_insert(n);
                *last = (*last).max(n);
                if let Some(s) = sessions.get_mut(&session).filter(|s| s.link == link) {
                    if !s.rooms.contains(&room) {
                        s.rooms.push(room);
                    }
                }
            }
            Frame::Left { session, room } => {
                if let Some(s) = sessions.get_mut(&session).filter(|s| s.link == link) {
                    s.rooms.retain(|r| *r != room);
                }
            }
            Frame::Watch { session, users } => {
                if let Some(s) = sessions.get_mut(&session).filter(|s| s.link == link) {
                    s.contacts = users;
                }
            }
            _ => {}
        }
    }

    /// End a session with a reason (its task sends `bye`, closes, and tells the chat
    /// server).
    pub(super) fn kick(&self, id: u64, reason: &str) {
        let kick = self
            .table()
            .sessions
            .get_mut(&id)
            .and_then(|s| s.kick.take());
        if let Some(k) = kick {
            let _ = k.send(reason.to_string());
        }
    }

    /// The chat server on `link` ended a session (ignored once the session is on another
    /// server).
    pub(super) fn kick_from(&self, link: usize, id: u64, reason: &str) {
        let on_link = self
            .table()
            .sessions
            .get(&id)
            .is_some_and(|s| s.link == link);
        if on_link {
            self.kick(id, reason);
        }
    }

    /// The process is stopping: every session ends with reason `shutdown`.
    pub fn link_lost_shutdown(&self) {
        let ids: Vec<u64> = self.table().sessions.keys().copied().collect();
        for id in ids {
            self.kick(id, "shutdown");
        }
    }

    /// Sessions connected now (client sessions and web-service calls in progress).
    pub fn session_count(&self) -> usize {
        self.table().sessions.len()
    }

    /// Move the client sessions on link `from` to other chat servers (see the module doc).
    /// `alive`: the old server is still linked (it is told to close them); when it is
    /// not, sessions that cannot be moved end with `link_lost`, as do web-service calls.
    pub(super) fn move_sessions(&self, from: usize, alive: bool) {
        let old = if alive { self.link(from) } else { None };
        let mut ended = Vec::new();
        let mut moved = 0u64;
        {
            let mut table = self.table();
            let Table { sessions, last_seq } = &mut *table;
            for (id, s) in sessions.iter_mut().filter(|(_, s)| s.link == from) {
                let target = if s.client {
                    self.route(s.user, Some(from))
                } else {
                    None
                };
                let Some((to, tx)) = target else {
                    if !alive {
                        ended.push(*id);
                    }
                    continue;
                };
                let rooms = s
                    .rooms
                    .iter()
                    .map(|r| (*r, last_seq.get(&(from, *r)).copied().unwrap_or(0)))
                    .collect();
                let resume = Frame::Resume {
                    session: *id,
                    user: s.user,
                    rooms,
                    contacts: s.contacts.clone(),
                };
                // Queued under the table lock: the session's next request, routed by the
                // table, goes after it.
                if tx.try_send(resume).is_err() {
                    ended.push(*id);
                    continue;
                }
                s.link = to;
                moved += 1;
                if let Some(old) = &old {
                    let _ = old.try_send(Frame::Close { session: *id });
                }
            }
        }
        if moved > 0 {
            tracing::info!(from, moved, "sessions moved to other chat servers");
            metrics::counter!(catalog::FRONTEND_SESSIONS_MOVED.name).increment(moved);
        }
        for id in ended {
            self.kick(id, "link_lost");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FrontConfig;

    /// What one delivery costs the front end: a message for a thousand sessions is queued
    /// to each of them as the same buffer — no per-session copy or re-encoding (each queue
    /// holds a reference to the one buffer the chat server's frame arrived in).
    #[test]
    fn a_fanout_reaches_every_session_as_one_shared_buffer() {
        let fe = FrontEnd::new("t".into(), FrontConfig::default(), 1);
        let (link_tx, _link_rx) = mpsc::channel(8);
        fe.set_link(0, Some(link_tx));
        fe.set_status(0, true, false);
        let mut sessions: Vec<Registered> = (0..1000)
            .map(|user| fe.register(user, 4, true).expect("a chat server takes it"))
            .collect();
        let ids: Vec<u64> = sessions.iter().map(|s| s.id).collect();
        let json = Bytes::from_static(br#"{"type":"chat","room":7,"seq":1,"text":"hello"}"#);
        let buffer = json.as_ptr();
        fe.deliver(0, Some((7, 1)), &ids, json);
        for s in &mut sessions {
            let queued = s.rx.try_recv().expect("each session got the message");
            assert_eq!(queued.as_str().as_ptr(), buffer, "a session got a copy");
            assert!(s.rx.try_recv().is_err(), "and only once");
        }
        assert_eq!(fe.table().last_seq.get(&(0, 7)), Some(&1));
    }
}
