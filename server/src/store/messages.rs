//! Message storage: reading history, search pages, and the
//! administrators' edits (clear before a date, remove or replace one message).

use sqlx::QueryBuilder;

use super::{on_pool, Result, Store};
use crate::protocol::Message;

type MsgRow = (i64, i64, i64, String, String, i64, Option<i64>, bool);

const COLUMNS: &str =
    "room_id, seq, author_id, client_msg_id, text, posted_at_us, sent_at_us, removed";

fn from_row(r: MsgRow) -> Message {
    Message {
        room: r.0,
        seq: r.1,
        author: r.2,
        client_msg_id: r.3,
        text: r.4,
        posted_at_us: r.5,
        sent_at_us: r.6,
        removed: r.7,
    }
}

/// What a search asks the store for: one page, newest first, before a cursor.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Words that must all appear (lower-cased).
    pub words: Vec<String>,
    /// An exact phrase (lower-cased).
    pub phrase: Option<String>,
    /// Author.
    pub author: Option<i64>,
    /// Posted at or after.
    pub from_us: Option<i64>,
    /// Posted before.
    pub to_us: Option<i64>,
    /// Only these rooms.
    pub rooms: Option<Vec<i64>>,
}

/// Escape `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

impl Store {
    /// A room's numbering and recent history, read for its live state: its `last_seq`
    /// (the number of its last committed post, stored or not) and the last `n` messages
    /// up to it, oldest first. `last_seq` is read first: a post committed in between is
    /// above it, and arrives as a delivery instead.
    pub async fn room_tail(&self, room: i64, n: u32) -> Result<(Vec<Message>, i64)> {
        let top: Option<i64> = on_pool!(self, read, p =>
            sqlx::query_scalar("SELECT last_seq FROM rooms WHERE id = $1").bind(room).fetch_optional(p).await?);
        let top = top.unwrap_or(0);
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE room_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT $3"
        );
        let rows: Vec<MsgRow> = on_pool!(self, read, p =>
            sqlx::query_as(&sql).bind(room).bind(top).bind(i64::from(n)).fetch_all(p).await?);
        let mut out: Vec<Message> = rows.into_iter().map(from_row).collect();
        out.reverse();
        Ok((out, top))
    }

    /// The `last_seq` of each of `rooms` that exists.
    pub async fn last_seqs(&self, rooms: &[i64]) -> Result<std::collections::HashMap<i64, i64>> {
        let mut out = std::collections::HashMap::with_capacity(rooms.len());
        for chunk in rooms.chunks(1000) {
            let rows: Vec<(i64, i64)> = on_pool!(self, read, p => {
                let mut qb = QueryBuilder::new("SELECT id, last_seq FROM rooms WHERE id IN (");
                let mut sep = qb.separated(", ");
                for r in chunk {
                    sep.push_bind(*r);
                }
                qb.push(")");
                qb.build_query_as().fetch_all(p).await?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// The last `n` messages of a room, oldest first.
    pub async fn recent_messages(&self, room: i64, n: u32) -> Result<Vec<Message>> {
        let sql =
            format!("SELECT {COLUMNS} FROM messages WHERE room_id = $1 ORDER BY seq DESC LIMIT $2");
        let rows: Vec<MsgRow> = on_pool!(self, read, p =>
            sqlx::query_as(&sql).bind(room).bind(i64::from(n)).fetch_all(p).await?);
        let mut out: Vec<Message> = rows.into_iter().map(from_row).collect();
        out.reverse();
        Ok(out)
    }

    /// Messages of a room with seq > `after`, oldest first, at most `limit`.
    pub async fn messages_after(&self, room: i64, after: i64, limit: u32) -> Result<Vec<Message>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        );
        let rows: Vec<MsgRow> = on_pool!(self, read, p =>
            sqlx::query_as(&sql).bind(room).bind(after).bind(i64::from(limit)).fetch_all(p).await?);
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// The highest stored sequence number of a room (0 when none).
    pub async fn max_seq(&self, room: i64) -> Result<i64> {
        let sql = "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE room_id = $1";
        Ok(
            on_pool!(self, read, p => sqlx::query_scalar::<_, i64>(sql).bind(room).fetch_one(p).await?),
        )
    }

    /// One page of search results, newest first, strictly before `cursor` =
    /// (posted_at_us, room, seq) when given.
    pub async fn search_page(
        &self,
        q: &SearchQuery,
        cursor: Option<(i64, i64, i64)>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let rows: Vec<MsgRow> = on_pool!(self, read, p => {
            let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM messages WHERE removed = FALSE"));
            for w in &q.words {
                qb.push(" AND LOWER(text) LIKE ").push_bind(like_pattern(w)).push(" ESCAPE '\\'");
            }
            if let Some(ph) = &q.phrase {
                qb.push(" AND LOWER(text) LIKE ").push_bind(like_pattern(ph)).push(" ESCAPE '\\'");
            }
            if let Some(a) = q.author {
                qb.push(" AND author_id = ").push_bind(a);
            }
            if let Some(t) = q.from_us {
                qb.push(" AND posted_at_us >= ").push_bind(t);
            }
            if let Some(t) = q.to_us {
                qb.push(" AND posted_at_us < ").push_bind(t);
            }
            if let Some(rooms) = &q.rooms {
                qb.push(" AND room_id IN (");
                let mut sep = qb.separated(", ");
                for r in rooms {
                    sep.push_bind(*r);
                }
                qb.push(")");
            }
            if let Some((t, room, seq)) = cursor {
                qb.push(" AND (posted_at_us < ").push_bind(t)
                    .push(" OR (posted_at_us = ").push_bind(t)
                    .push(" AND (room_id < ").push_bind(room)
                    .push(" OR (room_id = ").push_bind(room).push(" AND seq < ").push_bind(seq)
                    .push("))))");
            }
            qb.push(" ORDER BY posted_at_us DESC, room_id DESC, seq DESC LIMIT ").push_bind(i64::from(limit));
            qb.build_query_as().fetch_all(p).await?
        });
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Delete a room's messages posted before `before_us`; returns how many.
    pub async fn clear_history(&self, room: i64, before_us: i64) -> Result<u64> {
        let sql = "DELETE FROM messages WHERE room_id = $1 AND posted_at_us < $2";
        Ok(
            on_pool!(self, write, p => sqlx::query(sql).bind(room).bind(before_us).execute(p).await?.rows_affected()),
        )
    }

    /// Replace a message's text, or remove it; returns false when there is no such message.
    pub async fn edit_message(
        &self,
        room: i64,
        seq: i64,
        text: &str,
        removed: bool,
    ) -> Result<bool> {
        let sql = "UPDATE messages SET text = $1, removed = $2 WHERE room_id = $3 AND seq = $4";
        let n = on_pool!(self, write, p =>
            sqlx::query(sql).bind(text).bind(removed).bind(room).bind(seq).execute(p).await?.rows_affected());
        Ok(n > 0)
    }

    /// Every stored message of a room, oldest first (reconciliation and tests).
    pub async fn all_messages(&self, room: i64) -> Result<Vec<Message>> {
        self.messages_after(room, 0, u32::MAX).await
    }
}
