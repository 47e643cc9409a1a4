//! The hub's side of presence: telling the other chat servers and the watching sessions
//! what a presence event changed, and the `set_presence` and `subscribe` operations. The
//! bookkeeping itself is [`super::presence`].

use std::collections::HashMap;

use bytes::Bytes;

use super::{presence, Hub, SessionKey};
use crate::protocol::pool::PoolFrame;
use crate::protocol::reply::push_json;
use crate::protocol::session::Frame;
use crate::protocol::{ErrorCode, Op, Push, WireError};

impl Hub {
    pub(super) fn presence_book(&self) -> std::sync::MutexGuard<'_, presence::PresenceBook> {
        self.presence.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tell what a presence event changed: the other chat servers (the user's state
    /// here), and the sessions watching the user (the state they see).
    pub(crate) fn presence_changed(&self, user: i64, change: presence::PresenceChange) {
        if let Some(state) = change.local {
            self.outbox.send(&PoolFrame::Presence(vec![(user, state)]));
        }
        if let Some(state) = change.seen {
            self.push_presence(user, state);
        }
    }

    /// Tell every session watching `user` its new state, one frame per link.
    pub(super) fn push_presence(&self, user: i64, state: crate::protocol::PresenceState) {
        let mut by_link: HashMap<u32, Vec<u64>> = HashMap::new();
        for key in self.presence_book().watchers(user) {
            by_link.entry(key.link).or_default().push(key.session);
        }
        if by_link.is_empty() {
            return;
        }
        let json = Bytes::from(push_json(&Push::Presence { user, state }));
        for (link, sessions) in by_link {
            self.send_frame(
                link,
                Frame::Fanout {
                    sessions,
                    json: json.clone(),
                },
            );
        }
    }

    /// `set_presence` and `subscribe`.
    pub(super) fn presence_op(
        &self,
        key: SessionKey,
        user: i64,
        id: u64,
        op: &Op,
    ) -> Result<String, WireError> {
        match op {
            Op::SetPresence { state } => {
                let change = self.presence_book().set(user, *state);
                self.presence_changed(user, change);
                Ok(crate::protocol::reply::reply_json(
                    id,
                    &serde_json::json!({}),
                ))
            }
            Op::Subscribe { users } => {
                if users.len() > presence::MAX_CONTACTS {
                    return Err(WireError::new(
                        ErrorCode::InvalidArgument,
                        format!("at most {} contacts", presence::MAX_CONTACTS),
                    ));
                }
                let states = self.presence_book().subscribe(key, users);
                let watch = Frame::Watch {
                    session: key.session,
                    users: states.iter().map(|(u, _)| *u).collect(),
                };
                self.send_frame(key.link, watch);
                let presence = states
                    .into_iter()
                    .map(|(user, state)| crate::protocol::reply::PresenceEntry { user, state })
                    .collect();
                Ok(crate::protocol::reply::reply_json(
                    id,
                    &crate::protocol::reply::PresenceList { presence },
                ))
            }
            other => Err(WireError::new(
                ErrorCode::Internal,
                format!("{} is not a presence operation", other.name()),
            )),
        }
    }
}
