//! Every metric the server emits, in one table: its name, kind, unit, help text, which
//! part of the server emits it (chat server, front end, or both) and, for labelled
//! families, every value its label takes.
//!
//! Emitting code names a metric by its constant here (`counter!(catalog::POSTS_ACKED.name)`)
//! so that a metric is spelt once; [`register`] describes and zeroes the table at start.
//! This file only lists metrics: it installs no recorder and serves nothing.

use metrics::Unit;

use crate::compliance::event::EventKind;
use crate::protocol::decode::KNOWN_TYPES;
use crate::protocol::ErrorCode;

/// How a metric is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution (rendered as a summary: quantiles, `_sum`, `_count`).
    Histogram,
}

/// Which part of the server emits a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The chat server (chat core, group commit, pool, compliance).
    Chat,
    /// The front end (client sessions).
    Front,
    /// Both.
    Both,
}

/// The one label of a labelled family, and where its values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// No label.
    None,
    /// `op`: the request types ([`KNOWN_TYPES`]).
    Op,
    /// `code`: the error codes ([`ErrorCode::ALL`]).
    Code,
    /// `kind`: the compliance event kinds ([`EventKind::ALL`]).
    Kind,
}

impl Label {
    /// The label's key and every value it takes (empty for [`Label::None`]).
    pub fn values(self) -> (&'static str, Vec<&'static str>) {
        match self {
            Label::None => ("", Vec::new()),
            Label::Op => ("op", KNOWN_TYPES.to_vec()),
            Label::Code => ("code", ErrorCode::ALL.iter().map(|c| c.as_str()).collect()),
            Label::Kind => ("kind", EventKind::ALL.iter().map(|k| k.as_str()).collect()),
        }
    }
}

/// One metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The exposed name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its unit.
    pub unit: Unit,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Who emits it.
    pub side: Side,
    /// Its label, if any.
    pub label: Label,
}

/// Declares the families: each becomes a `pub const` documented by its help text, and
/// [`ALL`] lists them in order.
macro_rules! families {
    ($($id:ident: $kind:ident $unit:ident $side:ident $label:ident $name:literal $help:literal;)*) => {
        $(
            #[doc = $help]
            pub const $id: Family = Family {
                name: $name,
                kind: Kind::$kind,
                unit: Unit::$unit,
                help: $help,
                side: Side::$side,
                label: Label::$label,
            };
        )*
        /// Every family, in the order above.
        pub const ALL: &[Family] = &[$($id),*];
    };
}

families! {
    REQUESTS: Counter Count Chat Op "chatcap_requests_total"
        "Requests handled by the chat core, by operation.";
    POSTS_ACKED: Counter Count Chat None "chatcap_posts_acked_total"
        "Posts stored and acknowledged to their senders.";
    DELIVERIES: Counter Count Chat None "chatcap_deliveries_total"
        "Messages handed to receiving sessions (one per receiver).";
    ERRORS: Counter Count Both Code "chatcap_errors_total"
        "Errors answered to clients, by code.";
    BUSY: Counter Count Both None "chatcap_busy_total"
        "Requests and connections refused because the process was overloaded.";
    REQUESTS_IN_FLIGHT: Gauge Count Chat None "chatcap_requests_in_flight"
        "Database-bound requests in progress (refused busy at max_in_flight).";
    COMMIT_SECONDS: Histogram Seconds Chat None "chatcap_commit_seconds"
        "Time spent storing one group-commit batch (insert, commit, fsync, retries).";
    COMMIT_BATCH_POSTS: Histogram Count Chat None "chatcap_commit_batch_posts"
        "Posts stored by one group-commit batch.";
    COMMIT_QUEUE_POSTS: Gauge Count Chat None "chatcap_commit_queue_posts"
        "Posts queued for the group commit and not yet delivered (refused busy at max_pending_posts).";
    COMMIT_FAILURES: Counter Count Chat None "chatcap_commit_failures_total"
        "Group-commit attempts the database refused (each retried).";
    SESSIONS: Gauge Count Chat None "chatcap_sessions"
        "Sessions held by the chat server.";
    LINKS: Gauge Count Chat None "chatcap_links"
        "Front-end links held by the chat server.";
    LINKS_DROPPED: Counter Count Chat None "chatcap_links_dropped_total"
        "Front-end links dropped because their queue was full.";
    LINKS_REFUSED: Counter Count Chat None "chatcap_links_refused_total"
        "Front-end links refused (failed TLS handshake, or no valid proof of the link secret).";
    TLS_REFUSED: Counter Count Both None "chatcap_tls_refused_total"
        "TLS handshakes this process refused or that timed out, as the server side (client port, 5041, 8011).";
    ACCEPTING: Gauge Count Chat None "chatcap_accepting"
        "1 while the chat server takes new sessions.";
    SESSIONS_RESUMED: Counter Count Chat None "chatcap_sessions_resumed_total"
        "Sessions resumed here after their chat server went away.";
    GAPS_FILLED: Counter Count Chat None "chatcap_gaps_filled_total"
        "Gaps in a room's messages filled from the database.";
    CATCH_UPS: Counter Count Chat None "chatcap_catch_ups_total"
        "Rooms caught up with the database after a pool link came back.";
    POOL_LINKS_DROPPED: Counter Count Chat None "chatcap_pool_links_dropped_total"
        "Pool links to other chat servers dropped because their queue was full.";
    POOL_LINKS_REFUSED: Counter Count Chat None "chatcap_pool_links_refused_total"
        "Pool connections refused at the handshake.";
    FILES_UPLOADED: Counter Count Chat None "chatcap_files_uploaded_total"
        "Files uploaded to rooms.";
    FILE_BYTES_UPLOADED: Counter Bytes Chat None "chatcap_file_bytes_uploaded_total"
        "Bytes of files uploaded to rooms.";
    FILES_DOWNLOADED: Counter Count Chat None "chatcap_files_downloaded_total"
        "Files downloaded from rooms.";
    COMPLIANCE_RECORDED: Counter Count Chat Kind "chatcap_compliance_recorded_total"
        "Compliance events recorded, by kind.";
    COMPLIANCE_DROPPED: Counter Count Chat None "chatcap_compliance_dropped_total"
        "Compliance events dropped because the recording queue was full.";
    COMPLIANCE_WRITE_ERRORS: Counter Count Chat None "chatcap_compliance_write_errors_total"
        "Compliance writes the database refused (each retried).";
    COMPLIANCE_EXPORT_RUNS: Counter Count Chat None "chatcap_compliance_export_runs_total"
        "Compliance export runs.";
    COMPLIANCE_EXPORTED: Counter Count Chat None "chatcap_compliance_exported_total"
        "Compliance events written to export files.";
    COMPLIANCE_EXPORT_FILES: Counter Count Chat None "chatcap_compliance_export_files_total"
        "Compliance export files written.";
    COMPLIANCE_EXPORT_ERRORS: Counter Count Chat None "chatcap_compliance_export_errors_total"
        "Compliance export runs that failed.";
    FRONTEND_SESSIONS: Gauge Count Front None "chatcap_frontend_sessions"
        "Client sessions held by the front end.";
    FRONTEND_FORWARDED: Counter Count Front None "chatcap_frontend_forwarded_total"
        "Frames forwarded from chat servers to client sessions (one per session).";
    SLOW_CONSUMERS: Counter Count Front None "chatcap_slow_consumers_total"
        "Clients dropped because they read too slowly (bye slow_consumer).";
    FRONTEND_SESSIONS_MOVED: Counter Count Front None "chatcap_frontend_sessions_moved_total"
        "Sessions moved to another chat server when theirs went away.";
}

