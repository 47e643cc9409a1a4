//! One client connection: sign-in, then forwarding requests to the chat server and the
//! session's queue back to the socket.
//!
//! Policy, as documented in `docs/PROTOCOL.md`:
//! - The first request must be `sign_in`; others get `not_signed_in` and the connection
//!   stays open until the sign-in timeout. A bad or expired token gets its error and the
//!   connection is closed (close code 1008).
//! - Each session may send `rate_per_sec` requests per second (bursts of `rate_burst`);
//!   beyond that requests are answered `rate_limited` and dropped; the connection stays.
//! - Binary frames get `bad_request`. Messages above `max_message_bytes` close the
//!   connection (code 1009).
//! - A session whose outgoing queue fills (a client that does not read) is closed with
//!   `bye` reason `slow_consumer` (code 1008): the kick interrupts a write blocked on that
//!   client, the `bye` gets one second, then the connection is dropped. Nobody else waits
//!   for it: the room's other members keep receiving every message.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;

use super::rate::Bucket;
use super::{FrontEnd, VerifyError};
use crate::auth::TokenError;
use crate::protocol::decode::RequestHead;
use crate::protocol::reply::{error_json, push_json};
use crate::protocol::session::Frame;
use crate::protocol::{ErrorCode, Op, Push, Request, WireError};
use crate::telemetry::catalog;

/// Longest wait for one write to a client; a client that does not read for this long is
/// dropped (its task must not hang on it).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

async fn send_msg(ws: &mut WebSocket, msg: WsMessage) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, ws.send(msg)).await,
        Ok(Ok(()))
    )
}

async fn send_text(ws: &mut WebSocket, text: String) -> bool {
    send_msg(ws, WsMessage::Text(text.into())).await
}

async fn close(ws: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason.to_string()),
    };
    send_msg(ws, WsMessage::Close(Some(frame))).await;
}

/// Most frames written before one flush.
const BATCH: usize = 64;

/// Write `first` and whatever else is queued (up to [`BATCH`]), then flush once: many
/// acknowledgements and pushes, one system call.
async fn send_batch(
    ws: &mut WebSocket,
    first: Utf8Bytes,
    rx: &mut tokio::sync::mpsc::Receiver<Utf8Bytes>,
) -> bool {
    let write = async {
        ws.feed(WsMessage::Text(first)).await?;
        for _ in 1..BATCH {
            match rx.try_recv() {
                Ok(text) => ws.feed(WsMessage::Text(text)).await?,
                Err(_) => break,
            }
        }
        ws.flush().await
    };
    matches!(tokio::time::timeout(SEND_TIMEOUT, write).await, Ok(Ok(())))
}

/// The close code for a `bye` reason: 1001 going away (shutdown), 1012 service restart
/// (link to the chat server lost: reconnect), 1008 policy (slow consumer, bad token).
fn close_code(reason: &str) -> u16 {
    match reason {
        "shutdown" => 1001,
        "link_lost" => 1012,
        _ => 1008,
    }
}

fn request_id(text: &str) -> Option<u64> {
    RequestHead::read(text.as_bytes()).and_then(|h| h.id())
}

/// Wait for a valid `sign_in`; returns (user, the request's JSON) or None when the
/// connection is to end.
async fn sign_in(fe: &FrontEnd, ws: &mut WebSocket) -> Option<(i64, Bytes)> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(fe.config.sign_in_timeout_secs);
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.recv()).await {
            Err(_) => {
                close(ws, 1008, "sign-in timeout").await;
                return None;
            }
            Ok(Some(Ok(m))) => m,
            Ok(_) => return None,
        };
        let text = match msg {
            WsMessage::Text(t) => t,
            WsMessage::Close(_) => return None,
            WsMessage::Binary(_) => {
                let e = WireError::new(
                    ErrorCode::BadRequest,
                    "binary frames are not part of the protocol",
                );
                send_text(ws, error_json(None, &e)).await;
                continue;
            }
            _ => continue,
        };
        let req: Request = match crate::protocol::decode::decode(text.as_bytes()) {
            Ok(r) => r,
            Err((id, err)) => {
                send_text(ws, error_json(id, &err)).await;
                continue;
            }
        };
        let Op::SignIn { token } = &req.op else {
            let err = WireError::new(ErrorCode::NotSignedIn, "sign in first");
            send_text(ws, error_json(Some(req.id), &err)).await;
            continue;
        };
        match fe.verify(token) {
            Ok(user) => return Some((user, Bytes::from(text.as_str().to_owned()))),
            Err(VerifyError::NotReady) => {
                let e = WireError::new(ErrorCode::Busy, "no chat server reachable; retry later");
                send_text(ws, error_json(Some(req.id), &e)).await;
                close(ws, 1013, "try again later").await;
                return None;
            }
            Err(VerifyError::Token(e)) => {
                let code = match e {
                    TokenError::Invalid => ErrorCode::InvalidToken,
                    TokenError::Expired => ErrorCode::TokenExpired,
                };
                metrics::counter!(catalog::ERRORS.name, "code" => code.as_str()).increment(1);
                send_text(
                    ws,
                    error_json(Some(req.id), &WireError::new(code, e.to_string())),
                )
                .await;
                close(ws, 1008, code.as_str()).await;
                return None;
            }
        }
    }
}

