//! Exporting: claim unexported events, write them as one XML file, mark the batch done.
//!
//! Every event is exported once, also with several servers (or `chatcap compliance
//! export`) exporting the same compliance database at the same time:
//! 1. **claim** — one transaction marks up to `max_per_file` unexported events with a
//!    fresh batch token and records the batch (`store::compliance`): no two exporters can
//!    claim the same event;
//! 2. **write** — `<output_dir>/<token>.xml`, written to a temporary name, fsynced, renamed
//!    (and the folder fsynced): a reader never sees half a file;
//! 3. **finish** — the batch is marked done.
//!
//! An exporter that dies between 1 and 3 leaves its batch claimed: after [`CLAIM_LEASE`]
//! the next export run (on any server) rewrites it under the same file name, so the
//! events are neither lost nor written to a second file. An empty claim writes no file.
//!
//! Tokens (and so file names) are `<UTC time>-<host>-<pid>-<run>`: unique across servers,
//! restarts and concurrent exporters of one process, and sorted by time.

use std::collections::hash_map::Entry;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::xml::{self, Names};
use crate::chat::Hub;
use crate::model::{now_us, Directory};
use crate::store::compliance::ComplianceEvent;
use crate::store::{Store, StoreError};
use crate::telemetry::catalog;

/// A batch claimed longer ago than this and not finished was abandoned by its exporter.
pub const CLAIM_LEASE: Duration = Duration::from_secs(600);

/// Events per export file by default.
pub const DEFAULT_MAX_PER_FILE: u32 = 10_000;

/// Export runs started by this process (part of every token).
static RUNS: AtomicU64 = AtomicU64::new(0);

/// Why an export run failed. Whatever it claimed stays claimed and is rewritten by a later
/// run once [`CLAIM_LEASE`] has passed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A database refused.
    #[error("compliance export: {0}")]
    Store(#[from] StoreError),
    /// The file could not be written.
    #[error("cannot write compliance export {path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Where and how an exporter writes.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The adapter's output folder (must exist).
    pub out_dir: PathBuf,
    /// This exporter's name in tokens and in `compliance_exports.server`.
    pub server: String,
    /// Most events per file.
    pub max_per_file: u32,
}

impl ExportOptions {
    /// Options for `out_dir`, named after this host and process.
    pub fn new(out_dir: PathBuf) -> ExportOptions {
        ExportOptions {
            out_dir,
            server: server_name(),
            max_per_file: DEFAULT_MAX_PER_FILE,
        }
    }
}

/// What one export run wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Events exported.
    pub events: u64,
    /// Files written, in order.
    pub files: Vec<PathBuf>,
}

/// `<host>-<pid>`, with anything but `[A-Za-z0-9._]` replaced by `_`.
pub fn server_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let clean: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{clean}-{}", std::process::id())
}

fn next_token(server: &str) -> String {
    let run = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
    format!("{}-{server}-{run:06}", xml::file_stamp(now_us()))
}

/// Where names come from: the chat core's directory, then (for ids it does not know: users
/// and rooms created through another server of the pool) the content database.
struct NameSource<'a> {
    hub: Option<&'a Hub>,
    content: &'a Store,
    loaded: Option<Directory>,
}

impl NameSource<'_> {
    async fn names(&mut self, events: &[ComplianceEvent]) -> Result<Names, ExportError> {
        let mut names = Names::default();
        let mut missing = false;
        if let Some(hub) = self.hub {
            let dir = hub.dir();
            missing = collect(&dir, events, &mut names);
        }
        if (self.hub.is_none() || missing) && self.loaded.is_none() {
            self.loaded = Some(self.content.load_directory().await?);
        }
        if let Some(dir) = &self.loaded {
            collect(dir, events, &mut names);
        }
        Ok(names)
    }
}

/// Add the names `dir` knows for `events`; true when some id was not found.
fn collect(dir: &Directory, events: &[ComplianceEvent], names: &mut Names) -> bool {
    let mut missing = false;
    for e in events {
        let (user, room) = (e.event.user, e.event.room);
        if let Entry::Vacant(slot) = names.users.entry(user) {
            match dir.users.get(&user) {
                Some(u) => {
                    slot.insert(u.name.clone());
                }
                None => missing = true,
            }
        }
        if let Entry::Vacant(slot) = names.rooms.entry(room) {
            match dir.rooms.get(&room) {
                Some(r) => {
                    slot.insert(r.name.clone());
                }
                None => missing = true,
            }
        }
    }
    missing
}

/// One export run: finish abandoned batches, then claim and write until nothing is left.
/// Names come from `hub` when given (a running chat server), else from `content`.
pub async fn export_once(
    compliance: &Store,
    content: &Store,
    hub: Option<&Hub>,
    opts: &ExportOptions,
) -> Result<ExportReport, ExportError> {
    metrics::counter!(catalog::COMPLIANCE_EXPORT_RUNS.name).increment(1);
    let mut names = NameSource {
        hub,
        content,
        loaded: None,
    };
    let mut report = ExportReport::default();
    let lease = CLAIM_LEASE.as_micros() as i64;
    loop {
        let now = now_us();
        let Some(token) = compliance
            .take_over_compliance(&opts.server, now - lease, now)
            .await?
        else {
            break;
        };
        tracing::warn!(%token, "rewriting an abandoned compliance export");
        write_batch(compliance, &mut names, &token, opts, &mut report).await?;
    }
    let limit = opts.max_per_file.max(1);
    loop {
        let token = next_token(&opts.server);
        let n = compliance
            .claim_compliance(&token, &opts.server, limit, now_us())
            .await?;
        if n == 0 {
            break;
        }
        write_batch(compliance, &mut names, &token, opts, &mut report).await?;
        if n < u64::from(limit) {
            break;
        }
    }
    Ok(report)
}

async fn write_batch(
    compliance: &Store,
    names: &mut NameSource<'_>,
    token: &str,
    opts: &ExportOptions,
    report: &mut ExportReport,
) -> Result<(), ExportError> {
    let events = compliance.compliance_batch(token).await?;
    let book = names.names(&events).await?;
    let text = xml::render(&events, &book);
    let file = format!("{token}.xml");
    let path = opts.out_dir.join(&file);
    let target = path.clone();
    tokio::task::spawn_blocking(move || write_durably(&target, text.as_bytes()))
        .await
        .map_err(|e| ExportError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })??;
    compliance.finish_compliance(token, &file, now_us()).await?;
    let n = events.len() as u64;
    metrics::counter!(catalog::COMPLIANCE_EXPORTED.name).increment(n);
    metrics::counter!(catalog::COMPLIANCE_EXPORT_FILES.name).increment(1);
    tracing::info!(file = %path.display(), events = n, "compliance export written");
    report.events += n;
    report.files.push(path);
    Ok(())
}

/// Write `bytes` to `path` so that it is either absent or complete, and durable: a
/// temporary file, fsync, rename, fsync of the folder.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| ExportError::Io { path: p, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{}.tmp", name.unwrap_or_default()));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

/// Export every `every` until `shutdown` (a run in progress finishes first).
pub async fn run_every(
    every: Duration,
    hub: Arc<Hub>,
    compliance: Store,
    opts: ExportOptions,
    shutdown: CancellationToken,
) {
    let every = every.max(Duration::from_secs(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let store = hub.store.clone();
        if let Err(e) = export_once(&compliance, &store, Some(&hub), &opts).await {
            metrics::counter!(catalog::COMPLIANCE_EXPORT_ERRORS.name).increment(1);
            tracing::error!(error = %e, "compliance export failed; retrying next run");
        }
    }
}