/// The families a process emits when it runs a chat server and/or a front end.
pub fn emitted_by(chat: bool, front: bool) -> impl Iterator<Item = &'static Family> {
    ALL.iter().filter(move |f| match f.side {
        Side::Chat => chat,
        Side::Front => front,
        Side::Both => chat || front,
    })
}

/// Describe the families a process emits to the installed recorder and register every
/// series (each label value) without changing it: a new series starts at zero, one that
/// already counted keeps its value (tests start several servers in one process).
pub fn register(chat: bool, front: bool) {
    for f in emitted_by(chat, front) {
        match f.kind {
            Kind::Counter => metrics::describe_counter!(f.name, f.unit, f.help),
            Kind::Gauge => metrics::describe_gauge!(f.name, f.unit, f.help),
            Kind::Histogram => metrics::describe_histogram!(f.name, f.unit, f.help),
        }
        let (key, values) = f.label.values();
        if values.is_empty() {
            touch(f, None);
        }
        for value in values {
            touch(f, Some((key, value)));
        }
    }
}

/// Register one series (registration creates it at zero; nothing is recorded).
fn touch(f: &Family, label: Option<(&'static str, &'static str)>) {
    let labels: Vec<metrics::Label> = label
        .map(|(k, v)| metrics::Label::new(k, v))
        .into_iter()
        .collect();
    match f.kind {
        Kind::Counter => drop(metrics::counter!(f.name, labels)),
        Kind::Gauge => drop(metrics::gauge!(f.name, labels)),
        Kind::Histogram => drop(metrics::histogram!(f.name, labels)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prometheus_shaped() {
        let mut seen = std::collections::HashSet::new();
        for f in ALL {
            assert!(seen.insert(f.name), "{} listed twice", f.name);
            assert!(f.name.starts_with("chatcap_"), "{}", f.name);
            assert!(
                f.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                f.name
            );
            // Counters end in _total; nothing else does.
            assert_eq!(
                f.kind == Kind::Counter,
                f.name.ends_with("_total"),
                "{}",
                f.name
            );
            assert!(
                f.help.ends_with('.') && !f.help.contains('\n'),
                "{}",
                f.name
            );
        }
    }

    #[test]
    fn roles_emit_their_sides() {
        let chat: Vec<&str> = emitted_by(true, false).map(|f| f.name).collect();
        let front: Vec<&str> = emitted_by(false, true).map(|f| f.name).collect();
        assert!(chat.contains(&POSTS_ACKED.name) && !chat.contains(&FRONTEND_SESSIONS.name));
        assert!(front.contains(&FRONTEND_SESSIONS.name) && !front.contains(&SESSIONS.name));
        assert!(chat.contains(&ERRORS.name) && front.contains(&ERRORS.name));
        assert_eq!(emitted_by(true, true).count(), ALL.len());
    }

    #[test]
    fn docs_list_every_family_with_its_help() {
        let docs = include_str!("../../../docs/METRICS.md");
        for f in ALL {
            let row = docs
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", f.name)))
                .unwrap_or_else(|| panic!("docs/METRICS.md has no row for {}", f.name));
            assert!(row.contains(f.help), "docs/METRICS.md: help of {}", f.name);
        }
        let rows = docs
            .lines()
            .filter(|l| l.starts_with("| `chatcap_"))
            .count();
        assert_eq!(
            rows,
            ALL.len(),
            "docs/METRICS.md lists metrics the catalog does not"
        );
    }

    #[test]
    fn labelled_families_have_values() {
        for label in [Label::Op, Label::Code, Label::Kind] {
            let (key, values) = label.values();
            assert!(!key.is_empty() && !values.is_empty(), "{label:?}");
        }
        assert!(Label::Code.values().1.contains(&"rate_limited"));
        assert!(Label::Op.values().1.contains(&"post"));
    }
}
