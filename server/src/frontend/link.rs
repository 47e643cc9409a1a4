//! The front end's side of a session link: one TCP connection to a chat server carrying
//! every session of this front end, kept up by a supervisor that reconnects with backoff.
//!
//! Frames from the chat server are routed to the sessions' bounded queues. A session whose
//! queue is full is a slow consumer: it is kicked (`bye`, reason `slow_consumer`) rather
//! than allowed to hold up anyone else. When the link drops, every session on it ends with
//! reason `link_lost`; clients reconnect and sign in again (and land on another chat
//! server of the front end's list when this one stays down).
//!
//! The chat server answers `Hello` with `Welcome`, which carries the key that checks
//! sign-in tokens: the link counts as up only after it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::FrontEnd;
use crate::auth::{link_proof, TokenKey};
use crate::protocol::session::{codec, Frame, VERSION};

/// Frames queued toward the chat server.
const UPLINK_QUEUE: usize = 1 << 14;

/// Keep the link `index` (to the chat server at `addr`) up until `shutdown`.
pub async fn supervise(
    fe: Arc<FrontEnd>,
    index: usize,
    addr: SocketAddr,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(50);
    while !shutdown.is_cancelled() {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                delay = Duration::from_millis(50);
                run(&fe, index, stream, &shutdown).await;
                fe.link_lost(index);
            }
            Err(e) => tracing::warn!(%addr, error = %e, "chat server unreachable; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

async fn run(fe: &Arc<FrontEnd>, index: usize, stream: TcpStream, shutdown: &CancellationToken) {
    let _ = stream.set_nodelay(true);
    let (mut sink, mut source) = Framed::new(stream, codec()).split();
    let hello = Frame::Hello {
        version: VERSION,
        name: fe.name.clone(),
    };
    if sink.send(hello.to_bytes()).await.is_err() {
        return;
    }
    // `Welcome`, or first `Challenge` (a chat server with a link secret), then `Welcome`.
    loop {
        let frame = match source.next().await {
            Some(Ok(body)) => Frame::decode(body.freeze()),
            _ => return,
        };
        match frame {
            Ok(Frame::Welcome { secret }) => {
                fe.set_tokens(TokenKey::new(secret.to_vec()));
                break;
            }
            Ok(Frame::Challenge { nonce }) => {
                let Some(link_secret) = &fe.link_secret else {
                    tracing::error!(
                        link = index,
                        "the chat server asks for the link secret: set link_secret (--link-secret)"
                    );
                    return;
                };
                let mac = link_proof(link_secret.as_bytes(), &nonce, &fe.name);
                let proof = Frame::Proof { mac: mac.into() };
                if sink.send(proof.to_bytes()).await.is_err() {
                    return;
                }
            }
            other => {
                tracing::warn!(?other, "chat server did not answer Hello with Welcome");
                return;
            }
        }
    }
    let (tx, mut rx) = mpsc::channel::<Frame>(UPLINK_QUEUE);
    fe.set_link(index, Some(tx));
    tracing::info!(link = index, "link to chat server up");
    let writer = async {
        while let Some(frame) = rx.recv().await {
            if sink.feed(frame.to_bytes()).await.is_err() {
                break;
            }
            if rx.is_empty() && sink.flush().await.is_err() {
                break;
            }
        }
    };
    let reader = async {
        while let Some(Ok(body)) = source.next().await {
            match Frame::decode(body.freeze()) {
                Ok(Frame::Send { session, json }) => fe.deliver(&[session], json),
                Ok(Frame::Fanout { sessions, json }) => fe.deliver(&sessions, json),
                Ok(Frame::Kick { session, reason }) => fe.kick(session, &reason),
                other => {
                    tracing::warn!(
                        ?other,
                        "unexpected frame from the chat server; reconnecting"
                    );
                    break;
                }
            }
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = writer => {}
        _ = reader => {}
    }
    fe.set_link(index, None);
    tracing::warn!(link = index, "link to chat server down");
}
