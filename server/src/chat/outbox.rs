//! What this chat server tells the other chat servers of its pool: one bounded queue per
//! connected peer, fed by the hub (commits, roster and presence changes, directory
//! changes) and drained by that peer's connection task (`pool::dial`).
//!
//! The hub only ever pushes here; it never waits, and it never learns about sockets. A
//! peer whose queue is full is cut off (its queue dropped): its connection task sees the
//! queue close, reconnects, and starts again with a full roster, while the receiving side
//! fills any gap in the messages from the database.

use std::collections::HashMap;
use std::sync::RwLock;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::protocol::pool::PoolFrame;
use crate::telemetry::catalog;

/// Frames queued toward one peer before it counts as stalled.
pub const PEER_QUEUE: usize = 1 << 18;

/// The queues toward the connected peers, by peer name.
#[derive(Default)]
pub struct Outbox {
    peers: RwLock<HashMap<String, mpsc::Sender<Bytes>>>,
}

impl Outbox {
    /// A queue toward `peer` (replacing any earlier one); its receiver feeds the connection.
    pub fn attach(&self, peer: &str) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        self.peers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer.to_string(), tx);
        rx
    }

    /// Stop queueing toward `peer`.
    pub fn detach(&self, peer: &str) {
        self.peers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(peer);
    }

    /// True when at least one peer is connected (a single box never has one).
    pub fn any(&self) -> bool {
        !self
            .peers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Queue `frame` toward every connected peer; encoded once, and only when there is one.
    pub fn send(&self, frame: &PoolFrame) {
        if !self.any() {
            return;
        }
        let bytes = frame.to_bytes();
        let mut stalled = Vec::new();
        for (name, tx) in self.peers.read().unwrap_or_else(|p| p.into_inner()).iter() {
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(bytes.clone()) {
                stalled.push(name.clone());
            }
        }
        for name in stalled {
            tracing::warn!(peer = %name, "pool link queue full; reconnecting it");
            metrics::counter!(catalog::POOL_LINKS_DROPPED.name).increment(1);
            self.detach(&name);
        }
    }
}
