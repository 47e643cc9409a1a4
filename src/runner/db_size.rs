//! The size of the database under test over time, for `resources.csv`'s `db_bytes`:
//! a SQLite database by the files of its folder (read by the probe itself); a PostgreSQL
//! database by `pg_database_size(current_database())`, asked once a second on a
//! connection of its own (never one the servers use) by a task that keeps the latest
//! figure for the probe.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chatcap_server::store::{sqlite_path, Store};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::metrics::resources::DbSize;

/// How often PostgreSQL is asked.
const EVERY: Duration = Duration::from_secs(1);

/// A running sampler of a PostgreSQL database's size.
pub struct PgSize {
    latest: Arc<AtomicU64>,
    /// Stops the task when dropped (also on an early return).
    stop: DropGuard,
    task: tokio::task::JoinHandle<()>,
}

impl PgSize {
    /// Start asking the database at `url`; the first answer is waited for (a few
    /// seconds at most) so that the first resource sample has it.
    pub async fn start(url: &str) -> Result<PgSize, chatcap_server::store::StoreError> {
        let store = Store::open_side(url, 1).await?;
        let latest = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let first = tokio::time::timeout(Duration::from_secs(5), store.size_bytes()).await;
        if let Ok(Ok(n)) = first {
            latest.store(n, Ordering::Relaxed);
        }
        let task = tokio::spawn(ask_every_second(store, latest.clone(), stop.clone()));
        Ok(PgSize {
            latest,
            stop: stop.drop_guard(),
            task,
        })
    }

    /// Where a probe reads the latest figure.
    pub fn source(&self) -> DbSize {
        DbSize::Reported(self.latest.clone())
    }

    /// Stop asking (and close the connection).
    pub async fn stop(self) {
        drop(self.stop);
        let _ = self.task.await;
    }
}

async fn ask_every_second(store: Store, latest: Arc<AtomicU64>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut warned = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        match tokio::time::timeout(EVERY, store.size_bytes()).await {
            Ok(Ok(n)) => latest.store(n, Ordering::Relaxed),
            // The last figure stands; one warning, not one a second.
            Ok(Err(e)) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "cannot read the database size");
            }
            _ => {}
        }
    }
    store.close().await;
}

/// How the size of the database at `url` is measured: its folder for SQLite, a sampler
/// for PostgreSQL (`None` for PostgreSQL when it cannot be reached: the size is then 0).
pub async fn measure(url: &str) -> (Option<DbSize>, Option<PgSize>) {
    if let Some(path) = sqlite_path(url) {
        let dir = Path::new(&path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        return (Some(DbSize::Folder(dir.to_path_buf())), None);
    }
    match PgSize::start(url).await {
        Ok(pg) => (Some(pg.source()), Some(pg)),
        Err(e) => {
            tracing::warn!(error = %e, "the database size will not be recorded");
            (None, None)
        }
    }
}
