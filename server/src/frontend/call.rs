//! [`FrontEnd::call`]: one operation run as a user on a chat server, for the web services
//! (room management, files), with exactly the rights the chat protocol gives that user.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::sessions::Registered;
use super::FrontEnd;
use crate::protocol::reply::ServerMsg;
use crate::protocol::session::Frame;
use crate::protocol::{ErrorCode, Op, Request, WireError};

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

/// Longest wait for the answer to a web-service call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl FrontEnd {
    /// Run one operation as `user` on the user's chat server, with exactly the rights the
    /// chat protocol gives that user: the web services' single way in. Returns the
    /// operation's `result`.
    pub async fn call(&self, user: i64, op: Op) -> Result<serde_json::Value, CallError> {
        let Registered {
            id,
            uplink,
            mut rx,
            mut kick,
        } = self
            .register(user, 64, false)
            .ok_or(CallError::Unavailable)?;
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
