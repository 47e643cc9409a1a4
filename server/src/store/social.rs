//! Invitations and followed rooms: the `invitations` and `follows` tables.
//!
//! Storage only: who may be invited, follow or see what is decided by the chat core
//! (`chat::social`). Every read joins `rooms`, so rows left behind by a deleted room are
//! never returned.

use super::{on_pool, Result, Store};

/// A pending invitation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRow {
    /// The room.
    pub room: i64,
    /// Who added the user to the room.
    pub inviter: i64,
    /// When (µs since the epoch).
    pub at_us: i64,
}

/// A followed room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowRow {
    /// The room.
    pub room: i64,
    /// The highest sequence number the user has read.
    pub last_read_seq: i64,
    /// The room's last sequence number as the database knows it: the larger of the stored
    /// messages' and the room's recorded `last_seq` (rooms without history, cleared
    /// history). The chat server may know of later, committed messages.
    pub stored_last_seq: i64,
}

/// The room's recorded `last_seq` and its highest stored message, per followed room.
const FOLLOW_COLUMNS: &str = "f.room_id, f.last_read_seq, r.last_seq, \
     COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.room_id = f.room_id), 0) \
     FROM follows f JOIN rooms r ON r.id = f.room_id";

type FollowTuple = (i64, i64, i64, i64);

fn follow_from(t: FollowTuple) -> FollowRow {
    FollowRow {
        room: t.0,
        last_read_seq: t.1,
        stored_last_seq: t.2.max(t.3),
    }
}

impl Store {
    /// Record an invitation; returns false when the user already has one to that room
    /// (the first is kept).
    pub async fn create_invitation(
        &self,
        user: i64,
        room: i64,
        inviter: i64,
        at_us: i64,
    ) -> Result<bool> {
        let sql = "INSERT INTO invitations (user_id, room_id, inviter_id, at_us) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, room_id) DO NOTHING";
        let n = on_pool!(self, write, p => sqlx::query(sql)
            .bind(user).bind(room).bind(inviter).bind(at_us)
            .execute(p).await?.rows_affected());
        Ok(n > 0)
    }

    /// A user's pending invitations, oldest first.
    pub async fn invitations_of(&self, user: i64) -> Result<Vec<InvitationRow>> {
        let sql = "SELECT i.room_id, i.inviter_id, i.at_us FROM invitations i \
                   JOIN rooms r ON r.id = i.room_id WHERE i.user_id = $1 \
                   ORDER BY i.at_us, i.room_id";
        let rows: Vec<(i64, i64, i64)> =
            on_pool!(self, read, p => sqlx::query_as(sql).bind(user).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(room, inviter, at_us)| InvitationRow {
                room,
                inviter,
                at_us,
            })
            .collect())
    }

    /// Every pending invitation, as (user, room): what a chat server keeps in memory so
    /// that a join asks the database only when there is one to use up.
    pub async fn pending_invitations(&self) -> Result<Vec<(i64, i64)>> {
        let sql = "SELECT user_id, room_id FROM invitations";
        Ok(on_pool!(self, read, p => sqlx::query_as(sql).fetch_all(p).await?))
    }

    /// True when the user has an invitation to the room (a read: joins ask this first,
    /// so that a join without an invitation never waits for the writer).
    pub async fn has_invitation(&self, user: i64, room: i64) -> Result<bool> {
        let sql = "SELECT COUNT(*) FROM invitations WHERE user_id = $1 AND room_id = $2";
        let n: i64 = on_pool!(self, read, p => sqlx::query_scalar(sql)
            .bind(user).bind(room).fetch_one(p).await?);
        Ok(n > 0)
    }

    /// Remove a user's invitation to a room; returns how many were removed (0 or 1).
    pub async fn remove_invitation(&self, user: i64, room: i64) -> Result<u64> {
        let sql = "DELETE FROM invitations WHERE user_id = $1 AND room_id = $2";
        Ok(
            on_pool!(self, write, p => sqlx::query(sql).bind(user).bind(room)
            .execute(p).await?.rows_affected()),
        )
    }

    /// Follow a room, read up to `last_read_seq`. Following again changes nothing.
    pub async fn follow(&self, user: i64, room: i64, last_read_seq: i64) -> Result<()> {
        let sql = "INSERT INTO follows (user_id, room_id, last_read_seq) VALUES ($1, $2, $3) \
                   ON CONFLICT (user_id, room_id) DO NOTHING";
        on_pool!(self, write, p => sqlx::query(sql).bind(user).bind(room).bind(last_read_seq)
            .execute(p).await?.rows_affected());
        Ok(())
    }

    /// Stop following a room; returns how many follows were removed (0 or 1).
    pub async fn unfollow(&self, user: i64, room: i64) -> Result<u64> {
        let sql = "DELETE FROM follows WHERE user_id = $1 AND room_id = $2";
        Ok(
            on_pool!(self, write, p => sqlx::query(sql).bind(user).bind(room)
            .execute(p).await?.rows_affected()),
        )
    }

    /// Every room a user follows, by room id.
    pub async fn follows_of(&self, user: i64) -> Result<Vec<FollowRow>> {
        let sql = format!("SELECT {FOLLOW_COLUMNS} WHERE f.user_id = $1 ORDER BY f.room_id");
        let rows: Vec<FollowTuple> =
            on_pool!(self, read, p => sqlx::query_as(&sql).bind(user).fetch_all(p).await?);
        Ok(rows.into_iter().map(follow_from).collect())
    }

    /// One followed room, if the user follows it.
    pub async fn follow_of(&self, user: i64, room: i64) -> Result<Option<FollowRow>> {
        let sql = format!("SELECT {FOLLOW_COLUMNS} WHERE f.user_id = $1 AND f.room_id = $2");
        let row: Option<FollowTuple> = on_pool!(self, read, p => sqlx::query_as(&sql)
            .bind(user).bind(room).fetch_optional(p).await?);
        Ok(row.map(follow_from))
    }

    /// The room's last sequence number as the database knows it (see
    /// [`FollowRow::stored_last_seq`]); 0 for an unknown room.
    pub async fn stored_last_seq(&self, room: i64) -> Result<i64> {
        let sql = "SELECT r.last_seq, \
                   COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.room_id = r.id), 0) \
                   FROM rooms r WHERE r.id = $1";
        let row: Option<(i64, i64)> =
            on_pool!(self, read, p => sqlx::query_as(sql).bind(room).fetch_optional(p).await?);
        Ok(row.map(|(a, b)| a.max(b)).unwrap_or(0))
    }

    /// Raise a follow's read mark to `seq`; a lower `seq` changes nothing (the mark never
    /// moves back). Returns how many follows changed.
    pub async fn mark_read(&self, user: i64, room: i64, seq: i64) -> Result<u64> {
        let sql = "UPDATE follows SET last_read_seq = $3 \
                   WHERE user_id = $1 AND room_id = $2 AND last_read_seq < $3";
        Ok(
            on_pool!(self, write, p => sqlx::query(sql).bind(user).bind(room).bind(seq)
            .execute(p).await?.rows_affected()),
        )
    }

    /// Forget a deleted room's invitations and follows.
    pub async fn forget_room_social(&self, room: i64) -> Result<()> {
        on_pool!(self, write, p => {
            let mut tx = p.begin().await?;
            for sql in ["DELETE FROM invitations WHERE room_id = $1",
                        "DELETE FROM follows WHERE room_id = $1"] {
                sqlx::query(sql).bind(room).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
