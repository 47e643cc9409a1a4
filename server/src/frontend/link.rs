//! The front end's side of a session link: one TCP connection to a chat server carrying
//! every session of this front end, kept up by a supervisor that reconnects with backoff.
//!
//! Frames from the chat server are routed to the sessions' bounded queues. A session whose
//! queue is full is a slow consumer: it is kicked (`bye`, reason `slow_consumer`) rather
//! than allowed to hold up anyone else. When the link drops, the client sessions on it move
//! to other chat servers of the pool (`sessions`); with nowhere to go they end with reason
//! `link_lost`, and clients reconnect and sign in again.
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
use crate::tls::accept::HANDSHAKE_TIMEOUT;
use crate::tls::connect::upgrade;
use crate::tls::Stream;

/// Frames queued toward the chat server (room for every session of a front end to be
/// moved here at once).
const UPLINK_QUEUE: usize = 1 << 16;

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
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                let handshake =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, upgrade(fe.trust.connector(), tcp));
                let upgraded = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    done = handshake => done.unwrap_or_else(|_| Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
                    ))),
                };
                match upgraded {
                    Ok(stream) => {
                        // Back off from a server that refuses this front end (its
                        // certificate or secret) as from one that is down.
                        if run(&fe, index, stream, &shutdown).await {
                            delay = Duration::from_millis(50);
                        }
                        fe.move_sessions(index, false);
                    }
                    Err(e) => tracing::warn!(
                        %addr,
                        "link to chat server refused: TLS handshake failed: {e}; retrying"
                    ),
                }
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

/// Run one link on `stream` until it ends; true when it came up (`Welcome`).
async fn run(
    fe: &Arc<FrontEnd>,
    index: usize,
    stream: Stream,
    shutdown: &CancellationToken,
) -> bool {
    let (mut sink, mut source) = Framed::new(stream, codec()).split();
    let hello = Frame::Hello {
        version: VERSION,
        name: fe.name.clone(),
    };
    if sink.send(hello.to_bytes()).await.is_err() {
        return false;
    }
    // `Welcome`, or first `Challenge` (a chat server with a link secret), then `Welcome`.
    loop {
        let frame = match source.next().await {
            Some(Ok(body)) => Frame::decode(body.freeze()),
            // With link TLS, a chat server that refuses this front end's certificate says
            // so only now, after the client side of the handshake has finished.
            Some(Err(e)) => {
                tracing::warn!(
                    link = index,
                    "link to chat server closed before Welcome: {e}"
                );
                return false;
            }
            None => {
                tracing::warn!(link = index, "link to chat server closed before Welcome");
                return false;
            }
        };
        match frame {
            Ok(Frame::Welcome { secret }) => {
                fe.set_tokens(TokenKey::new(secret.to_vec()));
                break;
            }
            Ok(Frame::Challenge { nonce }) => {
                let Some(link_secret) = fe.trust.secret() else {
                    tracing::error!(
                        link = index,
                        "the chat server asks for the link secret: set link_secret (--link-secret)"
                    );
                    return false;
                };
                let mac = link_proof(link_secret, &nonce, &fe.name);
                let proof = Frame::Proof { mac: mac.into() };
                if sink.send(proof.to_bytes()).await.is_err() {
                    return false;
                }
            }
            other => {
                tracing::warn!(?other, "chat server did not answer Hello with Welcome");
                return false;
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
                Ok(Frame::Send { session, json }) => fe.deliver(index, None, &[session], json),
                Ok(Frame::Fanout { sessions, json }) => fe.deliver(index, None, &sessions, json),
                Ok(Frame::Chat {
                    room,
                    seq,
                    sessions,
                    json,
                }) => fe.deliver(index, Some((room, seq)), &sessions, json),
                Ok(Frame::Kick { session, reason }) => fe.kick_from(index, session, &reason),
                Ok(Frame::Status {
                    accepting,
                    evacuate,
                }) => fe.set_status(index, accepting, evacuate),
                Ok(f @ (Frame::Joined { .. } | Frame::Left { .. } | Frame::Watch { .. })) => {
                    fe.track(index, f)
                }
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
    true
}
