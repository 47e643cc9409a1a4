//! Holding an active place (docs/POOL.md, "Leases"). The pool's active places are rows in
//! PostgreSQL (`store::pool`), each held by one server under a lease that the database's
//! clock ends. Every `renew` interval a server renews its lease, or — a standby, not
//! drained — takes a place whose lease has ended. Holding a place (and not drained, not
//! cut off) is what makes a chat server take new sessions.
//!
//! No split brain: a holder that cannot renew stops taking work and asks the front ends
//! to move its sessions once `ttl - margin` has passed, on its own clock, since the start
//! of its last successful renewal. That renewal set the lease's end to at least its start
//! plus `ttl` on the database's clock, and a standby may take the place only after that
//! end. So the holder has stopped at least `margin` before anyone else can start, as long
//! as the two clocks run at the same rate to within `margin / ttl` (here 1 s in 3 s).
//! (Correctness of the chat itself does not depend on this: numbers come from the
//! database, so even two servers serving the same users could not diverge.)

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::Pool;

/// How long set-active (and a pool's first start) reserves each place for its server,
/// before a standby may take a place whose server has not come up.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What this server knows of its lease.
#[derive(Debug, Default, Clone, Copy)]
pub struct LeaseState {
    /// The place held at the last successful renewal.
    pub slot: Option<i16>,
    /// When that renewal started.
    pub renewed: Option<Instant>,
    /// Renewals fail and the lease may have ended: not serving.
    pub cut_off: bool,
    /// Drained by `chatcap pool drain`.
    pub drained: bool,
}

impl LeaseState {
    /// Holding a place, able to renew it, not drained.
    pub fn active(&self) -> bool {
        self.slot.is_some() && !self.cut_off && !self.drained
    }

    /// When a holder that cannot renew must stop serving: `ttl - margin` after the start
    /// of its last successful renewal (`None`: not holding, or stopped already).
    fn stop_at(&self, timing: crate::config::LeaseTiming) -> Option<Instant> {
        match (self.slot, self.renewed, self.cut_off) {
            (Some(_), Some(renewed), false) => Some(renewed + (timing.ttl - timing.margin)),
            _ => None,
        }
    }
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Keep this server's lease until `shutdown`; then give the place up so that a standby
/// can take it at once.
pub async fn keep(pool: Arc<Pool>, shutdown: CancellationToken) {
    let timing = pool.settings.lease;
    let store = pool.leases.clone();
    let me = pool.name().to_string();
    // The pool's first start creates its places from the topology's active servers.
    loop {
        match store
            .pool_init(&pool.settings.initial_active, micros(GRACE))
            .await
        {
            Ok(()) => break,
            Err(e) => tracing::warn!(error = %e, "cannot create the pool's places; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(timing.renew) => {}
        }
    }
    loop {
        let started = Instant::now();
        let held = store.pool_hold(&me, micros(timing.ttl));
        tokio::pin!(held);
        // A slow renewal is waited for; but when the holder's own deadline passes first,
        // it stops serving at that moment, whatever the renewal does later.
        let outcome = loop {
            let deadline = pool.lease().stop_at(timing);
            tokio::select! {
                _ = shutdown.cancelled() => break None,
                r = &mut held => break Some(r),
                _ = sleep_until_some(deadline) => pool.cut_off(),
            }
        };
        let Some(result) = outcome else { break };
        {
            let mut lease = pool.lease_mut();
            match result {
                Ok((slot, drained)) => {
                    if slot != lease.slot {
                        tracing::info!(?slot, "active place");
                    }
                    lease.slot = slot;
                    lease.drained = drained;
                    lease.renewed = Some(started);
                    lease.cut_off = false;
                }
                Err(e) => tracing::warn!(error = %e, "lease not renewed"),
            }
        }
        pool.apply_lease();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until((started + timing.renew).into()) => {}
        }
    }
    if pool.lease().slot.is_some() {
        if let Err(e) = store.pool_release(&me).await {
            tracing::warn!(error = %e, "active place not released at shutdown");
        }
    }
}

/// Sleep until `at`; forever when there is no deadline.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Pool {
    /// The lease may have ended: stop taking work and ask for the sessions to be moved.
    fn cut_off(&self) {
        self.lease_mut().cut_off = true;
        tracing::error!("lease not renewed in time: stopping work, moving sessions");
        self.apply_lease();
    }

    /// What this server knows of its lease now.
    pub fn lease(&self) -> LeaseState {
        *self.lease.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lease_mut(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.lease.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tell the front ends how this server serves, from its lease: an active server takes
    /// new sessions; a drained or cut-off one wants its sessions moved; a standby keeps
    /// the sessions it has (servers left off the active list keep theirs).
    fn apply_lease(&self) {
        let lease = self.lease();
        self.hub
            .set_serving(lease.active(), lease.drained || lease.cut_off);
    }

    /// Drain (`true`) or undrain this server: stored, then applied at once. A drained
    /// server gives up its place, so that a standby takes it.
    pub async fn set_drained(&self, drained: bool) -> Result<(), crate::store::StoreError> {
        let store = &self.leases;
        store.pool_set_drained(self.name(), drained).await?;
        if drained {
            store.pool_release(self.name()).await?;
            self.lease_mut().slot = None;
        }
        self.lease_mut().drained = drained;
        self.apply_lease();
        Ok(())
    }
}
