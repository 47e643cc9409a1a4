//! The live state of one room: its sequence counter, the cache of recent messages served
//! on join, the window of recent client message ids (retries), and who is in it now.
//!
//! Everything here is behind one `std::sync::Mutex` per room, never held across `.await`.
//! Committed messages are delivered in sequence order under the lock (`delivery`): those
//! that arrive early (a later number committed here before an earlier one from another
//! chat server reached us) wait in `pending`. Adding a joiner also happens under the lock,
//! so a joiner gets each message either in its history or as a push — never neither,
//! never both.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::OnceCell;

use super::{PostTag, SessionKey};
use crate::protocol::Message;

/// Whether a room's recent history is in memory.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// Not read: nothing to deliver here (no session of this server is in the room).
    #[default]
    No,
    /// Being read: committed messages wait in `pending` until it is.
    Loading,
    /// Read: committed messages are delivered in order.
    Yes,
}

/// A committed message waiting for its turn (an earlier number has not arrived yet).
#[derive(Debug)]
pub struct Pending {
    /// The numbered message.
    pub msg: Message,
    /// Its category keeps history (it goes into the recent-history cache).
    pub persist: bool,
    /// Whom to acknowledge once it is delivered: posts committed by this server.
    pub tag: Option<PostTag>,
}

/// Live state of one room.
pub struct RoomLive {
    /// Room id.
    pub id: i64,
    /// Runs the first read of the recent history (once, however many joiners wait).
    load_once: OnceCell<()>,
    hot: Mutex<Hot>,
}

/// The part of a room's state that changes with every post, join and part.
#[derive(Default)]
pub struct Hot {
    /// Whether the recent history is in memory.
    pub loaded: Loaded,
    /// Last committed sequence number delivered here.
    pub last_committed: i64,
    /// Committed messages above `last_committed + 1`, by number, waiting for the gap.
    pub pending: BTreeMap<i64, Pending>,
    /// A task is filling the gap before `pending` from the database.
    pub filling: bool,
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
            load_once: OnceCell::new(),
            hot: Mutex::new(Hot::default()),
        }
    }

    /// Lock the hot state. A panic while holding it cannot leave it half-changed in a way
    /// that matters more than stopping the room, so a poisoned lock is taken over.
    pub fn hot(&self) -> MutexGuard<'_, Hot> {
        self.hot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `load` once (reading recent history), then seed the hot state with its result:
    /// the messages (oldest first) and the room's last committed number. Messages
    /// committed meanwhile wait in `pending` (the caller delivers them); on failure the
    /// room goes back to not loaded.
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
        self.load_once
            .get_or_try_init(|| async {
                self.hot().loaded = Loaded::Loading;
                let (recent, top) = match load().await {
                    Ok(r) => r,
                    Err(e) => {
                        let mut hot = self.hot();
                        hot.loaded = Loaded::No;
                        hot.pending.clear();
                        return Err(e);
                    }
                };
                let mut hot = self.hot();
                hot.last_committed = top;
                for m in recent {
                    hot.remember(m.author, &m.client_msg_id, m.seq, m.posted_at_us, window);
                    hot.cache_push(m, cache_cap);
                }
                hot.loaded = Loaded::Yes;
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// True once loaded.
    pub fn is_loaded(&self) -> bool {
        self.hot().loaded == Loaded::Yes
    }
}
