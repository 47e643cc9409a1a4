//! Storage: the only module that speaks SQL.
//!
//! One [`Store`] fronts either SQLite (the embedded default: WAL, one file for content and
//! one for compliance, a single writer connection and a pool of readers) or PostgreSQL
//! (shared by a pool). Both run the same SQL text: `$N` placeholders are understood by
//! both engines, and the [`on_pool!`] macro expands each query once per backend so that
//! sqlx checks the types for each.
//!
//! Submodules: [`directory`] (users, categories, rooms, roles, provisioning),
//! [`messages`] (history, search, admin edits), [`sequence`] (numbering and storing a batch
//! of posts: the database as every room's sequencer), [`commit`] (the group committer that
//! turns many posts into one transaction), [`compliance`] (compliance events and export batches),
//! [`social`] (invitations and followed rooms), [`files`] (files posted to rooms), [`pool`]
//! (a multiple-server pool's leases).

pub mod commit;
pub mod compliance;
pub mod directory;
pub mod files;
pub mod messages;
pub mod pool;
pub mod sequence;
pub mod social;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL {0:?} (use sqlite:PATH or postgres://...)")]
    BadUrl(String),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A unique name is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored value is not what this build understands.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The operation needs the other database engine.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// Result of storage calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The pools' `after_release` check: a connection that sqlx still counts inside a
/// transaction once the rollback of its dropped transaction has run is closed, not
/// reused. When SQLite rolls a transaction back by itself (a full disk, an I/O error),
/// sqlx's own ROLLBACK then fails and its count stays up; that connection's next `begin`
/// would open a savepoint inside nothing, and its "commit" would commit nothing while
/// reporting success (found by tests/e2e/outage.rs: posts acknowledged on a full disk were
/// never stored).
fn reusable<DB: sqlx::Database>(
    conn: &mut DB::Connection,
    _: sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, std::result::Result<bool, sqlx::Error>> {
    use sqlx::Connection;
    Box::pin(async move {
        if !conn.is_in_transaction() {
            return Ok(true);
        }
        // A dropped transaction queued its rollback; commands run in order, so after a
        // ping it has run.
        conn.ping().await?;
        let sound = !conn.is_in_transaction();
        if !sound {
            tracing::warn!("a database connection left inside a failed transaction is closed");
        }
        Ok(sound)
    })
}

/// Which engine, with its pools.
#[derive(Clone, Debug)]
enum Backend {
    /// SQLite: `write` has one connection (SQLite has one writer); `read` has several.
    Sqlite { write: SqlitePool, read: SqlitePool },
    /// PostgreSQL: one pool for everything.
    Postgres(PgPool),
}

/// A handle to one database (content or compliance). Cloning is shallow: pools are
/// reference-counted.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    url: String,
}

/// Expand `$body` once per backend, with `$p` bound to the pool for writes (`write`) or
/// reads (`read`).
macro_rules! on_pool {
    ($store:expr, write, $p:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite { write: $p, .. } => $body,
            $crate::store::Backend::Postgres($p) => $body,
        }
    };
    ($store:expr, read, $p:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite { read: $p, .. } => $body,
            $crate::store::Backend::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Which schema a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Directory and history.
    Content,
    /// Compliance events.
    Compliance,
}

impl Store {
    /// Open (creating if needed) the database at `url` and bring its schema up to date.
    ///
    /// `sqlite:PATH` (or a path ending in `.db`) opens SQLite in WAL mode with
    /// `synchronous=FULL`: an acknowledged commit survives a crash of the process and of
    /// the machine. `postgres://…` opens PostgreSQL.
    pub async fn open(url: &str, schema: Schema) -> Result<Store> {
        let backend = if let Some(path) = sqlite_path(url) {
            let opts = SqliteConnectOptions::from_str(&format!("sqlite:{path}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory")
                .foreign_keys(true);
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .after_release(reusable::<sqlx::Sqlite>)
                .connect_with(opts.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(30))
                .after_release(reusable::<sqlx::Sqlite>)
                .connect_with(opts.read_only(false))
                .await?;
            Backend::Sqlite { write, read }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .after_release(reusable::<sqlx::Postgres>)
                .connect_with(opts)
                .await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::BadUrl(url.to_string()));
        };
        let store = Store {
            backend,
            url: url.to_string(),
        };
        store.migrate(schema).await?;
        Ok(store)
    }

    /// A second handle on a PostgreSQL database with `connections` of its own and no
    /// migration: for work that must never queue behind the chat's queries for a
    /// connection (a pool's leases).
    pub async fn open_side(url: &str, connections: u32) -> Result<Store> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Unsupported(
                "a multiple-server pool needs PostgreSQL (leases use the database's clock)",
            ));
        }
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(PgConnectOptions::from_str(url)?);
        Ok(Store {
            backend: Backend::Postgres(pool),
            url: url.to_string(),
        })
    }

    async fn migrate(&self, schema: Schema) -> Result<()> {
        let mut m = match (&self.backend, schema) {
            (Backend::Sqlite { .. }, Schema::Content) => sqlx::migrate!("migrations/sqlite"),
            (Backend::Postgres(_), Schema::Content) => sqlx::migrate!("migrations/postgres"),
            (Backend::Sqlite { .. }, Schema::Compliance) => {
                sqlx::migrate!("migrations/compliance-sqlite")
            }
            (Backend::Postgres(_), Schema::Compliance) => {
                sqlx::migrate!("migrations/compliance-postgres")
            }
        };
        // Content and compliance may share one PostgreSQL database: each migrator must
        // tolerate the other's applied versions.
        m.set_ignore_missing(true);
        on_pool!(self, write, p => m.run(p).await?);
        Ok(())
    }

    /// The URL this store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True for SQLite.
    pub fn is_sqlite(&self) -> bool {
        matches!(self.backend, Backend::Sqlite { .. })
    }

    /// Read a value of the `meta` table.
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        let sql = "SELECT value FROM meta WHERE key = $1";
        Ok(
            on_pool!(self, read, p => sqlx::query_scalar::<_, String>(sql).bind(key).fetch_optional(p).await?),
        )
    }

    /// Set `key` to `value` unless it is set already; return the value that is stored.
    pub async fn meta_init(&self, key: &str, value: &str) -> Result<String> {
        let sql = "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
        on_pool!(self, write, p => sqlx::query(sql).bind(key).bind(value).execute(p).await?.rows_affected());
        self.meta(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("meta {key} vanished")))
    }

    /// Bytes the database occupies on disk (SQLite: files; PostgreSQL: `pg_database_size`).
    pub async fn size_bytes(&self) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite { .. } => {
                let path = sqlite_path(&self.url).unwrap_or_default();
                let mut total = 0;
                for suffix in ["", "-wal", "-shm"] {
                    if let Ok(meta) = std::fs::metadata(format!("{path}{suffix}")) {
                        total += meta.len();
                    }
                }
                Ok(total)
            }
            Backend::Postgres(p) => {
                let n: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(p)
                    .await?;
                Ok(n.max(0) as u64)
            }
        }
    }

    /// Close every connection (checkpointing SQLite's WAL).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { write, read } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres(p) => p.close().await,
        }
    }
}

/// The file path of a SQLite URL (`sqlite:PATH`, `sqlite://PATH`, or a bare `*.db` path).
pub fn sqlite_path(url: &str) -> Option<String> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        return Some(rest.to_string());
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        return Some(rest.to_string());
    }
    if Path::new(url).extension().is_some_and(|e| e == "db") {
        return Some(url.to_string());
    }
    None
}

/// Map a unique-constraint violation to [`StoreError::Conflict`] naming `what`.
pub(crate) fn conflict_as(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(what.to_string())
        }
        _ => StoreError::Db(e),
    }
}
