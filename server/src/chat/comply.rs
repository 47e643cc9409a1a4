//! The chat core's compliance hooks: record an event ([`Hub::comply`], a cheap no-op unless
//! the compliance service started a recorder for this hub) and refuse posts while the
//! recorder is behind. The service itself (export, start, stop) is `crate::compliance`.

use crate::compliance::event::EventKind;
use crate::compliance::recorder::QUEUE_CAPACITY;
use crate::model::now_us;
use crate::protocol::{ErrorCode, WireError};
use crate::store::compliance::NewComplianceEvent;
use crate::telemetry::catalog;

use super::Hub;

impl Hub {
    /// Record a compliance event: who (`user`) did what (`kind`) in which room, with its
    /// content (CHAT: the text; BACKCHAT: the range viewed, see
    /// `compliance::event::viewed_range`; FILEUPLOAD/FILEDOWNLOAD: the stored file name;
    /// JOIN/PART: empty) and, for CHAT, the room's sequence number. Never waits.
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

    /// Refuse a post `busy` while the compliance queue is more than half full (see
    /// [`QUEUE_CAPACITY`]): a compliance database falling behind slows posting instead of
    /// losing CHAT events. Always `Ok` when compliance is off.
    pub fn refuse_if_compliance_backlogged(&self) -> Result<(), WireError> {
        match self.compliance.get() {
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
}
