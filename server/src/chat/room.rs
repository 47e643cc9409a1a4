//! The live state of one room: its sequence counter, the cache of recent messages served
//! on join, the window of recent client message ids (retries), and who is in it now.
//!
//! Everything here is behind one `std::sync::Mutex` per room, never held across `.await`:
//! numbering a post and queueing it for commit happen under the lock, so the commit queue
//! sees each room's posts in sequence order; delivering a committed message and adding a
//! joiner also happen under it, so a joiner gets either the message in its history or as a
//! push — never neither, never both.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::OnceCell;

use super::SessionKey;
use crate::protocol::Message;

/// Live state of one room.
pub struct RoomLive {
    /// Room id.
    pub id: i64,
    /// Set once the recent history has been read from the database.
    loaded: OnceCell<()>,
    hot: Mutex<Hot>,
}

/// The part of a room's state that changes with every post, join and part.
#[derive(Default)]
pub struct Hot {
    /// Number for the next post.
    pub next_seq: i64,
    /// Last committed sequence number.
    pub last_committed: i64,
    /// Most recent committed messages, oldest first (at most the history cache size).
    pub cache: VecDeque<Message>,
    /// Recent (author, client_msg_id) → seq, for recognising retries.
    dedupe: HashMap<(i64, String), (i64, i64)>,
    dedupe_order: VecDeque<(i64, String)>,
    /// Sessions in the room now, with their users.
    pub present: HashMap<SessionKey, i64>,
    /// Users in the room now, with their session counts.
    pub users: HashMap<i64, u32>,
}

impl Hot {
    /// The seq of an earlier post with the same author and client id, if remembered.
    /// (seq, posted_at_us) of the original.
    pub fn seen(&self, author: i64, client_msg_id: &str) -> Option<(i64, i64)> {
        // Allocation-free lookup would need a borrowed key type; retries are rare enough.
        self.dedupe
            .get(&(author, client_msg_id.to_string()))
            .copied()
    }

    /// Remember a post's client id, forgetting the oldest beyond `window`.
    pub fn remember(
        &mut self,
        author: i64,
        client_msg_id: &str,
        seq: i64,
        posted_at_us: i64,
        window: usize,
    ) {
        if window == 0 {
            return;
        }
        let key = (author, client_msg_id.to_string());
        if self
            .dedupe
            .insert(key.clone(), (seq, posted_at_us))
            .is_none()
        {
            self.dedupe_order.push_back(key);
        }
        while self.dedupe_order.len() > window {
            if let Some(old) = self.dedupe_order.pop_front() {
                self.dedupe.remove(&old);
            }
        }
    }

    /// Add a committed message to the cache, keeping at most `cap`.
    pub fn cache_push(&mut self, msg: Message, cap: usize) {
        self.last_committed = self.last_committed.max(msg.seq);
        if cap == 0 {
            return;
        }
        self.cache.push_back(msg);
        while self.cache.len() > cap {
            self.cache.pop_front();
        }
    }

    /// Add a session; returns true when its user was not in the room before.
    pub fn enter(&mut self, key: SessionKey, user: i64) -> bool {
        if self.present.insert(key, user).is_some() {
            return false;
        }
        let n = self.users.entry(user).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// Remove a session; returns the user when it was their last session in the room.
    pub fn leave(&mut self, key: SessionKey) -> Option<i64> {
        let user = self.present.remove(&key)?;
        let n = self.users.entry(user).or_insert(1);
        *n -= 1;
        if *n == 0 {
            self.users.remove(&user);
            Some(user)
        } else {
            None
        }
    }

    /// The sessions present, grouped by link (for one fan-out frame per link).
    pub fn by_link(&self, except: Option<SessionKey>) -> HashMap<u32, Vec<u64>> {
        let mut out: HashMap<u32, Vec<u64>> = HashMap::new();
        for key in self.present.keys() {
            if Some(*key) != except {
                out.entry(key.link).or_default().push(key.session);
            }
        }
        out
    }
}

impl RoomLive {
    /// A room not yet loaded.
    pub fn new(id: i64) -> Self {
        Self {
            id,
            loaded: OnceCell::new(),
            hot: Mutex::new(Hot::default()),
        }
    }

    /// Lock the hot state. A panic while holding it cannot leave it half-changed in a way
    /// that matters more than stopping the room, so a poisoned lock is taken over.
    pub fn hot(&self) -> MutexGuard<'_, Hot> {
        self.hot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `load` once (reading recent history), then seed the hot state with its result:
    /// the messages (oldest first) and the highest number ever used.
    pub async fn ensure_loaded<F, Fut, E>(
        &self,
        cache_cap: usize,
        window: usize,
        load: F,
    ) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<Message>, i64), E>>,
    {
        self.loaded
            .get_or_try_init(|| async {
                let (recent, top) = load().await?;
                let mut hot = self.hot();
                hot.next_seq = top + 1;
                hot.last_committed = top;
                for m in recent {
                    hot.remember(m.author, &m.client_msg_id, m.seq, m.posted_at_us, window);
                    hot.cache_push(m, cache_cap);
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// True once loaded.
    pub fn is_loaded(&self) -> bool {
        self.loaded.initialized()
    }
}
