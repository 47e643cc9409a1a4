//! The server under test: a fresh database holding the bench's users, category and rooms,
//! and `chatcap serve` started from this very binary as a child process on free loopback
//! ports.
//!
//! Users must exist before the server starts (it loads the directory once, at start), so
//! [`prepare`] writes them straight into the database and issues their tokens. The child
//! is a separate process so that `/proc/<pid>` gives the server's own RSS and CPU.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::serve_process::ServeProcess;
use anyhow::Context;
use chatcap_server::auth::{unix_now, TokenKey};
use chatcap_server::model::Category;
use chatcap_server::protocol::{Privacy, RoomKind};
use chatcap_server::store::directory::NewRoom;
use chatcap_server::store::{Schema, Store};
use sqlx::Connection;

/// A database engine to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on this PostgreSQL server.
    Postgres {
        /// Server URL; its database part (if any) is where `CREATE DATABASE` runs.
        server_url: String,
    },
}

impl Backend {
    /// "sqlite" or "postgres".
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// How many of everything to create.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Posting users (one per client).
    pub posters: usize,
    /// Rooms for posting.
    pub rooms: usize,
    /// Idle users (one per idle session).
    pub idle: usize,
}

/// One user the bench signs in as.
#[derive(Debug, Clone)]
pub struct BenchUser {
    /// User id.
    pub id: i64,
    /// A valid bearer token.
    pub token: String,
    /// The room it posts in (posters) or 0.
    pub room: i64,
}

/// A prepared database, ready for a server to start on.
#[derive(Debug)]
pub struct Prepared {
    /// The engine.
    pub backend: Backend,
    /// The content database URL the server is to use.
    pub database: String,
    /// Temporary folder (SQLite files, the server's settings and log).
    pub dir: PathBuf,
    /// Posting users, each with its room.
    pub posters: Vec<BenchUser>,
    /// Idle users.
    pub idle: Vec<BenchUser>,
    /// The room idle sessions join (no poster is in it).
    pub idle_room: i64,
    /// PostgreSQL: (server URL, database name) to drop afterwards.
    drop_db: Option<(String, String)>,
}

/// Tokens last a day: far longer than any bench run.
const TOKEN_TTL_SECS: i64 = 24 * 3600;

/// The server's settings for the bench: the per-session request rate limit (200/s by
/// default, meant for people) would otherwise cap a pipelining client far below what the
/// server can do. Everything else keeps its default.
pub const SERVER_SETTINGS: &str =
    "[front]\nrate_per_sec = 1000000000.0\nrate_burst = 1000000000.0\n";

