//! Presence: each user's state, and which sessions watch which users (their contacts).
//!
//! A session subscribes to a list of users (a Lync user has ~80 contacts) and gets a
//! `presence` push whenever one of them changes state. A user is `online` while any of
//! their sessions is open and has set nothing else, `offline` when the last one closes.
//! Pure bookkeeping: the hub sends the pushes this module computes.

use std::collections::HashMap;

use super::SessionKey;
pub use crate::protocol::PresenceState;

/// Most contacts one session may watch.
pub const MAX_CONTACTS: usize = 1000;

/// Who is in which state, and who watches whom.
#[derive(Debug, Default)]
pub struct PresenceBook {
    states: HashMap<i64, PresenceState>,
    sessions: HashMap<i64, u32>,
    watchers: HashMap<i64, Vec<SessionKey>>,
    subscriptions: HashMap<SessionKey, Vec<i64>>,
}

impl PresenceBook {
    /// The state of a user.
    pub fn state(&self, user: i64) -> PresenceState {
        self.states.get(&user).copied().unwrap_or_default()
    }

    /// Sessions watching `user`.
    pub fn watchers(&self, user: i64) -> &[SessionKey] {
        self.watchers.get(&user).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A session of `user` opened. Returns the new state when it changed (first session).
    pub fn session_opened(&mut self, user: i64) -> Option<PresenceState> {
        let n = self.sessions.entry(user).or_insert(0);
        *n += 1;
        (*n == 1)
            .then(|| self.set(user, PresenceState::Online))
            .flatten()
    }

    /// A session closed: forget its subscriptions; returns the new state of its user when
    /// it changed (last session gone → offline).
    pub fn session_closed(&mut self, key: SessionKey, user: i64) -> Option<PresenceState> {
        self.unsubscribe(key);
        let n = self.sessions.entry(user).or_insert(1);
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.sessions.remove(&user);
            return self.set(user, PresenceState::Offline);
        }
        None
    }

    /// Set a user's state; returns it when it changed.
    pub fn set(&mut self, user: i64, state: PresenceState) -> Option<PresenceState> {
        let old = self.states.insert(user, state).unwrap_or_default();
        if state == PresenceState::Offline {
            self.states.remove(&user);
        }
        (old != state).then_some(state)
    }

    /// Replace a session's contact list; returns the contacts' current states.
    pub fn subscribe(&mut self, key: SessionKey, users: &[i64]) -> Vec<(i64, PresenceState)> {
        self.unsubscribe(key);
        let mut list: Vec<i64> = users.iter().copied().take(MAX_CONTACTS).collect();
        list.sort_unstable();
        list.dedup();
        for u in &list {
            self.watchers.entry(*u).or_default().push(key);
        }
        let states = list.iter().map(|u| (*u, self.state(*u))).collect();
        if !list.is_empty() {
            self.subscriptions.insert(key, list);
        }
        states
    }

    fn unsubscribe(&mut self, key: SessionKey) {
        for u in self.subscriptions.remove(&key).unwrap_or_default() {
            if let Some(w) = self.watchers.get_mut(&u) {
                w.retain(|k| *k != key);
                if w.is_empty() {
                    self.watchers.remove(&u);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> SessionKey {
        SessionKey {
            link: 1,
            session: n,
        }
    }

    #[test]
    fn watchers_follow_subscriptions_and_sessions() {
        let mut b = PresenceBook::default();
        assert_eq!(b.session_opened(7), Some(PresenceState::Online));
        assert_eq!(
            b.session_opened(7),
            None,
            "a second endpoint changes nothing"
        );
        let states = b.subscribe(key(1), &[7, 8, 7]);
        assert_eq!(
            states,
            vec![(7, PresenceState::Online), (8, PresenceState::Offline)]
        );
        assert_eq!(b.watchers(7), &[key(1)]);
        assert_eq!(b.set(7, PresenceState::Busy), Some(PresenceState::Busy));
        assert_eq!(b.set(7, PresenceState::Busy), None);
        b.subscribe(key(1), &[8]);
        assert!(b.watchers(7).is_empty(), "resubscribing replaces the list");
        assert_eq!(b.session_closed(key(5), 7), None);
        assert_eq!(b.session_closed(key(6), 7), Some(PresenceState::Offline));
        b.session_closed(key(1), 3);
        assert!(b.watchers(8).is_empty(), "a closed session watches nothing");
    }
}
