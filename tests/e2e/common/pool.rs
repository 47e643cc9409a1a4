//! A multiple-server pool for tests: a topology file on loopback addresses of its own
//! (`127.a.b.x`, so that pools of tests running at once never share a port), a fresh
//! PostgreSQL database, and the real processes started by the pool launcher — the same
//! path as `chatcap pool up`. Plus a TCP proxy that can cut one chat server off from the
//! database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chatcap::client::Client;
use chatcap::pool::launch::{Launched, Options, PoolDatabase};
use chatcap_server::pool::admin::request;
use chatcap_server::protocol::pool::AdminRequest;
use chatcap_server::tls::LinkTrust;
use chatcap_server::topology::Topology;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::procs::{signed_in, Data};
use super::{fresh_pg_database, pg_base};

/// The link secret of test pools.
pub const SECRET: &str = "pool-test-secret";

/// A running pool.
pub struct TestPool {
    /// Its processes.
    pub launched: Launched,
    /// Its topology.
    pub topology: Topology,
    /// Users are created here (`chatcap user add` on the pool's database).
    pub data: Data,
    /// How `chatcap pool` reaches the servers (the link secret, link TLS).
    pub trust: LinkTrust,
}

/// Whether pool tests can run here (they need PostgreSQL); panics when they must.
pub fn pool_tests_run() -> bool {
    if pg_base().is_some() {
        return true;
    }
    assert!(
        std::env::var("CHATCAP_REQUIRE_PG").is_err(),
        "CHATCAP_REQUIRE_PG is set but CHATCAP_TEST_PG is not"
    );
    eprintln!("skipped: a pool needs PostgreSQL (CHATCAP_TEST_PG)");
    false
}

/// A loopback /24 of its own: `127.a.b.0`.
fn own_subnet() -> (u8, u8) {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(N.fetch_add(1, Ordering::Relaxed).wrapping_mul(40_503))
        .wrapping_add(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0),
        );
    (1 + (seed % 250) as u8, 1 + ((seed / 250) % 250) as u8)
}

/// The topology text of a pool: `actives` active and `standbys` standby chat servers
/// (chat1, chat2, …), `front_ends` front ends (fe1, …).
pub fn topology_text(name: &str, actives: usize, standbys: usize, front_ends: usize) -> String {
    let (a, b) = own_subnet();
    let mut t = format!(
        "name = \"{name}\"\nlink_secret = \"{SECRET}\"\n[database]\ncontent = \"throwaway\"\n"
    );
    for i in 0..actives + standbys {
        t += &format!(
            "[[chat_server]]\nname = \"chat{}\"\naddress = \"127.{a}.{b}.{}\"\nactive = {}\n",
            i + 1,
            11 + i,
            i < actives
        );
    }
    for i in 0..front_ends {
        t += &format!(
            "[[front_end]]\nname = \"fe{}\"\naddress = \"127.{a}.{b}.{}\"\n",
            i + 1,
            31 + i
        );
    }
    t
}

impl TestPool {
    /// Start a pool on a fresh database.
    pub async fn start(actives: usize, standbys: usize, front_ends: usize) -> TestPool {
        let text = topology_text("test-pool", actives, standbys, front_ends);
        Self::start_from(&text, Options::default(), None).await
    }

