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
    /// Posts of this server's sessions waiting for their commit, (author, client_msg_id) →
    /// poster: a copy read from the database before the commit's own result arrives (a
    /// gap filled, a catch-up) is not pushed to its poster, who gets the acknowledgement.
    pub posting: HashMap<(i64, String), SessionKey>,
    /// Recent (author, client_msg_id) → seq, for recognising retries.
    dedupe: HashMap<(i64, String), (i64, i64)>,
    dedupe_order: VecDeque<(i64, String)>,
    /// Sessions of this server in the room now, with their users.
    pub present: HashMap<SessionKey, i64>,
    /// Users in the room now, anywhere in the pool: their sessions here, and how many
    /// other chat servers said they have some.
    pub users: HashMap<i64, Members>,
}

/// Where one user is in a room.
#[derive(Debug, Default, Clone, Copy)]
pub struct Members {
    /// Sessions of this server.
    pub local: u32,
    /// Other chat servers with sessions of the user in the room.
    pub remote: u32,
}

/// A user came into a room or left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// The user.
    pub user: i64,
    /// First session (or last gone) of this server: other chat servers are told.
    pub here: bool,
    /// First (or last) in the whole pool: the room's roster changed.
    pub anywhere: bool,
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

    /// Add a session of this server; `None` when it was in the room already.
    pub fn enter(&mut self, key: SessionKey, user: i64) -> Option<Moved> {
        if self.present.insert(key, user).is_some() {
            return None;
        }
        let m = self.users.entry(user).or_default();
        m.local += 1;
        Some(Moved {
            user,
            here: m.local == 1,
            anywhere: m.local == 1 && m.remote == 0,
        })
    }

    /// Remove a session of this server; `None` when it was not in the room.
    pub fn leave(&mut self, key: SessionKey) -> Option<Moved> {
        let user = self.present.remove(&key)?;
        let m = self.users.entry(user).or_default();
        m.local = m.local.saturating_sub(1);
        let moved = Moved {
            user,
            here: m.local == 0,
            anywhere: m.local == 0 && m.remote == 0,
        };
        if moved.anywhere {
            self.users.remove(&user);
        }
        Some(moved)
    }

    /// Another chat server has (`present`) or no longer has sessions of `user` here;
    /// true when the room's roster changed.
    pub fn remote(&mut self, user: i64, present: bool) -> bool {
        let m = self.users.entry(user).or_default();
        if present {
            m.remote += 1;
            m.remote == 1 && m.local == 0
        } else {
            m.remote = m.remote.saturating_sub(1);
            let gone = m.remote == 0 && m.local == 0;
            if gone {
                self.users.remove(&user);
            }
            gone
        }
    }

    /// Users with sessions of this server in the room.
    pub fn local_users(&self) -> impl Iterator<Item = i64> + '_ {
        self.users
            .iter()
            .filter(|(_, m)| m.local > 0)
            .map(|(u, _)| *u)
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
