//! The connection this chat server keeps to each other server of its pool. Once it is
//! open, this server sends everything its outbox queues for that server: first who of its
//! users are in which rooms and their presence (the receiver rebuilds what it knows of
//! this server from that), then each commit, roster and presence change, and directory
//! change as it happens. It reconnects with backoff while the pool runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use tokio_util::sync::CancellationToken;

use super::handshake::{self, Conn, HandshakeError};
use super::Pool;
use crate::protocol::pool::{PoolFrame, MAX_ENTRIES};

/// Keep the connection to `peer` (at `addr`) up until `shutdown`.
pub async fn keep(pool: Arc<Pool>, peer: String, addr: SocketAddr, shutdown: CancellationToken) {
    let mut delay = Duration::from_millis(50);
    let mut warned = false;
    while !shutdown.is_cancelled() {
        match handshake::dial(addr, pool.name(), pool.trust()).await {
            Ok((conn, answered)) if answered == peer => {
                delay = Duration::from_millis(50);
                warned = false;
                tracing::info!(%peer, "pool link up");
                pool.set_outbound(&peer, true);
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = send_all(&pool, &peer, conn) => {}
                }
                pool.hub.outbox.detach(&peer);
                pool.set_outbound(&peer, false);
                tracing::warn!(%peer, "pool link down");
            }
            Ok((_, answered)) => {
                tracing::error!(%peer, %addr, %answered, "a different server answers at this address; check the topology");
            }
            Err(e) => {
                // Expected while the peer starts or after it died: say it once per outage.
                if !warned {
                    match e {
                        HandshakeError::Tls(_) | HandshakeError::Refused(_) => tracing::warn!(
                            %peer, %addr, "pool link refused: {e}; retrying"
                        ),
                        _ => {
                            tracing::warn!(%peer, %addr, error = %e, "pool peer unreachable; retrying")
                        }
                    }
                    warned = true;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Send the snapshot, then the outbox's queue, until either side fails.
async fn send_all(pool: &Pool, peer: &str, mut conn: Conn) {
    // Queue first, snapshot second: a change made in between is in both, and applying a
    // roster or presence entry twice changes nothing on the receiving side.
    let mut rx = pool.hub.outbox.attach(peer);
    let roster = pool.hub.local_roster();
    let presence = pool.hub.local_presence();
    for chunk in roster.chunks(MAX_ENTRIES) {
        if conn
            .feed(PoolFrame::Roster(chunk.to_vec()).to_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
    for chunk in presence.chunks(MAX_ENTRIES) {
        if conn
            .feed(PoolFrame::Presence(chunk.to_vec()).to_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
    if SinkExt::<bytes::Bytes>::flush(&mut conn).await.is_err() {
        return;
    }
    while let Some(bytes) = rx.recv().await {
        if conn.feed(bytes).await.is_err() {
            return;
        }
        // Flush once the queue is empty: many frames, one write.
        if rx.is_empty() && SinkExt::<bytes::Bytes>::flush(&mut conn).await.is_err() {
            return;
        }
    }
}

impl Pool {
    fn set_outbound(&self, peer: &str, up: bool) {
        let mut set = self.outbound.lock().unwrap_or_else(|p| p.into_inner());
        if up {
            set.insert(peer.to_string());
        } else {
            set.remove(peer);
        }
    }

    /// Servers this one is connected to now, sorted.
    pub fn connected(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .outbound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        v.sort();
        v
    }
}
