//! A multiple-server pool's leases: the active places (`pool_slots`) and drained servers
//! (`pool_servers`). PostgreSQL only: every time here is the database's clock, the one
//! clock all chat servers of a pool share (docs/POOL.md, "Leases").

use super::{Result, Store, StoreError};

/// The database's clock, µs since the epoch.
const NOW_US: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT";

/// One active place as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Slot {
    /// Place number (0–3).
    pub slot: i16,
    /// The server holding it, if any.
    pub holder: Option<String>,
    /// µs until its lease ends (negative: ended), by the database's clock.
    pub remaining_us: i64,
}

impl Store {
    fn pg(&self) -> Result<&sqlx::PgPool> {
        match &self.backend {
            super::Backend::Postgres(p) => Ok(p),
            super::Backend::Sqlite { .. } => Err(StoreError::Unsupported(
                "a multiple-server pool needs PostgreSQL (leases use the database's clock)",
            )),
        }
    }

    /// Create the active places for `servers` (in order), each held by its server for
    /// `grace_us` so that a standby does not take it before that server has started —
    /// unless the pool has places already (then nothing changes).
    pub async fn pool_init(&self, servers: &[String], grace_us: i64) -> Result<()> {
        let slots: Vec<i16> = (0..servers.len() as i16).collect();
        let sql = format!(
            "INSERT INTO pool_slots (slot, holder, expires_us) \
             SELECT s, h, {NOW_US} + $3 FROM UNNEST($1::SMALLINT[], $2::TEXT[]) AS t(s, h) \
             WHERE NOT EXISTS (SELECT 1 FROM pool_slots) ON CONFLICT (slot) DO NOTHING"
        );
        sqlx::query(&sql)
            .bind(&slots)
            .bind(servers)
            .bind(grace_us)
            .execute(self.pg()?)
            .await?;
        Ok(())
    }

    /// Renew `me`'s lease, or else take a place whose lease ended (unless `me` is
    /// drained): the place held, if any, and whether `me` is drained.
    pub async fn pool_hold(&self, me: &str, ttl_us: i64) -> Result<(Option<i16>, bool)> {
        let pg = self.pg()?;
        let drained: bool = sqlx::query_scalar(
            "SELECT COALESCE((SELECT drained FROM pool_servers WHERE name = $1), FALSE)",
        )
        .bind(me)
        .fetch_one(pg)
        .await?;
        let renew = format!(
            "UPDATE pool_slots SET expires_us = {NOW_US} + $2 WHERE holder = $1 RETURNING slot"
        );
        let held: Option<i16> = sqlx::query_scalar(&renew)
            .bind(me)
            .bind(ttl_us)
            .fetch_optional(pg)
            .await?;
        if held.is_some() || drained {
            return Ok((held, drained));
        }
        let take = format!(
            "UPDATE pool_slots SET holder = $1, expires_us = {NOW_US} + $2 \
             WHERE slot = (SELECT slot FROM pool_slots \
                           WHERE holder IS NULL OR expires_us < {NOW_US} \
                           ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING slot"
        );
        let taken = sqlx::query_scalar(&take)
            .bind(me)
            .bind(ttl_us)
            .fetch_optional(pg)
            .await?;
        Ok((taken, false))
    }

    /// Give up `me`'s place (a drained server): a standby may take it at once.
    pub async fn pool_release(&self, me: &str) -> Result<()> {
        sqlx::query("UPDATE pool_slots SET holder = NULL, expires_us = 0 WHERE holder = $1")
            .bind(me)
            .execute(self.pg()?)
            .await?;
        Ok(())
    }

    /// Mark a server drained (or not).
    pub async fn pool_set_drained(&self, name: &str, drained: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO pool_servers (name, drained) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET drained = excluded.drained",
        )
        .bind(name)
        .bind(drained)
        .execute(self.pg()?)
        .await?;
        Ok(())
    }

    /// Make `servers` the active ones (like Set-CsPersistentChatActiveServer): one place
    /// each, held by it for `grace_us`; they are no longer drained. A server left off
    /// finds its place gone at its next renewal.
    pub async fn pool_set_active(&self, servers: &[String], grace_us: i64) -> Result<Vec<Slot>> {
        let slots: Vec<i16> = (0..servers.len() as i16).collect();
        let mut tx = self.pg()?.begin().await?;
        sqlx::query("DELETE FROM pool_slots")
            .execute(&mut *tx)
            .await?;
        let sql = format!(
            "INSERT INTO pool_slots (slot, holder, expires_us) \
             SELECT s, h, {NOW_US} + $3 FROM UNNEST($1::SMALLINT[], $2::TEXT[]) AS t(s, h)"
        );
        sqlx::query(&sql)
            .bind(&slots)
            .bind(servers)
            .bind(grace_us)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE pool_servers SET drained = FALSE WHERE name = ANY($1)")
            .bind(servers)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.pool_slots().await
    }

    /// The active places now.
    pub async fn pool_slots(&self) -> Result<Vec<Slot>> {
        let sql =
            format!("SELECT slot, holder, expires_us - {NOW_US} FROM pool_slots ORDER BY slot");
        let rows: Vec<(i16, Option<String>, i64)> =
            sqlx::query_as(&sql).fetch_all(self.pg()?).await?;
        Ok(rows
            .into_iter()
            .map(|(slot, holder, remaining_us)| Slot {
                slot,
                holder,
                remaining_us,
            })
            .collect())
    }
}
