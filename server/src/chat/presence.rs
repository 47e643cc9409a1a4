//! Presence: each user's state, and which sessions watch which users (their contacts).
//!
//! A session subscribes to a list of users (a Lync user has ~80 contacts) and gets a
//! `presence` push whenever one of them changes state. A user is `online` while any of
//! their sessions is open and has set nothing else, `offline` when the last one closes.
//! In a pool, each chat server tells the others the state of the users signed in through
//! it; a user with no session here is seen in the state another server last told.
//! Pure bookkeeping: the hub sends the pushes and pool frames this module computes.

use std::collections::HashMap;

use super::SessionKey;
pub use crate::protocol::PresenceState;

/// Most contacts one session may watch.
pub const MAX_CONTACTS: usize = 1000;

/// Who is in which state, and who watches whom.
#[derive(Debug, Default)]
pub struct PresenceBook {
    /// States of users with sessions here.
    states: HashMap<i64, PresenceState>,
    sessions: HashMap<i64, u32>,
    /// States other chat servers told (their users), offline ones left out.
    remote: HashMap<i64, PresenceState>,
    watchers: HashMap<i64, Vec<SessionKey>>,
    subscriptions: HashMap<SessionKey, Vec<i64>>,
}

/// What a presence event changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PresenceChange {
    /// The user's state here changed to this: tell the other chat servers.
    pub local: Option<PresenceState>,
    /// The state watchers see changed to this: tell them.
    pub seen: Option<PresenceState>,
}

impl PresenceBook {
    /// The state of a user as watchers see it.
    pub fn state(&self, user: i64) -> PresenceState {
        self.states
            .get(&user)
            .or_else(|| self.remote.get(&user))
            .copied()
            .unwrap_or_default()
    }

    /// Sessions watching `user`.
    pub fn watchers(&self, user: i64) -> &[SessionKey] {
        self.watchers.get(&user).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Apply `f` to the book and report what changed for `user`.
    fn change(&mut self, user: i64, f: impl FnOnce(&mut Self)) -> PresenceChange {
        let (local, seen) = (self.states.get(&user).copied(), self.state(user));
        f(self);
        let (local_now, seen_now) = (self.states.get(&user).copied(), self.state(user));
        PresenceChange {
            local: (local != local_now).then(|| local_now.unwrap_or_default()),
            seen: (seen != seen_now).then_some(seen_now),
        }
    }

    /// A session of `user` opened (the first one makes the user online).
    pub fn session_opened(&mut self, user: i64) -> PresenceChange {
        self.change(user, |b| {
            let n = b.sessions.entry(user).or_insert(0);
            *n += 1;
            if *n == 1 {
                b.states.insert(user, PresenceState::Online);
            }
        })
    }

    /// A session closed: forget its subscriptions (the last one makes the user offline
    /// here).
    pub fn session_closed(&mut self, key: SessionKey, user: i64) -> PresenceChange {
        self.unsubscribe(key);
        self.change(user, |b| {
            let n = b.sessions.entry(user).or_insert(1);
            *n = n.saturating_sub(1);
            if *n == 0 {
                b.sessions.remove(&user);
                b.states.remove(&user);
            }
        })
    }

    /// A user with a session here set their state.
    pub fn set(&mut self, user: i64, state: PresenceState) -> PresenceChange {
        self.change(user, |b| {
            if state == PresenceState::Offline {
                b.states.remove(&user);
            } else {
                b.states.insert(user, state);
            }
        })
    }

    /// Another chat server told a user's state.
    pub fn remote(&mut self, user: i64, state: PresenceState) -> PresenceChange {
        self.change(user, |b| {
            if state == PresenceState::Offline {
                b.remote.remove(&user);
            } else {
                b.remote.insert(user, state);
            }
        })
    }

    /// The state of every user with a session here (what another server is told when
    /// it connects).
    pub fn local_states(&self) -> Vec<(i64, PresenceState)> {
        self.states.iter().map(|(u, s)| (*u, *s)).collect()
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
        let online = PresenceChange {
            local: Some(PresenceState::Online),
            seen: Some(PresenceState::Online),
        };
        assert_eq!(b.session_opened(7), online);
        assert_eq!(
            b.session_opened(7),
            PresenceChange::default(),
            "a second endpoint changes nothing"
        );
        let states = b.subscribe(key(1), &[7, 8, 7]);
        assert_eq!(
            states,
            vec![(7, PresenceState::Online), (8, PresenceState::Offline)]
        );
        assert_eq!(b.watchers(7), &[key(1)]);
        assert_eq!(
            b.set(7, PresenceState::Busy).seen,
            Some(PresenceState::Busy)
        );
        assert_eq!(b.set(7, PresenceState::Busy), PresenceChange::default());
        b.subscribe(key(1), &[8]);
        assert!(b.watchers(7).is_empty(), "resubscribing replaces the list");
        assert_eq!(b.session_closed(key(5), 7), PresenceChange::default());
        assert_eq!(
            b.session_closed(key(6), 7).seen,
            Some(PresenceState::Offline)
        );
        b.session_closed(key(1), 3);
        assert!(b.watchers(8).is_empty(), "a closed session watches nothing");
    }

    #[test]
    fn other_servers_users_are_seen_in_the_state_told() {
        let mut b = PresenceBook::default();
        let told = b.remote(9, PresenceState::Away);
        assert_eq!((told.local, told.seen), (None, Some(PresenceState::Away)));
        assert_eq!(
            b.session_opened(9).seen,
            Some(PresenceState::Online),
            "a session here wins"
        );
        assert_eq!(b.session_closed(key(2), 9).seen, Some(PresenceState::Away));
        assert_eq!(
            b.remote(9, PresenceState::Offline).seen,
            Some(PresenceState::Offline)
        );
        assert!(b.local_states().is_empty());
    }
}
