//! Numbering and storing posts: the database is the sequencer of every room.
//!
//! One transaction per batch of posts: it locks the batch's rooms (in ascending id order,
//! so that two chat servers committing at once never deadlock), reads each room's
//! `last_seq`, recognises retries among the room's most recent messages, numbers the new
//! posts from `last_seq + 1` in batch order, inserts them and raises `last_seq`. Whichever
//! chat server of a pool a post arrives at, its number comes from this one row per room:
//! numbers are global, gapless and in commit order, and a batch that fails consumes none.
//!
//! SQLite has one writer, so its transaction is already exclusive; PostgreSQL takes the
//! rooms' row locks with `SELECT … ORDER BY id FOR UPDATE`.

use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::{on_pool, Result, Store};
use crate::protocol::Message;

/// Rows per multi-row INSERT (8 columns: 8 × 1,000 binds, under both engines' limits).
const CHUNK: usize = 1000;

/// Rooms per lock or retry query (2 binds each).
const ROOM_CHUNK: usize = 500;

/// One post to number and store. `msg.seq` is set when it is stored.
#[derive(Debug)]
pub struct Post<'a> {
    /// The message (room, author, client id, text, times); `seq` is assigned here.
    pub msg: &'a mut Message,
    /// Store the text (false: the category keeps no history; numbered only).
    pub persist: bool,
}

/// What became of one post of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Numbered (and stored, if persisted): `msg.seq` holds its number.
    Stored,
    /// A retry of a stored message (same room, author and client message id among the
    /// room's `window` most recent): acknowledged with the original's number and time.
    Duplicate {
        /// The original's number.
        seq: i64,
        /// The original's time.
        posted_at_us: i64,
    },
    /// The room no longer exists (deleted meanwhile).
    NoRoom,
    /// The database refused the batch for as long as the group committer retries it
    /// (reported by the committer, never by the numbering itself).
    Failed,
}

type Recent = HashMap<(i64, i64, String), (i64, i64)>;