/// Serve one client connection to its end.
pub async fn serve(fe: Arc<FrontEnd>, mut ws: WebSocket) {
    let Some((user, sign_in_json)) = sign_in(&fe, &mut ws).await else {
        return;
    };
    let Some(registered) = fe.register(user, fe.config.session_queue, false) else {
        let e = WireError::new(ErrorCode::Busy, "no chat server reachable; retry later");
        send_text(
            &mut ws,
            error_json(
                request_id(std::str::from_utf8(&sign_in_json).unwrap_or("")),
                &e,
            ),
        )
        .await;
        close(&mut ws, 1013, "try again later").await;
        return;
    };
    let super::Registered {
        id: session,
        uplink,
        mut rx,
        mut kick,
    } = registered;
    let opened = uplink.send(Frame::Open { session, user }).await.is_ok()
        && uplink
            .send(Frame::Request {
                session,
                json: sign_in_json,
            })
            .await
            .is_ok();
    // Open upstream: from now on the session moves with its chat server's fate.
    fe.opened(session);
    drop(uplink);
    let mut bucket = Bucket::full(fe.config.rate_burst);
    let mut reason = if opened {
        None
    } else {
        Some("link_lost".to_string())
    };
    while reason.is_none() {
        // Biased: what the server queued for the client goes out before a kick is acted
        // on, so an error reply always precedes the `bye` that follows it.
        tokio::select! {
            biased;
            out = rx.recv() => match out {
                // A write blocked on a client that does not read must not outlive the
                // session: a kick (slow consumer, shutdown) interrupts it.
                Some(text) => tokio::select! {
                    sent = send_batch(&mut ws, text, &mut rx) => if !sent { break; },
                    why = &mut kick => {
                        reason = Some(why.unwrap_or_else(|_| "shutdown".into()));
                    }
                },
                None => break,
            },
            incoming = ws.recv() => {
                let msg = match incoming {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        // Oversized messages and protocol violations end up here.
                        tracing::debug!(session, error = %e, "client connection failed");
                        if e.to_string().contains("too long") || e.to_string().contains("Space limit") {
                            close(&mut ws, 1009, "message too big").await;
                        }
                        break;
                    }
                    None => break,
                };
                match msg {
                    WsMessage::Text(text) => {
                        if !bucket.take(fe.config.rate_per_sec, fe.config.rate_burst) {
                            metrics::counter!(catalog::ERRORS.name, "code" => "rate_limited").increment(1);
                            let e = WireError::new(ErrorCode::RateLimited, "too many requests; slow down");
                            if !send_text(&mut ws, error_json(request_id(text.as_str()), &e)).await { break; }
                            continue;
                        }
                        let json = Bytes::from(text.as_str().to_owned());
                        // Routed by the session table: the session may have moved.
                        let sent = match fe.uplink_of(session) {
                            Some(tx) => tx.send(Frame::Request { session, json }).await.is_ok(),
                            None => false,
                        };
                        if !sent {
                            // Between a server's loss and the session's move (or its end).
                            let e = WireError::new(ErrorCode::Busy, "no chat server reachable; retry later");
                            if !send_text(&mut ws, error_json(request_id(text.as_str()), &e)).await { break; }
                        }
                    }
                    WsMessage::Binary(_) => {
                        let e = WireError::new(ErrorCode::BadRequest, "binary frames are not part of the protocol");
                        if !send_text(&mut ws, error_json(None, &e)).await { break; }
                    }
                    WsMessage::Close(_) => break,
                    _ => {}
                }
            }
            why = &mut kick => {
                reason = Some(why.unwrap_or_else(|_| "shutdown".into()));
            }
        }
    }
    let uplink = fe.uplink_of(session);
    fe.unregister(session);
    // Waits for room in the queue: a lost Close would leave the session open upstream.
    if let Some(uplink) = uplink {
        let _ = uplink.send(Frame::Close { session }).await;
    }
    if let Some(why) = reason {
        // A slow consumer gets a short chance to read its `bye`: it may be reading slowly,
        // or not at all (then the connection is simply dropped).
        let grace = if why == "slow_consumer" {
            Duration::from_secs(1)
        } else {
            SEND_TIMEOUT
        };
        let farewell = async {
            send_text(
                &mut ws,
                push_json(&Push::Bye {
                    reason: why.clone(),
                }),
            )
            .await;
            close(&mut ws, close_code(&why), &why).await;
        };
        let _ = tokio::time::timeout(grace, farewell).await;
    }
}
