//! The front end ("next hop"): holds one WebSocket per user endpoint, authenticates it,
//! and multiplexes the sessions over a link to the chat server. Stateless apart from the
//! open sockets: any front end can serve any user.
//!
//! # Layout
//! - [`FrontEnd`] (this file): the session table and the routing of frames to sessions.
//! - [`link`]: the link to the chat server (reconnecting).
//! - [`ws`]: one client connection: sign-in, rate limit, forwarding, slow-consumer policy.
//! - [`http`]: the HTTP router: `/ws`, `/metrics`, `/healthz`.

pub mod http;
pub mod link;
pub mod ws;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::auth::TokenKey;
use crate::config::FrontConfig;
use crate::protocol::session::Frame;

/// What the front end keeps per connected session.
struct SessionHandle {
    tx: mpsc::Sender<Utf8Bytes>,
    kick: Option<oneshot::Sender<String>>,
}

/// Shared state of one front-end process.
pub struct FrontEnd {
    /// Name sent to chat servers in `Hello`.
    pub name: String,
    /// Settings.
    pub config: FrontConfig,
    /// Token verification key.
    pub tokens: TokenKey,
    link: RwLock<Option<mpsc::Sender<Frame>>>,
    sessions: Mutex<HashMap<u64, SessionHandle>>,
    next_session: AtomicU64,
}

impl FrontEnd {
    /// A front end with no link yet.
    pub fn new(name: String, config: FrontConfig, tokens: TokenKey) -> Self {
        Self {
            name,
            config,
            tokens,
            link: RwLock::new(None),
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
        }
    }

    fn set_link(&self, tx: Option<mpsc::Sender<Frame>>) {
        *self.link.write().unwrap_or_else(|p| p.into_inner()) = tx;
    }

    /// The link's sender, when up.
    fn uplink(&self) -> Option<mpsc::Sender<Frame>> {
        self.link.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True when the link to the chat server is up.
    pub fn is_linked(&self) -> bool {
        self.uplink().is_some()
    }

    /// Register a session; returns its id, queue and kick signal.
    fn register(&self) -> (u64, mpsc::Receiver<Utf8Bytes>, oneshot::Receiver<String>) {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.config.session_queue);
        let (kick_tx, kick_rx) = oneshot::channel();
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id,
                SessionHandle {
                    tx,
                    kick: Some(kick_tx),
                },
            );
        metrics::gauge!("chatcap_frontend_sessions").increment(1.0);
        (id, rx, kick_rx)
    }

    /// Forget a session (its socket task is ending).
    fn unregister(&self, id: u64) {
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
        for id in slow {
            metrics::counter!("chatcap_slow_consumers_total").increment(1);
            self.kick(id, "slow_consumer");
            self.close_upstream(id);
        }
    }

    /// End a session with a reason (its socket task sends `bye` and closes).
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

    /// Tell the chat server a session ended.
    fn close_upstream(&self, id: u64) {
        if let Some(tx) = self.uplink() {
            let _ = tx.try_send(Frame::Close { session: id });
        }
    }

    /// The link dropped: every session ends.
    fn link_lost(&self) {
        let ids: Vec<u64> = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        for id in ids {
            self.kick(id, "link_lost");
        }
    }

    /// The process is stopping: every session ends with reason `shutdown`.
    pub fn link_lost_shutdown(&self) {
        let ids: Vec<u64> = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        for id in ids {
            self.kick(id, "shutdown");
        }
    }

    /// Sessions connected now.
    pub fn session_count(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}
