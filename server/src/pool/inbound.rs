//! Connections to this chat server's pool port (8011): from the other servers of the pool,
//! whose frames are applied to the hub, and from `chatcap pool`, whose requests are
//! answered (`admin`).
//!
//! What another server tells about its users (rosters, presence) is kept per connection,
//! as sets: telling the same thing twice changes nothing, and when the connection ends it
//! is all taken back — that server's users leave the rosters and go offline here until it
//! connects again and tells its state anew. The end of a connection (and its start) also
//! brings this server's rooms up to the database: what that server committed but could
//! not send is read from there.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::handshake::{self, Conn};
use super::Pool;
use crate::chat::room::Pending;
use crate::protocol::pool::{PoolFrame, ADMIN};
use crate::protocol::session::codec;
use crate::protocol::PresenceState;
use crate::telemetry::catalog;
use crate::tls::accept::{accept_tcp, upgrade};

/// Accept pool connections until `shutdown`.
pub async fn serve(pool: Arc<Pool>, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = accept_tcp(&listener) => accepted,
        };
        tracing::debug!(%peer, "pool connection accepted");
        let _ = tcp.set_nodelay(true);
        let pool = pool.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let Some(stream) = upgrade(pool.trust().pool_acceptor(), tcp, peer).await else {
                metrics::counter!(catalog::POOL_LINKS_REFUSED.name).increment(1);
                return;
            };
            connection(pool, Framed::new(stream, codec()), peer, shutdown).await
        });
    }
}

async fn connection(
    pool: Arc<Pool>,
    mut conn: Conn,
    peer: std::net::SocketAddr,
    shutdown: CancellationToken,
) {
    let name = match handshake::accept(&mut conn, pool.name(), pool.trust()).await {
        Ok(name) => name,
        Err(e) => {
            metrics::counter!(catalog::POOL_LINKS_REFUSED.name).increment(1);
            tracing::warn!(%peer, "pool connection refused: {e}");
            return;
        }
    };
    if name == ADMIN {
        return super::admin::serve(&pool, conn).await;
    }
    if !pool.settings.peers.iter().any(|(n, _)| *n == name) {
        tracing::warn!(%name, "pool connection from a server not in the topology; closed");
        return;
    }
    // One live connection per server: a new one ends the old, then waits for it to
    // take back what it told.
    let stop = CancellationToken::new();
    let lock = {
        let mut inbound = pool.inbound.lock().unwrap_or_else(|p| p.into_inner());
        let entry = inbound
            .entry(name.clone())
            .or_insert_with(|| (CancellationToken::new(), Arc::default()));
        entry.0.cancel();
        entry.0 = stop.clone();
        entry.1.clone()
    };
    let _alive = lock.lock().await;
    pool.hub.catch_up().await;
    let mut told = Told::default();
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = stop.cancelled() => break,
            next = conn.next() => next,
        };
        let body = match next {
            Some(Ok(body)) => body.freeze(),
            Some(Err(e)) => {
                tracing::warn!(peer = %name, error = %e, "pool link read failed");
                break;
            }
            None => break,
        };
        match PoolFrame::decode(body) {
            Ok(frame) => told.apply(&pool, frame).await,
            Err(e) => {
                tracing::warn!(peer = %name, error = %e, "bad pool frame; closing the link");
                break;
            }
        }
    }
    told.take_back(&pool);
    pool.hub.catch_up().await;
}

/// What one connected server has told about its users.
#[derive(Default)]
struct Told {
    roster: HashSet<(i64, i64)>,
    presence: HashMap<i64, PresenceState>,
}

impl Told {
    async fn apply(&mut self, pool: &Pool, frame: PoolFrame) {
        let hub = &pool.hub;
        match frame {
            PoolFrame::Posted { persist, msg } => hub.offer(Pending {
                msg,
                persist,
                tag: None,
            }),
            PoolFrame::Roster(entries) => {
                let news: Vec<(i64, i64, bool)> = entries
                    .into_iter()
                    .filter(|&(room, user, present)| {
                        if present {
                            self.roster.insert((room, user))
                        } else {
                            self.roster.remove(&(room, user))
                        }
                    })
                    .collect();
                hub.remote_roster(&news);
            }
            PoolFrame::Presence(entries) => {
                for (user, state) in &entries {
                    if *state == PresenceState::Offline {
                        self.presence.remove(user);
                    } else {
                        self.presence.insert(*user, *state);
                    }
                }
                hub.remote_presence(&entries);
            }
            PoolFrame::Changed(change) => hub.apply_change(&change).await,
            other => tracing::warn!(?other, "unexpected pool frame from a peer; ignored"),
        }
    }

    /// The connection ended: its server's users leave the rosters and go offline here.
    fn take_back(self, pool: &Pool) {
        let gone: Vec<(i64, i64, bool)> = self
            .roster
            .into_iter()
            .map(|(room, user)| (room, user, false))
            .collect();
        pool.hub.remote_roster(&gone);
        let offline: Vec<(i64, PresenceState)> = self
            .presence
            .into_keys()
            .map(|user| (user, PresenceState::Offline))
            .collect();
        pool.hub.remote_presence(&offline);
    }
}