/// Create the database, users, category and rooms; issue tokens.
pub async fn prepare(backend: &Backend, setup: &Setup) -> anyhow::Result<Prepared> {
    let stamp = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let dir = std::env::temp_dir().join(format!("chatcap-bench-{}-{stamp}", backend.name()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (database, drop_db) = match backend {
        Backend::Sqlite => (format!("sqlite:{}", dir.join("content.db").display()), None),
        Backend::Postgres { server_url } => {
            let name = format!("chatcap_bench_{stamp}");
            let mut conn = sqlx::PgConnection::connect(server_url)
                .await
                .with_context(|| format!("connecting to {server_url}"))?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .with_context(|| format!("CREATE DATABASE {name}"))?;
            let _ = conn.close().await;
            (
                with_database(server_url, &name),
                Some((server_url.clone(), name)),
            )
        }
    };
    let mut prepared = Prepared {
        backend: backend.clone(),
        database,
        dir,
        posters: Vec::new(),
        idle: Vec::new(),
        idle_room: 0,
        drop_db,
    };
    if let Err(e) = populate(&mut prepared, setup).await {
        prepared.cleanup().await;
        return Err(e);
    }
    Ok(prepared)
}

async fn populate(p: &mut Prepared, setup: &Setup) -> anyhow::Result<()> {
    std::fs::write(p.dir.join("bench.toml"), SERVER_SETTINGS)?;
    let store = Store::open(&p.database, Schema::Content)
        .await
        .with_context(|| format!("opening {}", p.database))?;
    let category = store
        .create_category(&Category {
            name: "bench".into(),
            allow_everyone: true,
            invitations: true,
            file_upload: true,
            history: true,
            ..Default::default()
        })
        .await?;
    let mut rooms: Vec<NewRoom> = (0..setup.rooms)
        .map(|i| room(format!("bench-room-{i}"), category))
        .collect();
    rooms.push(room("bench-idle-room".into(), category));
    let room_ids = store.create_rooms_bulk(&rooms).await?;
    let id_of = |name: &str| {
        room_ids
            .get(name)
            .copied()
            .with_context(|| format!("room {name} was not created"))
    };
    p.idle_room = id_of("bench-idle-room")?;
    let key = TokenKey::load(&store).await?;
    let expires = unix_now() + TOKEN_TTL_SECS;

    let names: Vec<String> = (0..setup.posters)
        .map(|i| format!("bench-poster-{i}@chatcap.test"))
        .collect();
    let ids = store.create_users_bulk(&names).await?;
    for (i, name) in names.iter().enumerate() {
        let id = *ids.get(name).context("poster was not created")?;
        let room = id_of(&format!("bench-room-{}", i % setup.rooms))?;
        p.posters.push(BenchUser {
            id,
            token: key.issue(id, expires),
            room,
        });
    }
    let names: Vec<String> = (0..setup.idle)
        .map(|i| format!("bench-idle-{i}@chatcap.test"))
        .collect();
    let ids = store.create_users_bulk(&names).await?;
    for name in &names {
        let id = *ids.get(name).context("idle user was not created")?;
        p.idle.push(BenchUser {
            id,
            token: key.issue(id, expires),
            room: 0,
        });
    }
    store.close().await;
    Ok(())
}

fn room(name: String, category: i64) -> NewRoom {
    NewRoom {
        name,
        category,
        kind: RoomKind::Normal,
        privacy: Privacy::Open,
        description: String::new(),
    }
}

/// `server_url` with its database replaced by `name` (query string kept).
fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server_url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

impl Prepared {
    /// Remove the temporary folder (kept when `CHATCAP_BENCH_KEEP` is set) and drop the
    /// PostgreSQL database.
    pub async fn cleanup(&self) {
        if let Some((server_url, name)) = &self.drop_db {
            if let Ok(mut conn) = sqlx::PgConnection::connect(server_url).await {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = sqlx::query(&sql).execute(&mut conn).await {
                    eprintln!("bench: could not drop database {name}: {e}");
                }
                let _ = conn.close().await;
            }
        }
        if std::env::var_os("CHATCAP_BENCH_KEEP").is_some() {
            eprintln!("bench: kept {} (server.log)", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running `chatcap serve` child (single role).
pub struct ServerProcess {
    process: ServeProcess,
    /// Its process id (for `/proc/<pid>`).
    pub pid: u32,
    /// Front end: `ws://<http>/ws`, `http://<http>/metrics`.
    pub http: SocketAddr,
    /// Chat server's session-link listener.
    pub chat: SocketAddr,
}

impl ServerProcess {
    /// Start `chatcap serve` on free loopback ports and wait for its ready line.
    pub async fn spawn(p: &Prepared) -> anyhow::Result<ServerProcess> {
        let exe = std::env::current_exe().context("finding the chatcap binary")?;
        let args: Vec<std::ffi::OsString> = vec![
            "--config".into(),
            p.dir.join("bench.toml").into(),
            "--data-dir".into(),
            p.dir.clone().into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--chat-listen".into(),
            "127.0.0.1:0".into(),
            "--database".into(),
            p.database.clone().into(),
        ];
        let process = ServeProcess::spawn(&exe, &args, &[], &p.dir.join("server.log")).await?;
        let chat = process.chat_addr()?;
        Ok(ServerProcess {
            pid: process.pid,
            http: process.ready.http,
            chat,
            process,
        })
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        self.process.ws_url()
    }

    /// Stop the server (SIGKILL: acknowledged posts are durable; nothing else matters).
    pub async fn stop(self) {
        self.process.kill().await;
    }
}

/// Resident set size of a process, in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User + system CPU time of a process so far (`/proc/<pid>/stat`; "self" for this one).
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux configuration we run on.
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_name_the_bench_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:55001", "b"),
            "postgres://postgres@127.0.0.1:55001/b"
        );
        assert_eq!(
            with_database("postgres://u@h:1/postgres?sslmode=disable", "b"),
            "postgres://u@h:1/b?sslmode=disable"
        );
    }

    #[test]
    fn own_cpu_time_and_rss_are_readable() {
        assert!(cpu_time("self").is_some());
        assert!(rss_bytes(std::process::id()).is_some_and(|b| b > 0));
    }
}