impl Store {
    /// Number and store a batch in one transaction (see the module doc). `window`: how
    /// many of a room's most recent messages are searched for retries.
    pub async fn number_and_store(
        &self,
        posts: &mut [Post<'_>],
        window: usize,
    ) -> Result<Vec<Outcome>> {
        if posts.is_empty() {
            return Ok(Vec::new());
        }
        let mut rooms: Vec<i64> = posts.iter().map(|p| p.msg.room).collect();
        rooms.sort_unstable();
        rooms.dedup();
        let lock = if self.is_sqlite() {
            ""
        } else {
            " ORDER BY id FOR UPDATE"
        };
        on_pool!(self, write, p => {
            let mut tx = p.begin().await?;
            let mut tops: HashMap<i64, i64> = HashMap::with_capacity(rooms.len());
            for chunk in rooms.chunks(ROOM_CHUNK) {
                let mut qb = QueryBuilder::new("SELECT id, last_seq FROM rooms WHERE id IN (");
                let mut sep = qb.separated(", ");
                for r in chunk {
                    sep.push_bind(*r);
                }
                qb.push(")").push(lock);
                let rows: Vec<(i64, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
                tops.extend(rows);
            }
            let mut recent: Recent = HashMap::new();
            let searched: Vec<(i64, i64)> = if window == 0 {
                Vec::new()
            } else {
                rooms
                    .iter()
                    .filter_map(|r| tops.get(r).map(|top| (*r, top - window as i64)))
                    .collect()
            };
            for chunk in searched.chunks(ROOM_CHUNK) {
                let mut qb = QueryBuilder::new(
                    "SELECT room_id, author_id, client_msg_id, seq, posted_at_us FROM messages WHERE ",
                );
                for (i, (room, floor)) in chunk.iter().enumerate() {
                    if i > 0 {
                        qb.push(" OR ");
                    }
                    qb.push("(room_id = ").push_bind(*room).push(" AND seq > ").push_bind(*floor).push(")");
                }
                let rows: Vec<(i64, i64, String, i64, i64)> =
                    qb.build_query_as().fetch_all(&mut *tx).await?;
                for (room, author, cid, seq, at) in rows {
                    recent.insert((room, author, cid), (seq, at));
                }
            }
            let outcomes = number(posts, &mut tops, &mut recent);
            let stored: Vec<&Message> = posts
                .iter()
                .zip(&outcomes)
                .filter(|(p, o)| p.persist && **o == Outcome::Stored)
                .map(|(p, _)| &*p.msg)
                .collect();
            for chunk in stored.chunks(CHUNK) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO messages (room_id, seq, author_id, client_msg_id, text, \
                     posted_at_us, sent_at_us, removed) ",
                );
                qb.push_values(chunk, |mut b, m| {
                    b.push_bind(m.room).push_bind(m.seq).push_bind(m.author)
                        .push_bind(m.client_msg_id.as_str()).push_bind(m.text.as_str())
                        .push_bind(m.posted_at_us).push_bind(m.sent_at_us).push_bind(m.removed);
                });
                qb.build().execute(&mut *tx).await?;
            }
            let mut raised: Vec<(i64, i64)> = posts
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| **o == Outcome::Stored)
                .map(|(p, _)| (p.msg.room, p.msg.seq))
                .collect();
            raised.sort_unstable_by(|a, b| b.cmp(a));
            raised.dedup_by_key(|(room, _)| *room);
            for chunk in raised.chunks(ROOM_CHUNK) {
                let mut qb = QueryBuilder::new("UPDATE rooms SET last_seq = CASE id");
                for (room, top) in chunk {
                    qb.push(" WHEN ").push_bind(*room).push(" THEN ").push_bind(*top);
                }
                qb.push(" END WHERE id IN (");
                let mut sep = qb.separated(", ");
                for (room, _) in chunk {
                    sep.push_bind(*room);
                }
                qb.push(")");
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }
}

/// Number `posts` in order from each room's top, recognising retries among `recent` (and
/// earlier posts of the same batch). Pure: the transaction around it does the I/O.
fn number(
    posts: &mut [Post<'_>],
    tops: &mut HashMap<i64, i64>,
    recent: &mut Recent,
) -> Vec<Outcome> {
    posts
        .iter_mut()
        .map(|p| {
            let m = &mut *p.msg;
            let Some(top) = tops.get_mut(&m.room) else {
                return Outcome::NoRoom;
            };
            let key = (m.room, m.author, m.client_msg_id.clone());
            if let Some((seq, posted_at_us)) = recent.get(&key) {
                return Outcome::Duplicate {
                    seq: *seq,
                    posted_at_us: *posted_at_us,
                };
            }
            *top += 1;
            m.seq = *top;
            recent.insert(key, (m.seq, m.posted_at_us));
            Outcome::Stored
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(room: i64, author: i64, cid: &str) -> Message {
        Message {
            room,
            seq: 0,
            author,
            text: "t".into(),
            client_msg_id: cid.into(),
            posted_at_us: 7,
            sent_at_us: None,
            removed: false,
        }
    }

    #[test]
    fn numbers_follow_each_room_and_retries_get_the_original() {
        let mut ms = [
            msg(1, 5, "a"),
            msg(2, 5, "a"),
            msg(1, 5, "b"),
            msg(1, 5, "a"),
            msg(3, 5, "x"),
            msg(1, 6, "old"),
        ];
        let mut posts: Vec<Post> = ms
            .iter_mut()
            .map(|m| Post {
                msg: m,
                persist: true,
            })
            .collect();
        let mut tops = HashMap::from([(1, 10), (2, 0)]);
        let mut recent = Recent::from([((1, 6, "old".to_string()), (9, 3))]);
        let out = number(&mut posts, &mut tops, &mut recent);
        assert_eq!(
            out,
            vec![
                Outcome::Stored,
                Outcome::Stored,
                Outcome::Stored,
                Outcome::Duplicate {
                    seq: 11,
                    posted_at_us: 7
                },
                Outcome::NoRoom,
                Outcome::Duplicate {
                    seq: 9,
                    posted_at_us: 3
                },
            ]
        );
        drop(posts);
        assert_eq!([ms[0].seq, ms[1].seq, ms[2].seq], [11, 1, 12]);
        assert_eq!(tops[&1], 12);
        assert_eq!(ms[3].client_msg_id, "a", "a retry keeps its id");
    }
}
