//! Numbering and storing posts: the database is the sequencer of every room.
//!
//! One transaction per batch of posts: it recognises retries, raises each room's
//! `last_seq` by the number of its new posts (taking the rooms' row locks — in ascending
//! id order, so that two chat servers committing at once never deadlock), numbers the new
//! posts in batch order below the new `last_seq`, and inserts them. Whichever chat server
//! of a pool a post arrives at, its number comes from this one row per room: numbers are
//! global, gapless and in commit order, and a batch that fails consumes none.
//!
//! Retries: a post whose author and client id match a message the posting server had not
//! delivered when the post arrived (`Post::seen_up_to`) is acknowledged with that message's
//! number and stored no second time. The server looked among what it had delivered in its
//! own memory already; so the database is searched only for posts that may be retries it
//! cannot see — one of its own still in the commit queue (`Post::in_flight_retry`), or, in
//! a pool, one committed by another server (`search_all`). Earlier posts of the same batch
//! count too. A single server's batch is four statements: BEGIN, the raise, the insert,
//! COMMIT — every statement is a round trip to the database (or its worker thread), and
//! under load those round trips, not the rows, are what a commit's time is made of.

use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::{on_pool, Result, Store};
use crate::protocol::Message;

/// Rows per multi-row INSERT (8 columns: 8 × 1,000 binds, under both engines' limits).
const CHUNK: usize = 1000;

/// Rooms per raise or retry statement.
const ROOM_CHUNK: usize = 200;

/// One post to number and store. `msg.seq` is set when it is stored.
#[derive(Debug)]
pub struct Post<'a> {
    /// The message (room, author, client id, text, times); `seq` is assigned here.
    pub msg: &'a mut Message,
    /// Store the text (false: the category keeps no history; numbered only).
    pub persist: bool,
    /// The room's last number the posting server had delivered when the post arrived: a
    /// retry of a message up to it was looked for in memory.
    pub seen_up_to: i64,
    /// A post of the same author and client id was in this server's commit queue when
    /// this one arrived: look for it in the database.
    pub in_flight_retry: bool,
}

/// What became of one post of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Numbered (and stored, if persisted): `msg.seq` holds its number.
    Stored,
    /// A retry of a stored message (same room, author and client message id):
    /// acknowledged with the original's number and time.
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

/// (room, author, client id) → (seq, posted_at_us) of messages found in the database.
type Found = HashMap<(i64, i64, String), (i64, i64)>;

/// One room's search for retries: its messages after `after` with one of `ids`.
#[derive(Debug, PartialEq, Eq)]
struct RetrySearch {
    room: i64,
    after: i64,
    ids: Vec<String>,
}

/// Where to look for retries: per room, the messages after the least any searched poster
/// had seen, with the searched posts' client ids. `search_all`: every persisted post is
/// searched (a pool: another server may have committed the original).
fn retry_searches(posts: &[Post<'_>], search_all: bool) -> Vec<RetrySearch> {
    let mut by_room: HashMap<i64, RetrySearch> = HashMap::new();
    for p in posts
        .iter()
        .filter(|p| p.persist && (search_all || p.in_flight_retry))
    {
        let s = by_room.entry(p.msg.room).or_insert_with(|| RetrySearch {
            room: p.msg.room,
            after: p.seen_up_to,
            ids: Vec::new(),
        });
        s.after = s.after.min(p.seen_up_to);
        if !s.ids.contains(&p.msg.client_msg_id) {
            s.ids.push(p.msg.client_msg_id.clone());
        }
    }
    let mut out: Vec<RetrySearch> = by_room.into_values().collect();
    out.sort_unstable_by_key(|s| s.room);
    out
}

/// What the first pass makes of a post, before the numbers are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// New: the `k`th new post of its room in this batch (0-based).
    New(i64),
    /// A retry of a stored message.
    Found(i64, i64),
    /// A retry of post `i` of this batch.
    SameAs(usize),
}

/// First pass: which posts are new (and how many per room), which are retries.
fn plan(posts: &[Post<'_>], found: &Found) -> (Vec<Plan>, HashMap<i64, i64>) {
    let mut counts: HashMap<i64, i64> = HashMap::new();
    let mut firsts: HashMap<(i64, i64, &str), usize> = HashMap::new();
    let plans = posts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let m = &*p.msg;
            let key = (m.room, m.author, m.client_msg_id.clone());
            if let Some((seq, at)) = found.get(&key) {
                return Plan::Found(*seq, *at);
            }
            if let Some(first) = firsts.get(&(m.room, m.author, m.client_msg_id.as_str())) {
                return Plan::SameAs(*first);
            }
            firsts.insert((m.room, m.author, m.client_msg_id.as_str()), i);
            let k = counts.entry(m.room).or_insert(0);
            *k += 1;
            Plan::New(*k - 1)
        })
        .collect();
    (plans, counts)
}

/// Second pass: number the new posts below each room's raised `last_seq` (`tops`; a room
/// missing there was deleted) and resolve retries.
fn number(
    posts: &mut [Post<'_>],
    plans: &[Plan],
    counts: &HashMap<i64, i64>,
    tops: &HashMap<i64, i64>,
) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = Vec::with_capacity(posts.len());
    for (i, plan) in plans.iter().enumerate() {
        let outcome = match *plan {
            Plan::Found(seq, posted_at_us) => Outcome::Duplicate { seq, posted_at_us },
            Plan::SameAs(first) => match out[first] {
                Outcome::Stored => Outcome::Duplicate {
                    seq: posts[first].msg.seq,
                    posted_at_us: posts[first].msg.posted_at_us,
                },
                other => other,
            },
            Plan::New(k) => {
                let room = posts[i].msg.room;
                match (tops.get(&room), counts.get(&room)) {
                    (Some(top), Some(n)) => {
                        posts[i].msg.seq = top - n + 1 + k;
                        Outcome::Stored
                    }
                    _ => Outcome::NoRoom,
                }
            }
        };
        out.push(outcome);
    }
    out
}

