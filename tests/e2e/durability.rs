//! An acknowledged post survives `kill -9`: the real `chatcap serve` binary runs as a child
//! process, two clients pipeline posts into one room, the server is killed with SIGKILL
//! while posts are still in flight, restarted on the same database, and every acked post
//! must be in history, in order, exactly once, numbered 1..=n without gaps.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chatcap::client::Client;
use chatcap_server::protocol::reply::{Ack, ServerMsg};
use chatcap_server::protocol::{Op, Privacy, Request, RoomKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{
    backends, category, free_port, fresh_pg_database, full_history, join, ok, open_category, post,
    room, Backend,
};

/// Posts each client sends.
const PER_CLIENT: usize = 150;
/// Acks each client waits for before the server is killed.
const BEFORE_KILL: usize = 100;

/// Where the server keeps its data: a folder, and a PostgreSQL URL when not SQLite.
struct Data<'a> {
    dir: &'a Path,
    database: Option<&'a str>,
}

impl Data<'_> {
    fn args(&self) -> Vec<String> {
        let mut v = vec!["--data-dir".to_string(), self.dir.display().to_string()];
        if let Some(url) = self.database {
            v.extend(["--database".to_string(), url.to_string()]);
        }
        v
    }
}

fn chatcap() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatcap"));
    cmd.env_remove("CHATCAP_DATABASE").env("RUST_LOG", "warn");
    cmd
}

/// `chatcap user add NAME`: returns (id, token).
fn user_add(data: &Data, name: &str, admin: bool) -> (i64, String) {
    let mut cmd = chatcap();
    cmd.args(["user", "add", name]).args(data.args());
    if admin {
        cmd.arg("--admin");
    }
    let out = cmd.output().expect("run chatcap user add");
    assert!(
        out.status.success(),
        "chatcap user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).expect("utf-8");
    let fields: Vec<&str> = line.trim_end().split('\t').collect();
    let id = fields[0].parse().expect("a user id first");
    let token = fields.last().expect("a token last").to_string();
    (id, token)
}

/// A `chatcap serve` child process.
struct Server {
    child: Child,
    http: SocketAddr,
    log: std::path::PathBuf,
}

impl Server {
    /// Start on free ports and wait (polling `/healthz`, with a deadline) until ready.
    async fn start(data: &Data<'_>, run: usize) -> Server {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let chat = format!("127.0.0.1:{}", free_port());
        let log = data.dir.join(format!("serve-{run}.log"));
        let child = chatcap()
            .arg("serve")
            .args(data.args())
            .args(["--listen", &http.to_string(), "--chat-listen", &chat])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn chatcap serve");
        let mut s = Server { child, http, log };
        s.wait_ready().await;
        s
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!(
                    "chatcap serve exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if healthy(self.http).await {
                return;
            }
            assert!(Instant::now() < deadline, "chatcap serve not ready in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.http)
    }

    /// SIGKILL (what `Child::kill` sends on Unix), and reap.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /healthz` answers 200.
async fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    resp.starts_with(b"HTTP/1.1 200")
}

async fn signed_in(url: &str, token: &str) -> Client {
    let mut c = Client::connect(url).await.expect("connect");
    c.timeout = Duration::from_secs(20);
    ok(
        &mut c,
        Op::SignIn {
            token: token.to_string(),
        },
    )
    .await;
    c
}

/// Send `PER_CLIENT` posts without waiting; request ids are 1000 + i.
async fn send_posts(c: &mut Client, room: i64, who: &str) {
    for i in 0..PER_CLIENT {
        let req = Request {
            id: 1000 + i as u64,
            op: crate::common::post_op(room, &format!("{who} says {i}"), &format!("{who}-{i}")),
        };
        c.send_text(serde_json::to_string(&req).expect("json"))
            .await
            .expect("send");
    }
}

/// Read acks into `acked` (client id → seq) until `want` of them, or the connection ends.
async fn read_acks(c: &mut Client, who: &str, acked: &mut HashMap<String, i64>, want: usize) {
    let mine = |acked: &HashMap<String, i64>| acked.keys().filter(|k| k.starts_with(who)).count();
    while mine(acked) < want {
        match c.recv().await {
            Ok(ServerMsg::Reply { id, result }) => {
                let ack: Ack = serde_json::from_value(result).expect("an ack");
                assert!(!ack.duplicate);
                let cid = format!("{who}-{}", id - 1000);
                assert!(acked.insert(cid, ack.seq).is_none(), "acked twice");
            }
            Ok(ServerMsg::Error { code, .. }) => panic!("post refused: {code:?}"),
            Ok(ServerMsg::Push(_)) => {}
            Err(_) => return, // the server is gone
        }
    }
}

async fn kill_and_recover(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_pg_database().await),
    };
    let data = Data {
        dir: dir.path(),
        database: url.as_deref(),
    };
    // Users exist before the server starts: it loads its directory once.
    let (admin, admin_token) = user_add(&data, "admin@durable", true);
    let (_, bob_token) = user_add(&data, "bob@durable", false);

    let server = Server::start(&data, 1).await;
    let mut a = signed_in(&server.url(), &admin_token).await;
    let cat = category(&mut a, open_category("durable")).await;
    let r = room(&mut a, cat, "durable", Privacy::Open, RoomKind::Normal).await;
    let mut b = signed_in(&server.url(), &bob_token).await;
    join(&mut a, r).await;
    join(&mut b, r).await;

    send_posts(&mut a, r, "a").await;
    send_posts(&mut b, r, "b").await;
    let mut acked = HashMap::new();
    read_acks(&mut a, "a", &mut acked, BEFORE_KILL).await;
    read_acks(&mut b, "b", &mut acked, BEFORE_KILL).await;
    server.kill();
    // Acks already on their way still count: every ack a client saw is a promise.
    read_acks(&mut a, "a", &mut acked, PER_CLIENT).await;
    read_acks(&mut b, "b", &mut acked, PER_CLIENT).await;
    assert!(acked.len() >= 2 * BEFORE_KILL);

    let server = Server::start(&data, 2).await;
    let mut a = signed_in(&server.url(), &admin_token).await;
    let hist = full_history(&mut a, r).await;
    let seqs: Vec<i64> = hist.iter().map(|m| m.seq).collect();
    let want: Vec<i64> = (1..=hist.len() as i64).collect();
    assert_eq!(seqs, want, "history is numbered 1..=n without gaps");
    let stored: HashMap<&str, i64> = hist
        .iter()
        .map(|m| (m.client_msg_id.as_str(), m.seq))
        .collect();
    assert_eq!(stored.len(), hist.len(), "a post was stored twice");
    for (cid, seq) in &acked {
        assert_eq!(stored.get(cid.as_str()), Some(seq), "acked post {cid} lost");
    }
    for m in &hist {
        let (who, i) = m.client_msg_id.split_once('-').expect("our client id");
        assert_eq!(m.text, format!("{who} says {i}"));
        assert_eq!(m.author != admin, who == "b");
    }
    // Each client's posts kept their order, and numbering continues after the restart.
    for who in ["a-", "b-"] {
        let order: Vec<usize> = hist
            .iter()
            .filter_map(|m| m.client_msg_id.strip_prefix(who))
            .map(|i| i.parse().expect("index"))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{who} out of order");
    }
    join(&mut a, r).await;
    let next = post(&mut a, r, "after the crash", "after").await;
    assert_eq!(next.seq, hist.len() as i64 + 1);
    server.kill();
}

#[tokio::test]
async fn acked_posts_survive_sigkill() {
    for backend in backends() {
        kill_and_recover(backend).await;
    }
}
