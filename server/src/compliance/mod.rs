//! The compliance service: every JOIN, PART, CHAT, BACKCHAT (history viewed), FILEUPLOAD and
//! FILEDOWNLOAD is recorded in the compliance database and exported, every run interval,
//! by the XML adapter in the layout of Lync Server 2013 Persistent Chat (docs/COMPLIANCE.md).
//!
//! # Layout
//! - this file: the event kinds, [`start`] / [`stop`], and the one hook the chat core
//!   calls, [`Hub::comply`] (a no-op unless compliance is on).
//! - [`recorder`]: a bounded queue and one writer task that inserts events in batches; a
//!   chat operation never waits on the compliance database.
//! - [`exporter`]: claims unexported events (never the same event for two exporters, even
//!   on several servers sharing the database), writes one file per claim, and runs every
//!   `run_interval`; also used by `chatcap compliance export`.
//! - [`xml`]: the XML adapter (layout, escaping, the three time formats).
//!
//! The service never speaks SQL (that is `store::compliance`) and never touches sessions:
//! it sees ids, and reads names from the chat core's directory (or the content database).

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
use crate::model::now_us;
use crate::protocol::{ErrorCode, WireError};
use crate::serve::StartError;
use crate::store::compliance::NewComplianceEvent;
use crate::store::Store;
use crate::telemetry::catalog;
pub use exporter::{export_once, ExportError, ExportOptions, ExportReport};
pub use recorder::Recorder;

/// Events queued toward the compliance database at most; beyond, events are dropped (and
/// counted). Posts are refused `busy` once half of it is in use, so that a compliance
/// database falling behind slows posting instead of losing CHAT events.
pub const QUEUE_CAPACITY: usize = 65_536;

/// Longest wait at shutdown for queued events to reach the database.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What happened, as the original's compliance `Message/@type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A session entered a room.
    Join,
    /// A session left a room (part, disconnect, removal).
    Part,
    /// A message was posted (and acknowledged).
    Chat,
    /// History was viewed (join with history, `history`).
    Backchat,
    /// A file was uploaded to a room.
    FileUpload,
    /// A file was downloaded from a room.
    FileDownload,
}

impl EventKind {
    /// Every kind, in code order.
    pub const ALL: [EventKind; 6] = [
        EventKind::Join,
        EventKind::Part,
        EventKind::Chat,
        EventKind::Backchat,
        EventKind::FileUpload,
        EventKind::FileDownload,
    ];

    /// The code stored in the database (`compliance_events.kind`).
    pub fn code(self) -> i16 {
        match self {
            EventKind::Join => 0,
            EventKind::Part => 1,
            EventKind::Chat => 2,
            EventKind::Backchat => 3,
            EventKind::FileUpload => 4,
            EventKind::FileDownload => 5,
        }
    }

    /// The kind of a stored code (`None` for a code this build does not know).
    pub fn from_code(code: i16) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The XML `type` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Join => "JOIN",
            EventKind::Part => "PART",
            EventKind::Chat => "CHAT",
            EventKind::Backchat => "BACKCHAT",
            EventKind::FileUpload => "FILEUPLOAD",
            EventKind::FileDownload => "FILEDOWNLOAD",
        }
    }
}

/// The content of a BACKCHAT event: the sequence numbers viewed, `first-last`.
pub fn viewed_range(first_seq: i64, last_seq: i64) -> String {
    format!("{first_seq}-{last_seq}")
}

impl Hub {
    /// Record a compliance event: who (`user`) did what (`kind`) in which room, with its
    /// content (CHAT: the text; BACKCHAT: the range viewed, see [`viewed_range`];
    /// FILEUPLOAD/FILEDOWNLOAD: the stored file name; JOIN/PART: empty) and, for CHAT, the
    /// room's sequence number. Never waits; a cheap no-op when compliance is off.
    pub fn comply(&self, kind: EventKind, room: i64, user: i64, content: &str, seq: Option<i64>) {
        if let Some(recorder) = self.compliance.get() {
            recorder.record(NewComplianceEvent {
                kind: kind.code(),
                room,
                user,
                // No NUL reaches the database (PostgreSQL refuses it in TEXT).
                content: content.replace('\0', "\u{FFFD}"),
                seq: if kind == EventKind::Chat { seq } else { None },
                at_us: now_us(),
            });
        }
    }
}

/// Refuse a post `busy` while the compliance queue is more than half full (see
/// [`QUEUE_CAPACITY`]); always `Ok` when compliance is off.
pub fn refuse_if_backlogged(hub: &Hub) -> Result<(), WireError> {
    match hub.compliance.get() {
        Some(r) if r.backlog() > QUEUE_CAPACITY / 2 => {
            metrics::counter!(catalog::BUSY.name).increment(1);
            Err(WireError::new(
                ErrorCode::Busy,
                "server too busy (compliance recording is behind); retry later",
            ))
        }
        _ => Ok(()),
    }
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
) -> Result<(), StartError> {
    if !cfg.compliance.enabled {
        return Ok(());
    }
    let out_dir = output_dir(cfg);
    std::fs::create_dir_all(&out_dir).map_err(|source| StartError::DataDir {
        path: out_dir.display().to_string(),
        source,
    })?;
    if hub
        .compliance
        .set(Recorder::start(store.clone(), QUEUE_CAPACITY))
        .is_err()
    {
        return Err(StartError::Config(
            "compliance recording is already started for this chat server".into(),
        ));
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
