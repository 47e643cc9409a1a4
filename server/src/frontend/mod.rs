//! The front end ("next hop"): holds one WebSocket per user endpoint, authenticates it,
//! and multiplexes the sessions over links to chat servers. Stateless apart from the open
//! sockets: any front end can serve any user, and several front-end processes can share
//! one port (`SO_REUSEPORT`).
//!
//! # Layout
//! - [`FrontEnd`] (this file): the session table, the links, routing frames to sessions,
//!   and [`FrontEnd::call`], which runs one operation as a user for the web services.
//! - [`link`]: one link to a chat server (reconnecting; learns the token key in `Welcome`).
//! - [`ws`]: one client connection: sign-in, rate limit, forwarding, slow-consumer policy.
//! - [`rate`]: token buckets (per session, and per user for the web services).
//! - [`api`]: what the web services share: the bearer-token caller, error replies.
//! - [`http`]: the HTTP router: `/ws`, `/metrics`, `/healthz`, the web services.
//! - [`rooms_api`]: the chat room management web service (`/api/…`, the `/rooms` page).
//! - [`files`]: the file upload/download web service; [`file_store`]: the folder it keeps
//!   the bytes in.

pub mod api;
pub mod file_store;
pub mod files;
pub mod http;
pub mod link;
pub mod rate;
pub mod rooms_api;
pub mod ws;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::auth::{unix_now, TokenError, TokenKey};
use crate::config::FrontConfig;
use crate::protocol::reply::ServerMsg;
use crate::protocol::session::Frame;
use crate::protocol::{ErrorCode, Op, Request, WireError};

/// What the front end keeps per connected session.
struct SessionHandle {
    tx: mpsc::Sender<Utf8Bytes>,
    kick: Option<oneshot::Sender<String>>,
    /// Index of the link (chat server) the session lives on.
    link: usize,
}

/// A session registered with the front end: its id, the link it was routed to, its
/// queue of frames from the chat server and the signal that ends it.
pub struct Registered {
    /// Session id (unique in this front end).
    pub id: u64,
    /// The link's sender.
    pub uplink: mpsc::Sender<Frame>,
    /// Frames for this session.
    pub rx: mpsc::Receiver<Utf8Bytes>,
    /// Fires with a reason when the session is ended from elsewhere.
    pub kick: oneshot::Receiver<String>,
}

/// Why a web-service call did not get an answer from the chat server.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The chat server answered with an error (rights, unknown room, bad argument…).
    #[error("{}: {}", .0.code.as_str(), .0.message)]
    Refused(WireError),
    /// No chat server is linked.
    #[error("no chat server reachable; retry later")]
    Unavailable,
    /// The chat server did not answer in time, or the link dropped meanwhile.
    #[error("the chat server did not answer")]
    NoAnswer,
}

/// Why a token was not accepted at the front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Forged, malformed or expired.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// No chat server has welcomed this front end yet, so it holds no key.
    #[error("no chat server reachable; retry later")]
    NotReady,
}

/// Longest wait for the answer to a web-service call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of one front-end process.
pub struct FrontEnd {
    /// Name sent to chat servers in `Hello`.
    pub name: String,
    /// Settings.
    pub config: FrontConfig,
    tokens: RwLock<Option<TokenKey>>,
    /// One slot per configured chat server: its link's sender while it is up.
    links: Vec<RwLock<Option<mpsc::Sender<Frame>>>>,
    sessions: Mutex<HashMap<u64, SessionHandle>>,
    next_session: AtomicU64,
    /// Client WebSockets open now (for the connection limit).
    connections: AtomicUsize,
    /// The file store (shared with the pool's other front ends); `None`: no file service.
    pub file_store: Option<file_store::FileStore>,
    /// Web-service calls per user (rate limit).
    web_rate: rate::PerUser,
    /// The pool's link secret, proved to chat servers that ask (`Challenge`).
    pub link_secret: Option<String>,
}

