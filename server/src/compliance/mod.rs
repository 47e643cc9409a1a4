//! The compliance service: every JOIN, PART, CHAT, BACKCHAT (history viewed), FILEUPLOAD and
//! FILEDOWNLOAD is recorded in the compliance database and exported, every run interval,
//! by the XML adapter in the layout of Lync Server 2013 Persistent Chat (docs/COMPLIANCE.md).
//!
//! # Layout
//! - this file: [`start`] / [`stop`] of the service for a chat server.
//! - [`event`]: the event kinds; the chat core records them through `Hub::comply` (a no-op
//!   unless compliance is on), which lives with the chat core (`chat::comply`).
//! - [`recorder`]: a bounded queue and one writer task that inserts events in batches; a
//!   chat operation never waits on the compliance database.
//! - [`exporter`]: claims unexported events (never the same event for two exporters, even
//!   on several servers sharing the database), writes one file per claim, and runs every
//!   `run_interval`; also used by `chatcap compliance export`.
//! - [`xml`]: the XML adapter (layout, escaping, the three time formats).
//!
//! The service never speaks SQL (that is `store::compliance`) and never touches sessions:
//! it sees ids, and reads names from the chat core's directory (or the content database).

pub mod event;
pub mod exporter;
pub mod recorder;
pub mod xml;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chat::Hub;
use crate::config::ServeConfig;
use crate::store::Store;
pub use event::{viewed_range, EventKind};
pub use exporter::{export_once, ExportError, ExportOptions, ExportReport};
pub use recorder::{Recorder, QUEUE_CAPACITY};

/// Longest wait at shutdown for queued events to reach the database.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Why the compliance service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ComplianceStartError {
    /// The export folder could not be created.
    #[error("cannot create the compliance output folder {path}: {source}")]
    OutputDir {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `start` was called twice for one chat server.
    #[error("compliance recording is already started for this chat server")]
    AlreadyStarted,
}

/// Where export files go: `compliance.output_dir`, by default `<data_dir>/compliance`.
pub fn output_dir(cfg: &ServeConfig) -> PathBuf {
    cfg.compliance
        .output_dir
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("compliance"))
}

/// When compliance is on: create the output folder, start recording into `store` (the
/// compliance database) for `hub`, and export every run interval until `shutdown`. The
/// exporter runs on `tasks`; the recorder outlives them (sessions still end, and PART
/// events still arrive, while tasks stop) and is flushed by [`stop`].
pub fn start(
    cfg: &ServeConfig,
    hub: &Arc<Hub>,
    store: &Store,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) -> Result<(), ComplianceStartError> {
    if !cfg.compliance.enabled {
        return Ok(());
    }
    let out_dir = output_dir(cfg);
    std::fs::create_dir_all(&out_dir).map_err(|source| ComplianceStartError::OutputDir {
        path: out_dir.display().to_string(),
        source,
    })?;
    if hub
        .compliance
        .set(Recorder::start(store.clone(), QUEUE_CAPACITY))
        .is_err()
    {
        return Err(ComplianceStartError::AlreadyStarted);
    }
    let opts = ExportOptions::new(out_dir.clone());
    tracing::info!(
        output = %out_dir.display(),
        every_secs = cfg.compliance.run_interval_secs,
        server = %opts.server,
        "compliance recording on"
    );
    tasks.spawn(exporter::run_every(
        Duration::from_secs(cfg.compliance.run_interval_secs),
        hub.clone(),
        store.clone(),
        opts,
        shutdown.clone(),
    ));
    Ok(())
}

/// Wait until every event recorded so far is in the compliance database (tests use it to
/// read the database without polling). Returns at once when compliance is off.
pub async fn flush(hub: &Hub) {
    if let Some(r) = hub.compliance.get() {
        r.flush().await;
    }
}

/// At shutdown, after the sessions have ended: write what is queued and stop the writer
/// (events recorded later are dropped and counted). Waits at most 10 s.
pub async fn stop(hub: &Hub) {
    if let Some(r) = hub.compliance.get() {
        if tokio::time::timeout(STOP_WAIT, r.stop()).await.is_err() {
            tracing::error!(
                queued = r.backlog(),
                "compliance events could not be written before shutdown"
            );
        }
    }
}
