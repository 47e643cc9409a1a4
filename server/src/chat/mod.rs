//! The chat core: sessions, rooms, rights, posting, history, search and fan-out.
//!
//! # Layout
//! - [`Hub`] (this file): the shared state (directory, live rooms, sessions, links) and
//!   the entry points the session links call: open/close a session, handle a request.
//! - [`room`]: one room's live state (numbering, recent-history cache, who is present).
//! - [`rights`]: who may do what, as pure functions.
//! - [`ops`]: the chat operations (join, post, history, search, …).
//! - [`enter`]: entering and leaving rooms (history or catch-up, presence, rosters).
//! - [`admin`]: room, category and role management, administrators' operations.
//! - [`directory_ops`]: read-only directory queries for room management (categories,
//!   a room's member lists, users by name).
//! - [`delivery`]: acknowledging committed posts and fanning them out.
//! - [`presence`]: presence states and who watches whom; `presence_ops`: the hub's side
//!   (sending what a change means, `set_presence` and `subscribe`).
//! - [`link`]: the session-protocol listener (port 5041) that feeds the hub.
//! - [`outbox`]: what this server tells the other chat servers of its pool.
//! - [`peers`]: keeping the pool's chat servers in step (changes, rosters, presence).
//! - [`social`]: invitations and followed rooms (unread counts).
//! - [`files`]: files posted to rooms: rights, metadata, the announcing message.
//! - [`status`]: `/metrics` and `/healthz` when the chat server runs on its own.
//! - `signin`: signing a session in, and learning users created after the start.
//! - `resume`: a session moved here from another chat server of the pool.
//!
//! The hub never speaks SQL (that is `store`) and never touches WebSockets (that is the
//! front end): it sees sessions only as (link, session) keys and JSON bytes.

pub mod admin;
mod comply;
pub mod delivery;
pub mod directory_ops;
pub mod enter;
pub mod files;
pub mod link;
pub mod ops;
pub mod outbox;
pub mod peers;
pub mod presence;
mod presence_ops;
mod resume;
pub mod rights;
pub mod room;
mod signin;
pub mod social;
pub mod status;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::ChatConfig;
use crate::model::{Directory, User};
use crate::protocol::reply::{error_json, push_json};
use crate::protocol::session::Frame;
use crate::protocol::{ErrorCode, Op, Push, Request, WireError};
use crate::store::commit::Committer;
use crate::store::Store;
use crate::telemetry::catalog;
use room::RoomLive;

/// A user session: which link it arrived on and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// The link (front-end connection) id.
    pub link: u32,
    /// The session id on that link.
    pub session: u64,
}

/// What the hub keeps per session: kept small, since a server holds 20,000 of them.
#[derive(Debug)]
struct Session {
    user: i64,
    signed_in: bool,
    /// A web-service call's session: signed in from the start, invisible to presence.
    service: bool,
    rooms: Vec<i64>,
    /// Requests that came while the session was being resumed (`resume`), in order.
    /// Boxed: 8 bytes on every idle session instead of 24, for a state that is rare.
    #[allow(clippy::box_collection)]
    held: Option<Box<Vec<Bytes>>>,
}

/// A link's outgoing queue and the token that closes it.
struct LinkHandle {
    tx: mpsc::Sender<Frame>,
    closed: CancellationToken,
}

/// The tag a queued post carries: whom to tell what became of it.
#[derive(Debug)]
pub enum PostTag {
    /// A client's post: acknowledge request `request` of session `key` (or refuse it).
    Client {
        /// The posting session.
        key: SessionKey,
        /// The request id to acknowledge.
        request: u64,
    },
    /// A post the server makes itself (a file's announcement): its number, or why not.
    Internal(tokio::sync::oneshot::Sender<Result<i64, WireError>>),
}

