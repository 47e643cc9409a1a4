//! Recording: a bounded queue in front of one writer task that inserts events in batches.
//!
//! [`Recorder::record`] never waits: chat operations call it under room locks. When the
//! queue is full (the compliance database has been failing or slow for a long while) the
//! event is dropped, counted in `chatcap_compliance_dropped_total` and logged; posting is
//! refused `busy` well before that (see `Hub::refuse_if_compliance_backlogged`), so what is
//! dropped first is JOIN/PART/BACKCHAT, never an acknowledged post's CHAT. The writer takes
//! everything queued (up to [`MAX_BATCH`]) into one transaction, and retries a batch the
//! database refuses, with backoff, until it is stored.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::event::EventKind;
use crate::store::compliance::NewComplianceEvent;
use crate::store::Store;
use crate::telemetry::catalog;

/// Events queued toward the compliance database at most; beyond, events are dropped (and
/// counted). Posts are refused `busy` once half of it is in use
/// (`Hub::refuse_if_compliance_backlogged`), so that a compliance database falling behind
/// slows posting instead of losing CHAT events.
pub const QUEUE_CAPACITY: usize = 65_536;

/// Most events stored by one transaction.
pub const MAX_BATCH: usize = 4096;

/// Longest wait between attempts at a batch the database refused.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

enum Item {
    Event(NewComplianceEvent),
    /// Answer once everything queued before is stored.
    Flush(oneshot::Sender<()>),
    /// Like `Flush`, then end the writer.
    Stop(oneshot::Sender<()>),
}

/// The sending side of the compliance writer. Held by the chat core.
pub struct Recorder {
    tx: mpsc::Sender<Item>,
    capacity: usize,
    /// Unix second of the last "queue full" warning (one per second at most).
    warned_at: AtomicI64,
}

impl Recorder {
    /// Start the writer task for `store` (the compliance database), with a queue of
    /// `capacity` events.
    pub fn start(store: Store, capacity: usize) -> Recorder {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(write(store, rx));
        Recorder {
            tx,
            capacity: capacity.max(1),
            warned_at: AtomicI64::new(0),
        }
    }

    /// Queue one event; never waits (a full queue drops it, counted and logged).
    pub fn record(&self, event: NewComplianceEvent) {
        match self.tx.try_send(Item::Event(event)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!(catalog::COMPLIANCE_DROPPED.name).increment(1);
                let now = crate::auth::unix_now();
                if self.warned_at.swap(now, Ordering::Relaxed) != now {
                    tracing::warn!(
                        capacity = self.capacity,
                        "compliance queue full: events dropped (is the compliance database down?)"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // After shutdown: nothing will store it any more.
                metrics::counter!(catalog::COMPLIANCE_DROPPED.name).increment(1);
            }
        }
    }

    /// Events queued and not yet stored.
    pub fn backlog(&self) -> usize {
        self.capacity.saturating_sub(self.tx.capacity())
    }

    /// Wait until every event queued before this call is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Item::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Store what is queued, then stop the writer.
    pub async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Item::Stop(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write(store: Store, mut rx: mpsc::Receiver<Item>) {
    let mut batch: Vec<NewComplianceEvent> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut stopping = false;
    while !stopping {
        let Some(first) = rx.recv().await else { break };
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Event(e) => batch.push(e),
                Item::Flush(w) => waiters.push(w),
                Item::Stop(w) => {
                    waiters.push(w);
                    stopping = true;
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        store_batch(&store, &batch).await;
        batch.clear();
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// Store one batch, retrying until the database takes it.
async fn store_batch(store: &Store, batch: &[NewComplianceEvent]) {
    if batch.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(50);
    loop {
        match store.insert_compliance(batch).await {
            Ok(()) => break,
            Err(e) => {
                metrics::counter!(catalog::COMPLIANCE_WRITE_ERRORS.name).increment(1);
                tracing::error!(error = %e, events = batch.len(), "compliance write failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    let mut by_kind = [0u64; EventKind::ALL.len()];
    for e in batch {
        if let Some(n) = usize::try_from(e.kind)
            .ok()
            .and_then(|i| by_kind.get_mut(i))
        {
            *n += 1;
        }
    }
    for (kind, n) in EventKind::ALL.into_iter().zip(by_kind) {
        if n > 0 {
            metrics::counter!(catalog::COMPLIANCE_RECORDED.name, "kind" => kind.as_str())
                .increment(n);
        }
    }
}
