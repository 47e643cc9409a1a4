//! The compliance database: recorded events, and the export batches that hand them to the
//! adapter exactly once.
//!
//! Exporting is claim → write → finish. [`Store::claim_compliance`] marks up to `limit`
//! unexported events with a batch token and records the batch, in one transaction: two
//! exporters on one database can never claim the same event (PostgreSQL re-checks
//! `exported_by IS NULL` on each row after waiting for the other claimer's lock; SQLite has
//! one writer). The caller writes the file, then calls [`Store::finish_compliance`]. A batch
//! claimed long ago and never finished was abandoned by a dead exporter;
//! [`Store::take_over_compliance`] hands it to exactly one live exporter.

use sqlx::QueryBuilder;

use super::{on_pool, Result, Store};

/// Rows per multi-row INSERT (6 columns: 6 × 1,000 binds, under both engines' limits).
const CHUNK: usize = 1000;

/// One event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComplianceEvent {
    /// Event kind: 0 JOIN, 1 PART, 2 CHAT, 3 BACKCHAT, 4 FILEUPLOAD, 5 FILEDOWNLOAD.
    pub kind: i16,
    /// Room id.
    pub room: i64,
    /// User id.
    pub user: i64,
    /// Text (CHAT), viewed range (BACKCHAT), stored file name (FILE*), or empty.
    pub content: String,
    /// The room's sequence number of a CHAT message.
    pub seq: Option<i64>,
    /// When it happened, µs since the Unix epoch.
    pub at_us: i64,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceEvent {
    /// Row id: the order events were recorded in.
    pub id: i64,
    /// The event.
    pub event: NewComplianceEvent,
    /// The export batch that claimed it, if any.
    pub exported_by: Option<String>,
    /// True once that batch's file is written.
    pub exported: bool,
}

type EventRow = (
    i64,
    i16,
    i64,
    i64,
    String,
    Option<i64>,
    i64,
    Option<String>,
    bool,
);

const SELECT: &str = "SELECT e.id, e.kind, e.room_id, e.user_id, e.content, e.msg_seq, e.at_us, \
     e.exported_by, (x.done_at_us IS NOT NULL) \
     FROM compliance_events e LEFT JOIN compliance_exports x ON x.token = e.exported_by";

fn from_row(r: EventRow) -> ComplianceEvent {
    ComplianceEvent {
        id: r.0,
        event: NewComplianceEvent {
            kind: r.1,
            room: r.2,
            user: r.3,
            content: r.4,
            seq: r.5,
            at_us: r.6,
        },
        exported_by: r.7,
        exported: r.8,
    }
}

impl Store {
    /// Record events, in order, in one transaction.
    pub async fn insert_compliance(&self, events: &[NewComplianceEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        on_pool!(self, write, p => {
            let mut tx = p.begin().await?;
            for chunk in events.chunks(CHUNK) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO compliance_events (kind, room_id, user_id, content, msg_seq, at_us) ",
                );
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(e.kind).push_bind(e.room).push_bind(e.user)
                        .push_bind(e.content.as_str()).push_bind(e.seq).push_bind(e.at_us);
                });
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Claim up to `limit` unexported events, oldest first, for the batch `token` of
    /// `server`; returns how many. Claiming none records no batch.
    pub async fn claim_compliance(
        &self,
        token: &str,
        server: &str,
        limit: u32,
        now_us: i64,
    ) -> Result<u64> {
        let record = "INSERT INTO compliance_exports (token, server, claimed_at_us, events) \
                      VALUES ($1, $2, $3, 0)";
        let claim = "UPDATE compliance_events SET exported_by = $1 \
                     WHERE exported_by IS NULL AND id IN (SELECT id FROM compliance_events \
                     WHERE exported_by IS NULL ORDER BY id LIMIT $2)";
        let count = "UPDATE compliance_exports SET events = $1 WHERE token = $2";
        let n = on_pool!(self, write, p => {
            let mut tx = p.begin().await?;
            // The write comes first, so that SQLite takes its write lock at once instead of
            // upgrading a read transaction (which fails rather than waits).
            sqlx::query(record).bind(token).bind(server).bind(now_us).execute(&mut *tx).await?;
            let n = sqlx::query(claim).bind(token).bind(i64::from(limit))
                .execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                tx.rollback().await?;
            } else {
                sqlx::query(count).bind(n as i64).bind(token).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            n
        });
        Ok(n)
    }

    /// Take over one batch claimed before `stale_before_us` and never finished; returns its
    /// token. Two exporters asking at once never get the same batch: the update only
    /// succeeds if the claim time is still the one read.
    pub async fn take_over_compliance(
        &self,
        server: &str,
        stale_before_us: i64,
        now_us: i64,
    ) -> Result<Option<String>> {
        let find = "SELECT token, claimed_at_us FROM compliance_exports \
                    WHERE done_at_us IS NULL AND claimed_at_us < $1 \
                    ORDER BY claimed_at_us, token LIMIT 1";
        let take = "UPDATE compliance_exports SET server = $1, claimed_at_us = $2 \
                    WHERE token = $3 AND claimed_at_us = $4 AND done_at_us IS NULL";
        loop {
            let found: Option<(String, i64)> = on_pool!(self, write, p =>
                sqlx::query_as(find).bind(stale_before_us).fetch_optional(p).await?);
            let Some((token, claimed)) = found else {
                return Ok(None);
            };
            let n = on_pool!(self, write, p => sqlx::query(take).bind(server).bind(now_us)
                .bind(token.as_str()).bind(claimed).execute(p).await?.rows_affected());
            if n == 1 {
                return Ok(Some(token));
            }
            // Another exporter took it first: look for the next one.
        }
    }

    /// The events of a batch, oldest first.
    pub async fn compliance_batch(&self, token: &str) -> Result<Vec<ComplianceEvent>> {
        let sql = format!("{SELECT} WHERE e.exported_by = $1 ORDER BY e.id");
        let rows: Vec<EventRow> = on_pool!(self, write, p =>
            sqlx::query_as(&sql).bind(token).fetch_all(p).await?);
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Mark a batch's file as written.
    pub async fn finish_compliance(&self, token: &str, file: &str, now_us: i64) -> Result<()> {
        let sql = "UPDATE compliance_exports SET done_at_us = $1, file = $2 WHERE token = $3";
        on_pool!(self, write, p =>
            sqlx::query(sql).bind(now_us).bind(file).bind(token).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Every recorded event, oldest first (tests and inspection).
    pub async fn compliance_events(&self) -> Result<Vec<ComplianceEvent>> {
        let sql = format!("{SELECT} ORDER BY e.id");
        let rows: Vec<EventRow> =
            on_pool!(self, read, p => sqlx::query_as(&sql).fetch_all(p).await?);
        Ok(rows.into_iter().map(from_row).collect())
    }
}