/// The shared state of one chat server. Cloning the `Arc<Hub>` is how tasks share it.
pub struct Hub {
    /// Chat settings.
    pub config: ChatConfig,
    /// Content database.
    pub store: Store,
    dir: RwLock<Directory>,
    rooms: RwLock<HashMap<i64, Arc<RoomLive>>>,
    sessions: Mutex<HashMap<SessionKey, Session>>,
    links: RwLock<HashMap<u32, LinkHandle>>,
    presence: Mutex<presence::PresenceBook>,
    next_link: AtomicU32,
    committer: std::sync::OnceLock<Committer<PostTag>>,
    /// Pending invitations, (user, room) (`social`).
    invitations: Mutex<std::collections::HashSet<(i64, i64)>>,
    /// Held while changed rows are read again into the directory (`peers`).
    refreshing: tokio::sync::Mutex<()>,
    /// Queues toward the other chat servers of the pool (none on a single box).
    pub outbox: outbox::Outbox,
    /// Compliance recording, when on (set once by `compliance::start`).
    pub(crate) compliance: std::sync::OnceLock<crate::compliance::recorder::Recorder>,
    /// Sessions being resumed now (their requests are held).
    resuming: AtomicUsize,
    /// Whether this server takes new sessions, and whether it wants its sessions moved
    /// (told to every front end in `Status`).
    serving: Mutex<(bool, bool)>,
    /// Requests being handled by spawned tasks (for "busy" refusals).
    in_flight: AtomicUsize,
    /// Test hook: drop every Nth delivery on purpose (0 = never). Off by default.
    drop_every: AtomicUsize,
    dropped_counter: AtomicUsize,
}

/// A storage failure, logged, as the protocol reports it to the client.
pub(super) fn internal(e: impl std::fmt::Display) -> WireError {
    tracing::error!(error = %e, "storage failure");
    WireError::new(
        ErrorCode::Internal,
        "storage unavailable; nothing was changed",
    )
}

impl Hub {
    /// Load the directory from `store` and start the group committer. `shared`: other
    /// chat servers of a pool commit to the same database.
    pub async fn start(
        config: ChatConfig,
        store: Store,
        shared: bool,
    ) -> Result<Arc<Hub>, crate::store::StoreError> {
        let dir = store.load_directory().await?;
        let invitations = store.pending_invitations().await?;
        tracing::info!(
            users = dir.users.len(),
            rooms = dir.rooms.len(),
            "directory loaded"
        );
        let hub = Arc::new(Hub {
            drop_every: AtomicUsize::new(config.test_drop_every),
            config,
            store: store.clone(),
            dir: RwLock::new(dir),
            rooms: RwLock::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            links: RwLock::new(HashMap::new()),
            presence: Mutex::new(presence::PresenceBook::default()),
            next_link: AtomicU32::new(1),
            committer: std::sync::OnceLock::new(),
            outbox: outbox::Outbox::default(),
            refreshing: tokio::sync::Mutex::new(()),
            invitations: Mutex::new(invitations.into_iter().collect()),
            compliance: std::sync::OnceLock::new(),
            in_flight: AtomicUsize::new(0),
            resuming: AtomicUsize::new(0),
            serving: Mutex::new((true, false)),
            dropped_counter: AtomicUsize::new(0),
        });
        let sink = Arc::new(delivery::Sink(Arc::downgrade(&hub)));
        let committer = Committer::start(store, sink, shared);
        let _ = hub.committer.set(committer);
        // A server takes new sessions from the start (`set_serving` reports changes).
        metrics::gauge!(catalog::ACCEPTING.name).set(1.0);
        Ok(hub)
    }

