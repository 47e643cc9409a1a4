//! A chat server's part in a multiple-server pool (docs/POOL.md): its connections to the
//! other chat servers on port 8011, its lease on an active place, and the administration
//! requests of `chatcap pool`.
//!
//! # Layout
//! - [`Pool`] (this file): the shared state, and starting it all.
//! - [`handshake`]: opening a pool connection (name, link secret).
//! - [`dial`]: the connection this server keeps to each other server, on which it tells
//!   what it commits and who of its users are where.
//! - [`inbound`]: connections from the other servers (what they tell, applied to the hub)
//!   and from `chatcap pool`.
//! - [`lease`]: holding an active place (a lease in PostgreSQL), standing by, draining,
//!   and stopping work when the lease cannot be renewed.
//! - [`admin`]: what `chatcap pool status|drain|undrain|set-active` ask, both sides.
//!
//! The pool never reaches into the chat core: it calls the hub's public operations and
//! drains the hub's outbox.

pub mod admin;
pub mod dial;
pub mod handshake;
pub mod inbound;
pub mod lease;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chat::Hub;
use crate::config::PoolSettings;

/// The live connection from one other server: its stop token, and a lock held for its
/// whole life.
type Inbound = (CancellationToken, Arc<tokio::sync::Mutex<()>>);

/// One chat server's pool state. Shared by its tasks (`Arc<Pool>`).
pub struct Pool {
    /// Where this server is in the pool.
    pub settings: PoolSettings,
    hub: Arc<Hub>,
    /// The database for leases, on connections of its own: a renewal never waits behind
    /// the chat's queries.
    leases: crate::store::Store,
    trust: crate::tls::LinkTrust,
    lease: Mutex<lease::LeaseState>,
    /// The live connection from each other server: its stop token and a lock held for
    /// its whole life (a new connection from the same server waits for the old one to
    /// undo what it told).
    inbound: Mutex<HashMap<String, Inbound>>,
    /// Servers this one is connected to (sending).
    outbound: Mutex<HashSet<String>>,
}

impl Pool {
    fn new(
        settings: PoolSettings,
        hub: Arc<Hub>,
        leases: crate::store::Store,
        trust: crate::tls::LinkTrust,
    ) -> Self {
        Self {
            settings,
            hub,
            leases,
            trust,
            lease: Mutex::new(lease::LeaseState::default()),
            inbound: Mutex::new(HashMap::new()),
            outbound: Mutex::new(HashSet::new()),
        }
    }

    /// This server's name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Names of every server of the pool, this one included.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.settings.name.as_str())
            .chain(self.settings.peers.iter().map(|(n, _)| n.as_str()))
    }

    fn trust(&self) -> &crate::tls::LinkTrust {
        &self.trust
    }
}

/// Bind the content database to this pool, or check that it is bound to it: a database
/// serves one pool, and a pool created single-server can never gain servers (as with
/// Lync's Topology Builder). The first server of a pool to start records both.
pub async fn claim(store: &crate::store::Store, settings: &PoolSettings) -> Result<(), String> {
    let failed =
        |e: crate::store::StoreError| format!("cannot record the pool in the database: {e}");
    let name = store
        .meta_init("pool.name", &settings.pool)
        .await
        .map_err(failed)?;
    if name != settings.pool {
        return Err(format!(
            "the database belongs to pool {name:?}, not {:?}: one content database per pool",
            settings.pool
        ));
    }
    let kind = store
        .meta_init("pool.kind", settings.kind.as_str())
        .await
        .map_err(failed)?;
    if kind == crate::topology::PoolKind::Single.as_str()
        && settings.kind != crate::topology::PoolKind::Single
    {
        return Err(format!(
            "pool {name:?} was created as a single-server pool; it cannot gain servers \
             (create a new multiple-server pool with its own database)"
        ));
    }
    Ok(())
}

/// Start this server's pool part on an already-bound `listener`: the lease keeper, one
/// dialer per other server, and the acceptor. The hub takes no sessions until it holds an
/// active place.
pub fn start(
    hub: Arc<Hub>,
    leases: crate::store::Store,
    settings: PoolSettings,
    listener: TcpListener,
    trust: crate::tls::LinkTrust,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Arc<Pool> {
    hub.set_serving(false, false);
    let pool = Arc::new(Pool::new(settings, hub, leases, trust));
    tasks.spawn(lease::keep(pool.clone(), shutdown.clone()));
    for (name, addr) in pool.settings.peers.clone() {
        tasks.spawn(dial::keep(pool.clone(), name, addr, shutdown.clone()));
    }
    tasks.spawn(inbound::serve(pool.clone(), listener, shutdown.clone()));
    pool
}