impl FrontEnd {
    /// A front end for `chat_servers` chat servers, with no link up yet.
    pub fn new(name: String, config: FrontConfig, chat_servers: usize) -> Self {
        Self {
            name,
            config,
            tokens: RwLock::new(None),
            links: (0..chat_servers.max(1))
                .map(|_| RwLock::new(None))
                .collect(),
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            file_store: None,
            web_rate: rate::PerUser::default(),
            link_secret: None,
        }
    }

    /// Prove `secret` to chat servers that ask for the link secret.
    pub fn with_link_secret(mut self, secret: Option<String>) -> Self {
        self.link_secret = secret;
        self
    }

    /// Serve files from the file store at `dir` (created on first upload).
    pub fn with_file_store(mut self, dir: std::path::PathBuf) -> Self {
        self.file_store = Some(file_store::FileStore::new(dir));
        self
    }

    fn set_link(&self, index: usize, tx: Option<mpsc::Sender<Frame>>) {
        *self.links[index].write().unwrap_or_else(|p| p.into_inner()) = tx;
    }

    fn link(&self, index: usize) -> Option<mpsc::Sender<Frame>> {
        self.links
            .get(index)?
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The key learnt from a chat server's `Welcome`.
    fn set_tokens(&self, key: TokenKey) {
        *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = Some(key);
    }

    /// Count one web-service call of `user`; false when over the rate limit.
    pub fn web_call_allowed(&self, user: i64) -> bool {
        self.web_rate
            .take(user, self.config.rate_per_sec, self.config.rate_burst)
    }

    /// Check a sign-in token: the user it names.
    pub fn verify(&self, token: &str) -> Result<i64, VerifyError> {
        let tokens = self.tokens.read().unwrap_or_else(|p| p.into_inner());
        let key = tokens.as_ref().ok_or(VerifyError::NotReady)?;
        Ok(key.verify(token, unix_now())?)
    }

    /// The link a user's sessions go to: the user's own chat server when its link is up,
    /// otherwise the next one that is (the same user always lands on the same server while
    /// the pool is whole).
    fn route(&self, user: i64) -> Option<(usize, mpsc::Sender<Frame>)> {
        let n = self.links.len();
        let home = user.rem_euclid(n as i64) as usize;
        (0..n)
            .map(|i| (home + i) % n)
            .find_map(|i| self.link(i).map(|tx| (i, tx)))
    }

    /// True when at least one link to a chat server is up.
    pub fn is_linked(&self) -> bool {
        (0..self.links.len()).any(|i| self.link(i).is_some())
    }

    /// Links up now, of how many configured.
    pub fn links_up(&self) -> (usize, usize) {
        let up = (0..self.links.len())
            .filter(|i| self.link(*i).is_some())
            .count();
        (up, self.links.len())
    }

    /// Count a client connection in; `false` (and nothing counted) when the front end
    /// holds `max_connections` already: the caller refuses it as "server too busy".
    pub fn admit(&self) -> bool {
        let max = self.config.max_connections;
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// A client connection ended.
    pub fn release(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Register a session for `user` on the user's link; `None` when no chat server is
    /// linked. `queue` bounds the frames waiting for it.
    pub fn register(&self, user: i64, queue: usize) -> Option<Registered> {
        let (link, uplink) = self.route(user)?;
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(queue);
        let (kick_tx, kick) = oneshot::channel();
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id,
                SessionHandle {
                    tx,
                    kick: Some(kick_tx),
                    link,
                },
            );
        metrics::gauge!("chatcap_frontend_sessions").increment(1.0);
        Some(Registered {
            id,
            uplink,
            rx,
            kick,
        })
    }

    /// Forget a session (its task is ending).
    pub fn unregister(&self, id: u64) {
        if self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
            .is_some()
        {
            metrics::gauge!("chatcap_frontend_sessions").decrement(1.0);
        }
    }

    /// Route a text frame from the chat server to sessions' queues.
    fn deliver(&self, sessions: &[u64], json: Bytes) {
        let Ok(text) = Utf8Bytes::try_from(json) else {
            tracing::warn!("chat server sent text that is not UTF-8; dropped");
            return;
        };
        let mut slow = Vec::new();
        {
            let table = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            for id in sessions {
                if let Some(s) = table.get(id) {
                    if let Err(mpsc::error::TrySendError::Full(_)) = s.tx.try_send(text.clone()) {
                        slow.push(*id);
                    }
                }
            }
        }
        metrics::counter!("chatcap_frontend_forwarded_total").increment(sessions.len() as u64);
        for id in slow {
            metrics::counter!("chatcap_slow_consumers_total").increment(1);
            self.kick(id, "slow_consumer");
        }
    }

    /// End a session with a reason (its task sends `bye`, closes, and tells the chat
    /// server).
    fn kick(&self, id: u64, reason: &str) {
        let kick = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&id)
            .and_then(|s| s.kick.take());
        if let Some(k) = kick {
            let _ = k.send(reason.to_string());
        }
    }

    /// End every session on the link `index` (or on every link) with `reason`.
    fn kick_all(&self, index: Option<usize>, reason: &str) {
        let ids: Vec<u64> = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, s)| index.is_none_or(|i| s.link == i))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.kick(id, reason);
        }
    }

    /// The link `index` dropped: its sessions end with `link_lost`.
    fn link_lost(&self, index: usize) {
        self.kick_all(Some(index), "link_lost");
    }

    /// The process is stopping: every session ends with reason `shutdown`.
    pub fn link_lost_shutdown(&self) {
        self.kick_all(None, "shutdown");
    }

    /// Sessions connected now (client sessions and web-service calls in progress).
    pub fn session_count(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Run one operation as `user` on the user's chat server, with exactly the rights the
    /// chat protocol gives that user: the web services' single way in. Returns the
    /// operation's `result`.
    pub async fn call(&self, user: i64, op: Op) -> Result<serde_json::Value, CallError> {
        let Registered {
            id,
            uplink,
            mut rx,
            mut kick,
        } = self.register(user, 64).ok_or(CallError::Unavailable)?;
        // Ends the session on both sides however this future ends: answered, timed out, or
        // dropped because the HTTP client went away mid-call.
        let _ends = CallSession {
            fe: self,
            id,
            uplink: uplink.clone(),
        };
        let request = Request { id: 1, op };
        let json = Bytes::from(serde_json::to_vec(&request).unwrap_or_default());
        let outcome = async {
            uplink
                .send(Frame::Service { session: id, user })
                .await
                .map_err(|_| CallError::Unavailable)?;
            uplink
                .send(Frame::Request { session: id, json })
                .await
                .map_err(|_| CallError::Unavailable)?;
            // Pushes may arrive before the answer (a call that touches a room): skip them.
            loop {
                let text = tokio::select! {
                    text = rx.recv() => text.ok_or(CallError::NoAnswer)?,
                    _ = &mut kick => return Err(CallError::NoAnswer),
                };
                match ServerMsg::parse(text.as_str()) {
                    Ok(ServerMsg::Reply { id: 1, result }) => return Ok(result),
                    Ok(ServerMsg::Error {
                        id: Some(1),
                        code,
                        message,
                    }) => return Err(CallError::Refused(WireError::new(code, message))),
                    _ => continue,
                }
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, outcome)
            .await
            .unwrap_or(Err(CallError::NoAnswer))
    }
}

/// The session of one web-service call; dropping it ends the session here and on the chat
/// server.
struct CallSession<'a> {
    fe: &'a FrontEnd,
    id: u64,
    uplink: mpsc::Sender<Frame>,
}

impl Drop for CallSession<'_> {
    fn drop(&mut self) {
        self.fe.unregister(self.id);
        let close = Frame::Close { session: self.id };
        if let Err(mpsc::error::TrySendError::Full(close)) = self.uplink.try_send(close) {
            // The link is busy: wait for room in a task of its own (a lost Close would
            // leave the session open on the chat server).
            let uplink = self.uplink.clone();
            tokio::spawn(async move {
                let _ = uplink.send(close).await;
            });
        }
    }
}

impl CallError {
    /// The protocol error this failure reads as, for replies that carry a code.
    pub fn wire(&self) -> WireError {
        match self {
            CallError::Refused(e) => e.clone(),
            CallError::Unavailable | CallError::NoAnswer => {
                WireError::new(ErrorCode::Busy, self.to_string())
            }
        }
    }
}
