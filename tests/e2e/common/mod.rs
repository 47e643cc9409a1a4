//! The test harness: start a single box on a fresh database, create users, connect
//! signed-in clients.

#![allow(dead_code)]

use std::time::Duration;

use chatcap::client::Client;
use chatcap_server::config::ServeConfig;
use chatcap_server::protocol::Op;
use chatcap_server::serve::Running;
use chatcap_server::store::{Schema, Store};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the PostgreSQL server named by `CHATCAP_TEST_PG`.
    Postgres,
}

/// A running server for one test.
pub struct TestServer {
    /// The server.
    pub running: Running,
    /// Its settings (to restart on the same database).
    pub config: ServeConfig,
    /// Keeps the data folder alive.
    pub dir: tempfile::TempDir,
    /// Content store, for direct set-up.
    pub store: Store,
}

/// The PostgreSQL server URL (without database), when tests may use one.
pub fn pg_base() -> Option<String> {
    std::env::var("CHATCAP_TEST_PG")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Create a fresh PostgreSQL database; returns its URL.
pub async fn fresh_pg_database() -> String {
    let base = pg_base().expect("CHATCAP_TEST_PG is set");
    let name = format!("t_{}_{}", std::process::id(), rand_suffix());
    let admin_url = format!("{base}/postgres");
    let pool = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    format!("{base}/{name}")
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (t % 1_000_000_000) * 1000 + N.fetch_add(1, Ordering::Relaxed)
}

/// The backends to run a test on: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    if pg_base().is_some() {
        v.push(Backend::Postgres);
    } else if std::env::var("CHATCAP_REQUIRE_PG").is_ok() {
        panic!("CHATCAP_REQUIRE_PG is set but CHATCAP_TEST_PG is not");
    }
    v
}

impl TestServer {
    /// Start a server on `backend` with `tweak` applied to the default settings.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = ServeConfig {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            chat_listen: "127.0.0.1:0".parse().expect("addr"),
            ..Default::default()
        };
        if backend == Backend::Postgres {
            config.database = Some(fresh_pg_database().await);
        }
        tweak(&mut config);
        let running = chatcap_server::serve::start(config.clone())
            .await
            .expect("server starts");
        let store = Store::open(&config.database_url(), Schema::Content)
            .await
            .expect("store");
        TestServer {
            running,
            config,
            dir,
            store,
        }
    }

    /// Start a server with default settings.
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    /// The client WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.running.http_addr)
    }

    /// Create a user in the database and in the running server's directory; returns its id.
    pub async fn user(&self, name: &str, admin: bool) -> i64 {
        let id = self
            .store
            .create_user(name, admin)
            .await
            .expect("create user");
        self.running.hub.dir_mut().users.insert(
            id,
            chatcap_server::model::User {
                id,
                name: name.to_string(),
                admin,
            },
        );
        id
    }

    /// A token for `user`.
    pub fn token(&self, user: i64) -> String {
        self.running.token(user, Duration::from_secs(3600))
    }

    /// A connected, signed-in client for `user`.
    pub async fn client(&self, user: i64) -> Client {
        let mut c = Client::connect(&self.url()).await.expect("connect");
        c.timeout = Duration::from_secs(10);
        let r = c
            .call(Op::SignIn {
                token: self.token(user),
            })
            .await
            .expect("sign-in reply");
        r.expect("sign-in accepted");
        c
    }

    /// Stop the server.
    pub async fn stop(self) -> (ServeConfig, tempfile::TempDir) {
        self.store.close().await;
        self.running.shutdown().await;
        (self.config, self.dir)
    }
}
