//! A session moved here from another chat server of the pool (`Resume`, sent by a front
//! end when that server died, was drained or was cut off from the database): the client
//! keeps its WebSocket, and this server takes the session up where the other left it.
//!
//! The session is open and signed in as soon as the `Resume` frame is read, so nothing the
//! client sends next is refused; its requests are held until it is back in its rooms, then
//! handled in the order they came. Each room is entered with every message after the
//! number the front end last passed on pushed to it (`enter::Since::After`), so the client
//! sees no gap and no repeat.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::enter::Since;
use super::{Hub, SessionKey};
use crate::protocol::reply::push_json;
use crate::protocol::session::Frame;
use crate::protocol::Push;
use crate::telemetry::catalog;

impl Hub {
    /// Open a session moved from another chat server: signed in as `user`, in `rooms`
    /// (room, last number the front end passed on), watching `contacts`.
    pub fn resume(
        self: &Arc<Self>,
        key: SessionKey,
        user: i64,
        rooms: Vec<(i64, i64)>,
        contacts: Vec<i64>,
    ) {
        self.insert_session(key, user, false);
        if let Some(s) = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&key)
        {
            s.signed_in = true;
            s.held = Some(Box::default());
        }
        self.resuming.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(catalog::SESSIONS_RESUMED.name).increment(1);
        let hub = self.clone();
        tokio::spawn(async move {
            let n = rooms.len();
            hub.rejoin(key, user, rooms, contacts).await;
            tracing::debug!(?key, user, rooms = n, "session resumed");
            let held = hub
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&key)
                .and_then(|s| s.held.take());
            hub.resuming.fetch_sub(1, Ordering::Relaxed);
            for json in held.map(|h| *h).unwrap_or_default() {
                hub.handle(key, json);
            }
        });
    }

    async fn rejoin(
        self: &Arc<Self>,
        key: SessionKey,
        user: i64,
        rooms: Vec<(i64, i64)>,
        contacts: Vec<i64>,
    ) {
        let u = match self.learn_user_id(user).await {
            Ok(Some(u)) => u,
            Ok(None) => return self.end_session(key, "invalid_token"),
            Err(e) => {
                tracing::error!(error = %e, user, "storage failure resuming a session");
                return self.end_session(key, "unavailable");
            }
        };
        let change = self.presence_book().session_opened(u.id);
        self.presence_changed(u.id, change);
        if !contacts.is_empty() {
            self.presence_book().subscribe(key, &contacts);
        }
        for (room, after) in rooms {
            if let Err(e) = self.enter_room(key, &u, room, Since::After(after)).await {
                // No longer allowed in (or gone): the client is told, as on an eviction.
                let push = Push::RoomClosed {
                    room,
                    reason: e.code.as_str().to_string(),
                };
                self.send(key, push_json(&push));
                let left = Frame::Left {
                    session: key.session,
                    room,
                };
                self.send_frame(key.link, left);
            }
        }
    }

    /// Keep a request of a session that is being resumed; false when it is not (handle it).
    pub(super) fn hold_if_resuming(&self, key: SessionKey, json: &Bytes) -> bool {
        if self.resuming.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match sessions.get_mut(&key).and_then(|s| s.held.as_mut()) {
            Some(held) => {
                held.push(json.clone());
                true
            }
            None => false,
        }
    }

    /// End a session from here: the front end closes it with `reason`.
    fn end_session(&self, key: SessionKey, reason: &str) {
        let kick = Frame::Kick {
            session: key.session,
            reason: reason.to_string(),
        };
        self.send_frame(key.link, kick);
        self.close_session(key);
    }
}