    /// Start the pool of `text` on `database` (default: a fresh PostgreSQL database).
    pub async fn start_from(
        text: &str,
        mut options: Options,
        database: Option<String>,
    ) -> TestPool {
        if let Ok(level) = std::env::var("CHATCAP_SERVER_LOG") {
            options.env.push(("RUST_LOG".into(), level));
        }
        let url = match database {
            Some(url) => url,
            None => fresh_pg_database().await,
        };
        let mut dir = tempfile::tempdir().expect("temp dir");
        if std::env::var("CHATCAP_KEEP_POOL").is_ok() {
            // Logs stay for a look after the test, whatever its outcome.
            dir.disable_cleanup(true);
            eprintln!("pool folder: {}", dir.path().display());
        }
        let data = Data {
            dir,
            database: Some(url.clone()),
        };
        let file = data.dir.path().join("pool.toml");
        std::fs::write(&file, text).expect("write topology");
        let topology = Topology::load(&file).expect("a valid topology");
        let db = PoolDatabase {
            url,
            throwaway: None,
        };
        let launched = Launched::start(
            topology.clone(),
            Path::new(env!("CARGO_BIN_EXE_chatcap")),
            db,
            &data.dir.path().join("run"),
            &options,
        )
        .await
        .unwrap_or_else(|e| panic!("the pool did not start: {e:#}"));
        let trust = chatcap::pool::trust(&topology).expect("the pool's link trust");
        TestPool {
            launched,
            topology,
            data,
            trust,
        }
    }

    /// The topology file.
    pub fn file(&self) -> PathBuf {
        self.topology.file.clone()
    }

    /// Front end `i`'s (0-based) WebSocket URL.
    pub fn url(&self, i: usize) -> String {
        self.topology.front_ends[i].ws_url()
    }

    /// `chat_server`'s status, as `chatcap pool status` gets it.
    pub async fn status(&self, server: &str) -> Option<Value> {
        let s = self.topology.server(server)?;
        request(s.pool_addr(), &self.trust, &AdminRequest::Status)
            .await
            .ok()
    }

    /// Ask `server` something over the pool port.
    pub async fn admin(&self, server: &str, req: AdminRequest) -> Result<Value, String> {
        let s = self.topology.server(server).expect("a server of the pool");
        request(s.pool_addr(), &self.trust, &req)
            .await
            .map_err(|e| e.to_string())
    }

    /// Sessions each chat server holds now (down servers count 0).
    pub async fn sessions(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for s in &self.topology.chat_servers {
            let n = self
                .status(&s.name)
                .await
                .and_then(|v| v.get("sessions").and_then(Value::as_u64))
                .unwrap_or(0);
            out.push((s.name.clone(), n));
        }
        out
    }

    /// Wait until `server`'s status satisfies `want` (10 s at most); its last status.
    pub async fn wait_status(&self, server: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let v = self.status(server).await.unwrap_or(Value::Null);
            if want(&v) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{server} never reached the wanted state; last: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A user (`chatcap user add`): (id, token).
    pub fn user(&self, name: &str, admin: bool) -> (i64, String) {
        self.data.user_add(name, admin)
    }

    /// A client of `token` signed in through front end `fe`.
    pub async fn client(&self, fe: usize, token: &str) -> Client {
        signed_in(&self.url(fe), token).await
    }

    /// Stop every process.
    pub async fn stop(mut self) {
        self.launched.stop().await;
    }
}

/// A TCP proxy to `target` that can be cut (every connection closed, new ones refused)
/// and restored: one chat server's way to the database.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    generation: Arc<std::sync::Mutex<CancellationToken>>,
}

impl Proxy {
    /// Start a proxy on a free loopback port.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let cut = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let (c, g) = (cut.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue;
                }
                let stop = g.lock().expect("lock").clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            cut,
            generation,
        }
    }

    /// A proxy in front of the PostgreSQL server of `database` (`postgres://user@host:port/db`),
    /// and the URL of the same database through it.
    pub async fn for_database(database: &str) -> (Proxy, String) {
        let (user, rest) = database
            .strip_prefix("postgres://")
            .and_then(|r| r.split_once('@'))
            .expect("postgres://user@host:port/db");
        let (hostport, db) = rest.split_once('/').expect("a database name");
        let proxy = Proxy::start(hostport.parse().expect("host:port")).await;
        let through = format!("postgres://{user}@{}/{db}", proxy.addr);
        (proxy, through)
    }

    /// Close every connection and refuse new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let mut g = self.generation.lock().expect("lock");
        g.cancel();
        *g = CancellationToken::new();
    }

    /// Let connections through again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}
