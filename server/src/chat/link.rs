//! The chat server's session-protocol listener (port 5041): accepts links from front ends,
//! reads their frames into the hub, and writes the hub's frames back, batching writes.
//!
//! A link that breaks the protocol (bad frame, wrong version) is closed; its sessions end.
//! With link TLS, a front end must first complete a mutual TLS handshake with a
//! certificate signed by the link CA (`tls::Acceptor` logs why one was refused).

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use bytes::Bytes;

use super::{Hub, SessionKey};
use crate::auth::{link_proof_ok, TokenKey};
use crate::protocol::session::{codec, Frame, VERSION};
use crate::telemetry::catalog;
use crate::tls::accept::{accept_tcp, upgrade};
use crate::tls::LinkTrust;

/// Accept links until `shutdown`; each accepted link is welcomed with `tokens` — after its
/// TLS handshake and its proof of the link secret, as `trust` asks.
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    tokens: TokenKey,
    trust: LinkTrust,
    shutdown: CancellationToken,
) {
    let secret = Bytes::copy_from_slice(tokens.secret());
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = accept_tcp(&listener) => accepted,
        };
        tracing::debug!(%peer, "link accepted");
        let _ = tcp.set_nodelay(true);
        tokio::spawn(run_link(
            hub.clone(),
            (tcp, peer),
            secret.clone(),
            trust.clone(),
            shutdown.clone(),
        ));
    }
}

/// How long a front end has to send `Hello` (and `Proof`).
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

async fn run_link(
    hub: Arc<Hub>,
    (tcp, peer): (TcpStream, SocketAddr),
    secret: Bytes,
    trust: LinkTrust,
    shutdown: CancellationToken,
) {
    let Some(stream) = upgrade(trust.acceptor(), tcp, peer).await else {
        metrics::counter!(catalog::LINKS_REFUSED.name).increment(1);
        return;
    };
    let (mut sink, mut source) = Framed::new(stream, codec()).split();
    let name = match tokio::time::timeout(HANDSHAKE, source.next()).await {
        Ok(Some(Ok(body))) => match Frame::decode(body.freeze()) {
            Ok(Frame::Hello {
                version: VERSION,
                name,
            }) => name,
            other => {
                tracing::warn!(?other, "link refused: first frame must be Hello v{VERSION}");
                return;
            }
        },
        _ => return,
    };
    if let Some(link_secret) = trust.secret() {
        let nonce: [u8; 32] = rand::random();
        let challenge = Frame::Challenge {
            nonce: Bytes::copy_from_slice(&nonce),
        };
        if sink.send(challenge.to_bytes()).await.is_err() {
            return;
        }
        let proved = match tokio::time::timeout(HANDSHAKE, source.next()).await {
            Ok(Some(Ok(body))) => matches!(
                Frame::decode(body.freeze()),
                Ok(Frame::Proof { mac }) if link_proof_ok(link_secret, &nonce, &name, &mac)
            ),
            _ => false,
        };
        if !proved {
            metrics::counter!(catalog::LINKS_REFUSED.name).increment(1);
            tracing::warn!(front_end = %name, "link refused: no valid proof of the link secret");
            return;
        }
    }
    tracing::info!(front_end = %name, "link up");
    if sink
        .send(Frame::Welcome { secret }.to_bytes())
        .await
        .is_err()
    {
        return;
    }
    let (tx, mut rx) = mpsc::channel::<Frame>(hub.config.link_queue);
    let closed = CancellationToken::new();
    let link = hub.add_link(tx, closed.clone());
    // How this server serves goes first: a front end routes nothing here before it knows.
    hub.send_frame(link, hub.status_frame());
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.feed(frame.to_bytes()).await.is_err() {
                break;
            }
            // Flush once the queue is empty: many frames, one write.
            if rx.is_empty() && sink.flush().await.is_err() {
                break;
            }
        }
    });
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = closed.cancelled() => break,
            next = source.next() => next,
        };
        let body = match next {
            Some(Ok(body)) => body.freeze(),
            Some(Err(e)) => {
                tracing::warn!(link, error = %e, "link read failed");
                break;
            }
            None => break,
        };
        match Frame::decode(body) {
            Ok(Frame::Open { session, user }) => {
                hub.open_session(SessionKey { link, session }, user)
            }
            Ok(Frame::Service { session, user }) => {
                // A user created after this server loaded its directory (`chatcap user
                // add`, another server of the pool) is looked up before the call's request,
                // which follows on this link, is read. Rare, and one query.
                if let Err(e) = hub.learn_user_id(user).await {
                    tracing::error!(error = %e, user, "storage failure looking up a user");
                }
                hub.open_service_session(SessionKey { link, session }, user)
            }
            Ok(Frame::Request { session, json }) => hub.handle(SessionKey { link, session }, json),
            Ok(Frame::Close { session }) => hub.close_session(SessionKey { link, session }),
            Ok(Frame::Resume {
                session,
                user,
                rooms,
                contacts,
            }) => hub.resume(SessionKey { link, session }, user, rooms, contacts),
            Ok(other) => {
                tracing::warn!(
                    link,
                    ?other,
                    "unexpected frame from a front end; closing the link"
                );
                break;
            }
            Err(e) => {
                tracing::warn!(link, error = %e, "bad frame from a front end; closing the link");
                break;
            }
        }
    }
    hub.remove_link(link);
    // The writer may be blocked on a front end that stopped reading: don't wait for it.
    writer.abort();
    let _ = writer.await;
    tracing::info!(link, "link down");
}
