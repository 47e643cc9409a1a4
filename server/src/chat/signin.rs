//! Signing a session in: the user it was opened for is looked up (in the directory, or
//! once in the database for a user created after this server loaded it), watchers learn
//! the user is online, and the session is answered; or it is refused and ended.

use std::sync::Arc;

use super::{Hub, SessionKey};
use crate::model::User;
use crate::protocol::session::Frame;
use crate::protocol::{ErrorCode, WireError};
use crate::store::StoreError;

impl Hub {
    /// The user `id`, from the directory or — for a user created after this server loaded
    /// its directory (`chatcap user add`, another server of the pool) — from the database,
    /// then kept in the directory. `None`: no such user.
    pub async fn learn_user_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        if let Some(u) = self.dir().users.get(&id).cloned() {
            return Ok(Some(u));
        }
        let found = self.store.user_by_id(id).await?;
        if let Some(u) = &found {
            self.dir_mut().users.insert(u.id, u.clone());
        }
        Ok(found)
    }

    pub(super) fn sign_in(self: &Arc<Self>, key: SessionKey, id: u64) {
        let outcome = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            match sessions.get_mut(&key) {
                None => Err(WireError::new(ErrorCode::NotSignedIn, "no such session")),
                Some(s) if s.signed_in => Err(WireError::new(
                    ErrorCode::AlreadySignedIn,
                    "this connection is signed in already",
                )),
                Some(s) => {
                    s.signed_in = true;
                    Ok(s.user)
                }
            }
        };
        let user = match outcome {
            Ok(user) => user,
            Err(e) => return self.send_error(key, Some(id), &e),
        };
        let known = self.dir().users.get(&user).cloned();
        if let Some(u) = known {
            return self.signed_in(key, id, &u);
        }
        let hub = self.clone();
        tokio::spawn(async move {
            match hub.learn_user_id(user).await {
                Ok(Some(u)) => hub.signed_in(key, id, &u),
                Ok(None) => hub.refuse_sign_in(
                    key,
                    id,
                    WireError::new(ErrorCode::InvalidToken, "unknown user"),
                ),
                Err(e) => {
                    tracing::error!(error = %e, "storage failure at sign-in");
                    let err = WireError::new(
                        ErrorCode::Internal,
                        "storage unavailable; sign in again later",
                    );
                    hub.refuse_sign_in(key, id, err);
                }
            }
        });
    }

    fn signed_in(&self, key: SessionKey, id: u64, u: &User) {
        let change = self.presence_book().session_opened(u.id);
        self.presence_changed(u.id, change);
        let reply = crate::protocol::reply::SignedIn {
            user: crate::protocol::UserInfo {
                id: u.id,
                name: u.name.clone(),
                admin: u.admin,
            },
            server_time_us: crate::model::now_us(),
        };
        self.send(key, crate::protocol::reply::reply_json(id, &reply));
    }

    /// Refuse a sign-in: the error, then the end of the session.
    fn refuse_sign_in(&self, key: SessionKey, id: u64, e: WireError) {
        self.send_error(key, Some(id), &e);
        let reason = e.code.as_str().to_string();
        self.send_frame(
            key.link,
            Frame::Kick {
                session: key.session,
                reason,
            },
        );
        // Not signed in after all: nothing to tell watchers.
        if let Some(s) = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&key)
        {
            s.signed_in = false;
        }
        self.close_session(key);
    }
}