    /// Read access to the directory.
    pub fn dir(&self) -> RwLockReadGuard<'_, Directory> {
        self.dir.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Write access to the directory.
    pub fn dir_mut(&self) -> RwLockWriteGuard<'_, Directory> {
        self.dir.write().unwrap_or_else(|p| p.into_inner())
    }

    fn committer(&self) -> &Committer<PostTag> {
        // Set in `start` before the hub is shared.
        self.committer.get().expect("committer started")
    }

    /// Wait until every queued post is committed and delivered.
    pub async fn flush(&self) {
        self.committer().flush().await;
    }

    /// The live state of a room (created empty on first use; loaded by `ops`).
    pub fn room(&self, id: i64) -> Arc<RoomLive> {
        if let Some(r) = self.live_room(id) {
            return r;
        }
        let mut rooms = self.rooms.write().unwrap_or_else(|p| p.into_inner());
        rooms
            .entry(id)
            .or_insert_with(|| Arc::new(RoomLive::new(id)))
            .clone()
    }

    /// The live state of a room, if this server has one (never creates it).
    pub fn live_room(&self, id: i64) -> Option<Arc<RoomLive>> {
        self.rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// Forget a room's live state (after deletion).
    fn drop_room(&self, id: i64) -> Option<Arc<RoomLive>> {
        self.rooms
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
    }

    /// Register a link's outgoing queue; returns the link id.
    /// `closed` is cancelled when the hub drops the link, so that its reader stops too.
    pub fn add_link(&self, tx: mpsc::Sender<Frame>, closed: CancellationToken) -> u32 {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        self.links
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, LinkHandle { tx, closed });
        metrics::gauge!(catalog::LINKS.name).increment(1.0);
        id
    }

    /// Drop a link and every session on it.
    pub fn remove_link(&self, link: u32) {
        let Some(handle) = self
            .links
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&link)
        else {
            return;
        };
        // Stops the link's reader and closes the socket: the front end sees the link go
        // down and ends the sessions it carried, instead of waiting on a silent link.
        handle.closed.cancel();
        metrics::gauge!(catalog::LINKS.name).decrement(1.0);
        let keys: Vec<SessionKey> = {
            let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            sessions
                .keys()
                .filter(|k| k.link == link)
                .copied()
                .collect()
        };
        for key in keys {
            self.close_session(key);
        }
    }

    /// Whether this server takes new sessions (`accepting`) and whether it wants its
    /// sessions moved to other servers (`evacuate`); every front end is told on a change.
    pub fn set_serving(&self, accepting: bool, evacuate: bool) {
        let changed = {
            let mut s = self.serving.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *s, (accepting, evacuate)) != (accepting, evacuate)
        };
        if changed {
            tracing::info!(accepting, evacuate, "serving status");
            metrics::gauge!(catalog::ACCEPTING.name).set(f64::from(u8::from(accepting)));
            let links: Vec<u32> = self
                .links
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .copied()
                .collect();
            for link in links {
                self.send_frame(link, self.status_frame());
            }
        }
    }

    /// The `Status` frame telling a front end how this server serves now.
    pub fn status_frame(&self) -> Frame {
        let (accepting, evacuate) = *self.serving.lock().unwrap_or_else(|p| p.into_inner());
        Frame::Status {
            accepting,
            evacuate,
        }
    }

    /// (accepting, evacuate) now.
    pub fn serving(&self) -> (bool, bool) {
        *self.serving.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue one frame on a link. A link whose queue is full is a front end that stopped
    /// reading: it is dropped (its sessions end) rather than allowed to stall rooms.
    ///
    /// Only the link's own task removes it: callers of this function may hold a room's
    /// lock, and removing the link ends its sessions, which takes room locks again (a
    /// self-deadlock seen with 18,000 sessions closing at once). So a full queue only
    /// signals the link to close.
    pub fn send_frame(&self, link: u32, frame: Frame) {
        let handle = self
            .links
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&link)
            .map(|h| (h.tx.clone(), h.closed.clone()));
        if let Some((tx, closed)) = handle {
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(frame) {
                if !closed.is_cancelled() {
                    tracing::warn!(link, "link queue full; dropping the link");
                    metrics::counter!(catalog::LINKS_DROPPED.name).increment(1);
                    closed.cancel();
                }
            }
        }
    }

    /// Send one JSON text to one session.
    pub fn send(&self, key: SessionKey, json: impl Into<Bytes>) {
        self.send_frame(
            key.link,
            Frame::Send {
                session: key.session,
                json: json.into(),
            },
        );
    }

    /// Send an error reply.
    pub fn send_error(&self, key: SessionKey, id: Option<u64>, err: &WireError) {
        metrics::counter!(catalog::ERRORS.name, "code" => err.code.as_str()).increment(1);
        self.send(key, error_json(id, err));
    }

    /// Send one push to every session present in a room (except `except`), one frame per link.
    pub fn push_to_room(&self, hot: &room::Hot, push: &Push, except: Option<SessionKey>) {
        let json = Bytes::from(push_json(push));
        for (link, sessions) in hot.by_link(except) {
            self.send_frame(
                link,
                Frame::Fanout {
                    sessions,
                    json: json.clone(),
                },
            );
        }
    }

    /// A session opened on a link, for an authenticated user; it signs in next.
    pub fn open_session(&self, key: SessionKey, user: i64) {
        self.insert_session(key, user, false);
    }

    /// A web-service call's session (`Service` frame): signed in from the start, so the
    /// call runs with the user's rights, but it never changes the user's presence.
    pub fn open_service_session(&self, key: SessionKey, user: i64) {
        self.insert_session(key, user, true);
    }

    fn insert_session(&self, key: SessionKey, user: i64, service: bool) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if sessions
            .insert(
                key,
                Session {
                    user,
                    signed_in: service,
                    service,
                    rooms: Vec::new(),
                    held: None,
                },
            )
            .is_none()
        {
            metrics::gauge!(catalog::SESSIONS.name).increment(1.0);
        }
    }

    /// A session ended: leave every room it was in.
    pub fn close_session(&self, key: SessionKey) {
        let gone = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        if let Some(s) = gone {
            metrics::gauge!(catalog::SESSIONS.name).decrement(1.0);
            for room in s.rooms {
                self.leave_room(key, room);
            }
            if s.signed_in && !s.service {
                let change = self.presence_book().session_closed(key, s.user);
                self.presence_changed(s.user, change);
            }
        }
    }

    /// Sessions currently open.
    pub fn session_count(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Rooms with live state here.
    pub fn rooms_live(&self) -> usize {
        self.rooms.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Front-end links connected now.
    pub fn link_count(&self) -> usize {
        self.links.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The signed-in user of a session.
    fn session_user(&self, key: SessionKey) -> Result<User, WireError> {
        let user = {
            let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            match sessions.get(&key) {
                Some(s) if s.signed_in => s.user,
                _ => return Err(WireError::new(ErrorCode::NotSignedIn, "sign in first")),
            }
        };
        self.dir()
            .users
            .get(&user)
            .cloned()
            .ok_or_else(|| WireError::new(ErrorCode::InvalidToken, "the user no longer exists"))
    }

    /// Record that a session is in a room (or no longer is).
    /// Returns false when the session is gone (it closed meanwhile).
    fn session_rooms(&self, key: SessionKey, room: i64, present: bool) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = sessions.get_mut(&key) else {
            return false;
        };
        if present {
            if !s.rooms.contains(&room) {
                s.rooms.push(room);
            }
        } else {
            s.rooms.retain(|r| *r != room);
        }
        true
    }

    /// The session is in the room.
    fn session_in(&self, key: SessionKey, room: i64) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.get(&key).is_some_and(|s| s.rooms.contains(&room))
    }

    /// Handle one request frame from a session. Fast operations run inline, in arrival
    /// order (a session's posts keep their order); operations that wait on the database
    /// run in their own task.
    pub fn handle(self: &Arc<Self>, key: SessionKey, json: Bytes) {
        if self.hold_if_resuming(key, &json) {
            return;
        }
        let req: Request = match crate::protocol::decode::decode(&json) {
            Ok(r) => r,
            Err((id, err)) => {
                return self.send_error(key, id, &err);
            }
        };
        metrics::counter!(catalog::REQUESTS.name, "op" => req.op.name()).increment(1);
        if crate::protocol::decode::has_nul(&json) {
            let e = WireError::new(
                ErrorCode::InvalidArgument,
                "text must not contain NUL characters (\\u0000)",
            );
            return self.send_error(key, Some(req.id), &e);
        }
        if let Op::SignIn { .. } = req.op {
            return self.sign_in(key, req.id);
        }
        if matches!(
            req.op,
            Op::Post { .. }
                | Op::Part { .. }
                | Op::Ping
                | Op::Participants { .. }
                | Op::RoomInfo { .. }
                | Op::SetPresence { .. }
                | Op::Subscribe { .. }
        ) {
            if let Some(result) = self.dispatch_inline(key, &req) {
                self.finish(key, req.id, result);
            }
            return;
        }
        if self.in_flight.load(Ordering::Relaxed) >= self.config.max_in_flight {
            metrics::counter!(catalog::BUSY.name).increment(1);
            return self.send_error(
                key,
                Some(req.id),
                &WireError::new(ErrorCode::Busy, "server too busy; retry later"),
            );
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(catalog::REQUESTS_IN_FLIGHT.name).increment(1.0);
        let hub = self.clone();
        tokio::spawn(async move {
            let result = hub.dispatch_async(key, &req).await;
            hub.in_flight.fetch_sub(1, Ordering::Relaxed);
            metrics::gauge!(catalog::REQUESTS_IN_FLIGHT.name).decrement(1.0);
            hub.finish(key, req.id, result);
        });
    }

    fn finish(&self, key: SessionKey, id: u64, result: Result<String, WireError>) {
        match result {
            Ok(json) => self.send(key, json),
            Err(e) => self.send_error(key, Some(id), &e),
        }
    }

    /// Test hook: drop every `n`th delivery (0 turns it off).
    pub fn set_drop_every(&self, n: usize) {
        self.drop_every.store(n, Ordering::Relaxed);
    }

    /// True when the test hook says this delivery is to be dropped.
    fn drop_this_delivery(&self) -> bool {
        let n = self.drop_every.load(Ordering::Relaxed);
        n > 0 && (self.dropped_counter.fetch_add(1, Ordering::Relaxed) + 1) % n == 0
    }
}