impl Store {
    /// Number and store a batch in one transaction (see the module doc). `search_all`:
    /// other chat servers commit to this database too.
    pub async fn number_and_store(
        &self,
        posts: &mut [Post<'_>],
        search_all: bool,
    ) -> Result<Vec<Outcome>> {
        if posts.is_empty() {
            return Ok(Vec::new());
        }
        let searches = retry_searches(posts, search_all);
        // PostgreSQL takes the rows' locks in ascending id order first; SQLite has one
        // writer, its transaction is exclusive already.
        let (head, set, from) = if self.is_sqlite() {
            ("UPDATE rooms SET last_seq = last_seq + CASE id", "", "")
        } else {
            (
                "WITH locked AS (SELECT id FROM rooms WHERE id IN (",
                ") ORDER BY id FOR UPDATE) \
                 UPDATE rooms SET last_seq = rooms.last_seq + CASE rooms.id",
                " FROM locked WHERE rooms.id = locked.id RETURNING rooms.id, rooms.last_seq",
            )
        };
        on_pool!(self, write, p => {
            let mut tx = p.begin().await?;
            let mut found: Found = HashMap::new();
            for chunk in searches.chunks(ROOM_CHUNK) {
                let mut qb = QueryBuilder::new(
                    "SELECT room_id, author_id, client_msg_id, seq, posted_at_us FROM messages WHERE ",
                );
                for (i, s) in chunk.iter().enumerate() {
                    if i > 0 {
                        qb.push(" OR ");
                    }
                    qb.push("(room_id = ").push_bind(s.room).push(" AND seq > ").push_bind(s.after);
                    qb.push(" AND client_msg_id IN (");
                    let mut ids = qb.separated(", ");
                    for id in &s.ids {
                        ids.push_bind(id.as_str());
                    }
                    qb.push("))");
                }
                let rows: Vec<(i64, i64, String, i64, i64)> =
                    qb.build_query_as().fetch_all(&mut *tx).await?;
                for (room, author, cid, seq, at) in rows {
                    found.insert((room, author, cid), (seq, at));
                }
            }
            let (plans, counts) = plan(posts, &found);
            let mut raise: Vec<(i64, i64)> = counts.iter().map(|(r, n)| (*r, *n)).collect();
            raise.sort_unstable();
            let mut tops: HashMap<i64, i64> = HashMap::with_capacity(raise.len());
            for chunk in raise.chunks(ROOM_CHUNK) {
                let mut qb = QueryBuilder::new(head);
                if !set.is_empty() {
                    let mut ids = qb.separated(", ");
                    for (room, _) in chunk {
                        ids.push_bind(*room);
                    }
                    qb.push(set);
                }
                for (room, n) in chunk {
                    qb.push(" WHEN ").push_bind(*room).push(" THEN ").push_bind(*n);
                }
                qb.push(" END");
                if from.is_empty() {
                    qb.push(" WHERE id IN (");
                    let mut ids = qb.separated(", ");
                    for (room, _) in chunk {
                        ids.push_bind(*room);
                    }
                    qb.push(") RETURNING id, last_seq");
                } else {
                    qb.push(from);
                }
                let rows: Vec<(i64, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
                tops.extend(rows);
            }
            let outcomes = number(posts, &plans, &counts, &tops);
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
            tx.commit().await?;
            Ok(outcomes)
        })
    }
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

    fn posts<'a>(ms: &'a mut [Message], seen: &[i64], flagged: &[bool]) -> Vec<Post<'a>> {
        ms.iter_mut()
            .enumerate()
            .map(|(i, m)| Post {
                msg: m,
                persist: true,
                seen_up_to: seen.get(i).copied().unwrap_or(0),
                in_flight_retry: flagged.get(i).copied().unwrap_or(false),
            })
            .collect()
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
        let mut ps = posts(&mut ms, &[], &[]);
        let found = Found::from([((1, 6, "old".to_string()), (9, 3))]);
        let (plans, counts) = plan(&ps, &found);
        assert_eq!(counts, HashMap::from([(1, 2), (2, 1), (3, 1)]));
        // Rooms 1 and 2 raised to 12 and 1; room 3 is gone.
        let tops = HashMap::from([(1, 12), (2, 1)]);
        let out = number(&mut ps, &plans, &counts, &tops);
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
        drop(ps);
        assert_eq!([ms[0].seq, ms[1].seq, ms[2].seq], [11, 1, 12]);
        assert_eq!(ms[3].client_msg_id, "a", "a retry keeps its id");
    }

    #[test]
    fn the_database_is_searched_only_where_a_retry_may_hide() {
        let mut ms = [msg(1, 5, "a"), msg(1, 6, "b"), msg(2, 5, "c")];
        let ps = posts(&mut ms, &[8, 6, 20], &[false, true, false]);
        assert_eq!(
            retry_searches(&ps, false),
            vec![RetrySearch {
                room: 1,
                after: 6,
                ids: vec!["b".to_string()]
            }],
            "one server: only the post whose original was in its commit queue"
        );
        let all = retry_searches(&ps, true);
        assert_eq!(all.len(), 2, "a pool: every post");
        assert_eq!((all[0].room, all[0].after, all[0].ids.len()), (1, 6, 2));
    }
}
