//! The front end ("next hop"): holds one WebSocket per user endpoint, authenticates it,
//! and multiplexes the sessions over links to chat servers. Stateless apart from the open
//! sockets and what it needs to move a session between chat servers: any front end can
//! serve any user, and several front-end processes can share one port (`SO_REUSEPORT`).
//!
//! # Layout
//! - [`FrontEnd`] (this file): the links to the chat servers (up or down, taking new
//!   sessions or not) and routing a user's new session to one of them.
//! - [`sessions`]: the session table: which chat server each session is on, its rooms and
//!   contacts, routing frames to sessions, and moving sessions between chat servers.
//! - [`call`]: [`FrontEnd::call`], which runs one operation as a user for the web services.
//! - [`link`]: one link to a chat server (reconnecting; learns the token key in `Welcome`).
//! - [`ws`]: one client connection: sign-in, rate limit, forwarding, slow-consumer policy.
//! - [`rate`]: token buckets (per session, and per user for the web services).
//! - [`api`]: what the web services share: the bearer-token caller, error replies.
//! - [`http`]: the HTTP router: `/ws`, `/metrics`, `/healthz`, the web services.
//! - [`rooms_api`]: the chat room management web service (`/api/…`, the `/rooms` page).
//! - [`files`]: the file upload/download web service; [`file_store`]: the folder it keeps
//!   the bytes in.

pub mod api;
pub mod call;
pub mod file_store;
pub mod files;
pub mod http;
pub mod link;
pub mod rate;
pub mod rooms_api;
pub mod sessions;
pub mod ws;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use tokio::sync::mpsc;

use crate::auth::{unix_now, TokenError, TokenKey};
use crate::config::FrontConfig;
use crate::protocol::session::Frame;
pub use call::CallError;
pub use sessions::Registered;

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

/// Which of `servers` chat servers a new session of `user` goes to (0-based among those
/// that take new sessions, in configuration order). The id is mixed first (Fibonacci
/// hashing): consecutive ids, or ids that share a pattern such as users with a second
/// endpoint, still spread evenly.
pub fn home_of(user: i64, servers: usize) -> usize {
    let mixed = (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    (mixed % servers.max(1) as u64) as usize
}

/// One configured chat server, as this front end sees it.
#[derive(Default)]
struct LinkSlot {
    /// The link's sender while it is up.
    tx: Option<mpsc::Sender<Frame>>,
    /// The server takes new sessions (its last `Status`).
    accepting: bool,
}

/// Shared state of one front-end process.
pub struct FrontEnd {
    /// Name sent to chat servers in `Hello`.
    pub name: String,
    /// Settings.
    pub config: FrontConfig,
    tokens: RwLock<Option<TokenKey>>,
    /// One slot per configured chat server.
    links: Vec<RwLock<LinkSlot>>,
    table: Mutex<sessions::Table>,
    next_session: AtomicU64,
    /// Client WebSockets open now (for the connection limit).
    connections: AtomicUsize,
    /// The file store (shared with the pool's other front ends); `None`: no file service.
    pub file_store: Option<file_store::FileStore>,
    /// Web-service calls per user (rate limit).
    web_rate: rate::PerUser,
    /// The link secret, proved to chat servers that ask (`Challenge`), and link TLS.
    pub trust: crate::tls::LinkTrust,
}

impl FrontEnd {
    /// A front end for `chat_servers` chat servers, with no link up yet.
    pub fn new(name: String, config: FrontConfig, chat_servers: usize) -> Self {
        Self {
            name,
            config,
            tokens: RwLock::new(None),
            links: (0..chat_servers.max(1))
                .map(|_| RwLock::new(LinkSlot::default()))
                .collect(),
            table: Mutex::new(sessions::Table::default()),
            next_session: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            file_store: None,
            web_rate: rate::PerUser::default(),
            trust: crate::tls::LinkTrust::default(),
        }
    }

    /// Link to chat servers as `trust` says (link TLS, the secret to prove).
    pub fn with_link_trust(mut self, trust: crate::tls::LinkTrust) -> Self {
        self.trust = trust;
        self
    }

    /// Serve files from the file store at `dir` (created on first upload).
    pub fn with_file_store(mut self, dir: std::path::PathBuf) -> Self {
        self.file_store = Some(file_store::FileStore::new(dir));
        self
    }

    fn slot(&self, index: usize) -> std::sync::RwLockReadGuard<'_, LinkSlot> {
        self.links[index].read().unwrap_or_else(|p| p.into_inner())
    }

    fn slot_mut(&self, index: usize) -> std::sync::RwLockWriteGuard<'_, LinkSlot> {
        self.links[index].write().unwrap_or_else(|p| p.into_inner())
    }

    /// The link `index` came up (`Some`) or went down.
    fn set_link(&self, index: usize, tx: Option<mpsc::Sender<Frame>>) {
        let mut slot = self.slot_mut(index);
        if tx.is_none() {
            slot.accepting = false;
        }
        slot.tx = tx;
    }

    /// The sender of link `index`, while it is up.
    fn link(&self, index: usize) -> Option<mpsc::Sender<Frame>> {
        self.links.get(index)?;
        self.slot(index).tx.clone()
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

    /// The chat server for a new session of `user` (not `avoid`): among the servers that
    /// take new sessions, the same one for the same user while that set stays the same
    /// ([`home_of`]).
    /// `None` when no server takes new sessions (a pool whose servers are all cut off from
    /// the database, or starting): the client is told to come back later.
    fn route(&self, user: i64, avoid: Option<usize>) -> Option<(usize, mpsc::Sender<Frame>)> {
        let open: Vec<(usize, mpsc::Sender<Frame>)> = (0..self.links.len())
            .filter(|i| Some(*i) != avoid)
            .filter_map(|i| {
                let slot = self.slot(i);
                slot.tx.clone().filter(|_| slot.accepting).map(|tx| (i, tx))
            })
            .collect();
        (!open.is_empty()).then(|| open[home_of(user, open.len())].clone())
    }

    /// A chat server said how it serves (`Status`): route new sessions to it or not, and
    /// move its sessions elsewhere when it asks.
    fn set_status(&self, index: usize, accepting: bool, evacuate: bool) {
        self.slot_mut(index).accepting = accepting;
        if evacuate {
            self.move_sessions(index, true);
        }
    }

    /// True when at least one linked chat server takes new sessions.
    pub fn is_linked(&self) -> bool {
        (0..self.links.len()).any(|i| {
            let slot = self.slot(i);
            slot.tx.is_some() && slot.accepting
        })
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
}
