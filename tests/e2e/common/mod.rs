//! The test harness: start a single box on a fresh database, create users, connect
//! signed-in clients.

#![allow(dead_code)]

pub mod pool;
pub mod procs;

use std::collections::HashMap;
use std::time::Duration;

use chatcap::client::{Client, ClientError};
use chatcap_server::config::ServeConfig;
use chatcap_server::protocol::reply::{Ack, Created, Joined, Messages, ServerMsg};
use chatcap_server::protocol::{
    CategorySpec, ErrorCode, Message, Op, Privacy, Push, RoleName, RoomKind, RoomSpec,
};
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
        Self::restart(config, dir).await
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
        self.running
            .hub()
            .expect("a chat server")
            .dir_mut()
            .users
            .insert(
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
        self.running
            .token(user, Duration::from_secs(3600))
            .expect("a chat server holds the key")
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

impl TestServer {
    /// Start on `config` and `dir`: the database of a stopped server (same settings, fresh
    /// ports), or a fresh one.
    pub async fn restart(config: ServeConfig, dir: tempfile::TempDir) -> TestServer {
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

    /// A connected client that has not signed in.
    pub async fn anonymous(&self) -> Client {
        let mut c = Client::connect(&self.url()).await.expect("connect");
        c.timeout = Duration::from_secs(10);
        c
    }
}

/// Send `op` and return its result; panics (naming the op) on an error reply.
pub async fn ok(c: &mut Client, op: Op) -> serde_json::Value {
    let name = op.name();
    match c.call(op).await.expect("reply") {
        Ok(v) => v,
        Err(r) => panic!("{name} refused: {r:?}"),
    }
}

/// Send `op` and decode its result as `T`.
pub async fn ok_as<T: serde::de::DeserializeOwned>(c: &mut Client, op: Op) -> T {
    serde_json::from_value(ok(c, op).await).expect("result of the documented shape")
}

/// Send `op`, expect an error reply, and return its code.
pub async fn refused(c: &mut Client, op: Op) -> ErrorCode {
    let name = op.name();
    match c.call(op).await.expect("reply") {
        Ok(v) => panic!("{name} succeeded but was expected to fail: {v}"),
        Err(r) => r.code,
    }
}

/// A category every user is allowed in, with history kept.
pub fn open_category(name: &str) -> CategorySpec {
    CategorySpec {
        name: name.into(),
        allow_everyone: true,
        invitations: true,
        file_upload: true,
        history: true,
        ..Default::default()
    }
}

/// Create a category (the client must be an administrator); returns its id.
pub async fn category(c: &mut Client, spec: CategorySpec) -> i64 {
    ok_as::<Created>(c, Op::CreateCategory(spec)).await.id
}

/// Create a room; returns its id.
pub async fn room(
    c: &mut Client,
    category: i64,
    name: &str,
    privacy: Privacy,
    kind: RoomKind,
) -> i64 {
    ok_as::<Created>(
        c,
        Op::CreateRoom(RoomSpec {
            name: name.into(),
            category,
            privacy,
            kind,
            invitations: true,
            ..Default::default()
        }),
    )
    .await
    .id
}

/// Grant (`true`) or revoke a role.
pub async fn set_role(c: &mut Client, room: i64, user: i64, role: RoleName, grant: bool) {
    ok(
        c,
        Op::SetRole {
            room,
            user,
            role,
            grant,
        },
    )
    .await;
}

/// Join a room with the default history.
pub async fn join(c: &mut Client, room: i64) -> Joined {
    ok_as(
        c,
        Op::Join {
            room,
            history: None,
        },
    )
    .await
}

/// The `join` request for a room, default history.
pub fn join_op(room: i64) -> Op {
    Op::Join {
        room,
        history: None,
    }
}

/// The `post` request.
pub fn post_op(room: i64, text: &str, client_msg_id: &str) -> Op {
    Op::Post {
        room,
        text: text.into(),
        client_msg_id: client_msg_id.into(),
        sent_at_us: None,
    }
}

/// Post and wait for the ack.
pub async fn post(c: &mut Client, room: i64, text: &str, client_msg_id: &str) -> Ack {
    ok_as(c, post_op(room, text, client_msg_id)).await
}

/// Every stored message of a room, read page by page with `history`.
/// Check `history` against what clients were told: numbered 1..=n without gaps, no post
/// stored twice, and every acknowledged post (client id → seq) stored under its number.
/// Returns the history as client id → seq.
pub fn check_acked_in<S: AsRef<str>>(
    history: &[Message],
    acked: impl IntoIterator<Item = (S, i64)>,
) -> HashMap<&str, i64> {
    let seqs: Vec<i64> = history.iter().map(|m| m.seq).collect();
    let want: Vec<i64> = (1..=history.len() as i64).collect();
    assert_eq!(seqs, want, "history is numbered 1..=n without gaps");
    let stored: HashMap<&str, i64> = history
        .iter()
        .map(|m| (m.client_msg_id.as_str(), m.seq))
        .collect();
    assert_eq!(stored.len(), history.len(), "a post was stored twice");
    for (cid, seq) in acked {
        let cid = cid.as_ref();
        assert_eq!(stored.get(cid), Some(&seq), "acked post {cid} lost");
    }
    stored
}

pub async fn full_history(c: &mut Client, room: i64) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    loop {
        let after = out.last().map(|m| m.seq).unwrap_or(0);
        let page: Messages = ok_as(
            c,
            Op::History {
                room,
                after_seq: Some(after),
                limit: Some(500),
            },
        )
        .await;
        if page.messages.is_empty() {
            return out;
        }
        out.extend(page.messages);
    }
}

/// Wait for the first push matching `want`, discarding the pushes before it.
pub async fn wait_push(c: &mut Client, want: impl Fn(&Push) -> bool) -> Push {
    loop {
        let p = c.next_push().await.expect("a push before the timeout");
        if want(&p) {
            return p;
        }
    }
}

/// The pushes that reached `c` before the reply to a `ping` sent now (the server sends
/// each session's frames in order, so this is everything sent to it so far).
pub async fn pushes_so_far(c: &mut Client) -> Vec<Push> {
    ok(c, Op::Ping).await;
    c.queued_pushes()
}

/// Read until the server ends the connection; returns what arrived meanwhile.
pub async fn read_until_closed(c: &mut Client) -> Vec<ServerMsg> {
    let mut seen = Vec::new();
    loop {
        match c.recv().await {
            Ok(m) => seen.push(m),
            Err(ClientError::Timeout) => panic!("the server did not close; got {seen:?}"),
            Err(_) => return seen,
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Send many posts without waiting (pipelined), then collect every reply, in the order
/// of `client_msg_ids`. Pushes that arrive meanwhile are dropped.
pub async fn post_burst(
    c: &mut Client,
    room: i64,
    client_msg_ids: &[String],
) -> Vec<Result<Ack, ErrorCode>> {
    use std::sync::atomic::{AtomicU64, Ordering};
    // Far above the ids `Client::call` hands out, and unique across bursts.
    static NEXT: AtomicU64 = AtomicU64::new(1 << 40);
    let base = NEXT.fetch_add(client_msg_ids.len() as u64, Ordering::Relaxed);
    for (i, cid) in client_msg_ids.iter().enumerate() {
        let req = chatcap_server::protocol::Request {
            id: base + i as u64,
            op: post_op(room, &format!("text of {cid}"), cid),
        };
        c.send_text(serde_json::to_string(&req).expect("json"))
            .await
            .expect("send");
    }
    let mut out: Vec<Option<Result<Ack, ErrorCode>>> = vec![None; client_msg_ids.len()];
    let mut missing = client_msg_ids.len();
    while missing > 0 {
        let (id, r) = match c.recv().await.expect("every reply arrives") {
            ServerMsg::Reply { id, result } => (
                id,
                Ok(serde_json::from_value::<Ack>(result).expect("an ack")),
            ),
            ServerMsg::Error {
                id: Some(id), code, ..
            } => (id, Err(code)),
            ServerMsg::Error { id: None, code, .. } => panic!("error without id: {code:?}"),
            ServerMsg::Push(_) => continue,
        };
        let slot = id
            .checked_sub(base)
            .and_then(|i| out.get_mut(i as usize))
            .expect("a reply to this burst");
        assert!(slot.is_none(), "two replies to request {id}");
        *slot = Some(r);
        missing -= 1;
    }
    out.into_iter().map(|r| r.expect("filled")).collect()
}

/// A server with an administrator, two plain users and one open category.
pub struct Cast {
    /// The server.
    pub srv: TestServer,
    /// The administrator's id.
    pub admin: i64,
    /// A plain user.
    pub alice: i64,
    /// Another plain user.
    pub bob: i64,
    /// The administrator's signed-in client.
    pub a: Client,
    /// A category that allows everyone.
    pub cat: i64,
}

impl Cast {
    /// Start a server on `backend` and create the cast.
    pub async fn new(backend: Backend) -> Cast {
        Self::with(TestServer::start(backend).await).await
    }

    /// Create the cast on a started server.
    pub async fn with(srv: TestServer) -> Cast {
        let admin = srv.user("admin@t", true).await;
        let alice = srv.user("alice@t", false).await;
        let bob = srv.user("bob@t", false).await;
        let mut a = srv.client(admin).await;
        let cat = category(&mut a, open_category("general")).await;
        Cast {
            srv,
            admin,
            alice,
            bob,
            a,
            cat,
        }
    }

    /// A room in the cast's category, created by the administrator, with `members`.
    pub async fn room(&mut self, name: &str, privacy: Privacy, members: &[i64]) -> i64 {
        let id = room(&mut self.a, self.cat, name, privacy, RoomKind::Normal).await;
        for m in members {
            set_role(&mut self.a, id, *m, RoleName::Member, true).await;
        }
        id
    }

    /// Stop the server.
    pub async fn stop(self) {
        self.a.close().await;
        self.srv.stop().await;
    }
}
