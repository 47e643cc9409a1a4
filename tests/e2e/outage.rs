//! Database outages under load. PostgreSQL: a single chat server reaches its database
//! through a proxy that drops every connection and refuses new ones for 10 s while users
//! post. SQLite: the database's file system (a small tmpfs) fills up. Either way a post is
//! acknowledged only once committed (every acknowledged post is in history, once); a post
//! the database could not take is answered `busy`, never left unanswered; every session
//! stays up; and the server serves again by itself when the database returns, without a
//! restart.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatcap::client::{Client, ClientError};
use chatcap_server::protocol::reply::Ack;
use chatcap_server::protocol::{ErrorCode, Op, Privacy, Push};

use crate::common::pool::Proxy;
use crate::common::{
    check_acked_in, fresh_pg_database, full_history, join, pg_base, post_op, Backend, Cast,
    TestServer,
};

/// How long the database is away.
const OUTAGE: Duration = Duration::from_secs(10);

/// What one posting user saw.
#[derive(Default, Debug)]
struct Seen {
    /// client_msg_id → seq of its acknowledged posts.
    acked: BTreeMap<String, i64>,
    /// Error codes of refused posts, with how many.
    refused: BTreeMap<String, u32>,
    /// When its first post sent after the database returned was acknowledged.
    back_at: Option<Instant>,
    /// The session ended.
    bye: bool,
}

/// Post every 50 ms until `stop`; each post waits for its answer (at most 30 s).
async fn post_until(
    mut c: Client,
    me: usize,
    room: i64,
    stop: Arc<AtomicBool>,
    restored: Arc<std::sync::Mutex<Option<Instant>>>,
) -> Seen {
    let mut seen = Seen::default();
    let mut k = 0;
    c.timeout = Duration::from_secs(30);
    while !stop.load(Ordering::Relaxed) {
        let id = format!("u{me}-{k}");
        k += 1;
        let sent_after_restore = restored.lock().expect("lock").is_some();
        match c.call(post_op(room, &id, &id)).await {
            Ok(Ok(v)) => {
                let ack: Ack = serde_json::from_value(v).expect("an ack");
                seen.acked.insert(id, ack.seq);
                if sent_after_restore && seen.back_at.is_none() {
                    seen.back_at = Some(Instant::now());
                }
            }
            Ok(Err(refusal)) => {
                *seen
                    .refused
                    .entry(format!("{:?}", refusal.code))
                    .or_default() += 1;
                assert_eq!(
                    refusal.code,
                    ErrorCode::Busy,
                    "user {me}: a post the database could not take is `busy`: {refusal:?}"
                );
            }
            Err(ClientError::Timeout) => panic!("user {me}: post {id} left unanswered for 30 s"),
            Err(e) => panic!("user {me} lost its connection: {e}"),
        }
        seen.bye |= c
            .queued_pushes()
            .iter()
            .any(|p| matches!(p, Push::Bye { .. }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

#[tokio::test]
async fn a_postgresql_outage_loses_no_acknowledged_post_and_the_server_recovers_by_itself() {
    if pg_base().is_none() {
        return;
    }
    let database = fresh_pg_database().await;
    let (proxy, through) = Proxy::for_database(&database).await;
    // The server and the test's own view of its database go through the proxy.
    let srv = TestServer::start_with(Backend::Sqlite, |cfg| cfg.database = Some(through)).await;
    let mut c = Cast::with(srv).await;
    let room = c.room("outage", Privacy::Open, &[]).await;
    let mut posters = Vec::new();
    for i in 0..4 {
        let id = c.srv.user(&format!("poster{i}@t"), false).await;
        let mut client = c.srv.client(id).await;
        join(&mut client, room).await;
        posters.push(client);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let restored = Arc::new(std::sync::Mutex::new(None));
    let tasks: Vec<_> = posters
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            tokio::spawn(post_until(client, i, room, stop.clone(), restored.clone()))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.cut();
    tokio::time::sleep(OUTAGE).await;
    proxy.restore();
    let back = Instant::now();
    *restored.lock().expect("lock") = Some(back);
    // Every user has a post acknowledged again, without anything restarted.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    let mut views = Vec::new();
    for t in tasks {
        views.push(t.await.expect("poster"));
    }
    let history = full_history(&mut c.a, room).await;
    let acked = views.iter().flat_map(|seen| seen.acked.iter());
    check_acked_in(&history, acked.map(|(cid, seq)| (cid, *seq)));
    let mut slowest = Duration::ZERO;
    for (i, seen) in views.iter().enumerate() {
        assert!(!seen.bye, "user {i} was disconnected");
        let at = seen
            .back_at
            .unwrap_or_else(|| panic!("user {i} was not served after the outage: {seen:?}"));
        slowest = slowest.max(at.duration_since(back));
    }
    let refused: u32 = views.iter().flat_map(|s| s.refused.values()).sum();
    let acked: usize = views.iter().map(|s| s.acked.len()).sum();
    println!(
        "outage of {OUTAGE:?}: {acked} posts acknowledged, {refused} refused busy; every \
         user served again {:.0} ms after the database returned",
        slowest.as_secs_f64() * 1000.0
    );
    // The admin's session lived through it too.
    crate::common::ok(&mut c.a, Op::Ping).await;
    c.stop().await;
}

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` where this process may not mount (not root, no CAP_SYS_ADMIN).
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fill the file system of `dir` up with `dir/filler`.
fn fill(dir: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).expect("filler");
    for size in [64 * 1024, 4096, 1] {
        let block = vec![0u8; size];
        while f.write_all(&block).is_ok() {}
    }
    let _ = f.sync_all();
}

#[tokio::test]
async fn a_full_disk_under_sqlite_refuses_posts_busy_and_recovers_when_space_returns() {
    let Some(fs) = Tmpfs::mount("8m") else {
        assert!(
            std::env::var("CHATCAP_REQUIRE_TMPFS").is_err(),
            "CHATCAP_REQUIRE_TMPFS is set but a tmpfs cannot be mounted here"
        );
        eprintln!(
            "skipped: this process may not mount a tmpfs (the SQLite disk-full test needs root)"
        );
        return;
    };
    let data = fs.dir.path().to_path_buf();
    let srv = TestServer::start_with(Backend::Sqlite, |cfg| cfg.data_dir = data.clone()).await;
    let mut c = Cast::with(srv).await;
    let room = c.room("full", Privacy::Open, &[]).await;
    let mut alice = c.srv.client(c.alice).await;
    join(&mut alice, room).await;
    alice.timeout = Duration::from_secs(30);
    let before = crate::common::post(&mut alice, room, "before", "before").await;

    fill(&data);
    // Posts while the disk is full: each is answered `busy` once the database has refused
    // it for 10 s, or acknowledged if SQLite found room in pages it already had; never
    // left unanswered.
    let mut refused = 0;
    let mut acked = BTreeMap::new();
    let started = Instant::now();
    let mut k = 0;
    while refused == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no post refused on a full disk ({} acknowledged)",
            acked.len()
        );
        let id = format!("full-{k}");
        k += 1;
        match alice.call(post_op(room, &"x".repeat(4000), &id)).await {
            Ok(Ok(v)) => {
                let ack: Ack = serde_json::from_value(v).expect("an ack");
                acked.insert(id, ack.seq);
            }
            Ok(Err(r)) => {
                assert_eq!(r.code, ErrorCode::Busy, "{r:?}");
                refused += 1;
            }
            Err(e) => panic!("the session ended on a full disk: {e}"),
        }
        // Below the session's rate allowance (200/s).
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Space returns: the server takes posts again without a restart.
    std::fs::remove_file(data.join("filler")).expect("remove filler");
    let after = crate::common::post(&mut alice, room, "after", "after").await;
    assert!(after.seq > before.seq);
    let history = full_history(&mut c.a, room).await;
    let stored = check_acked_in(&history, acked.iter().map(|(cid, seq)| (cid, *seq)));
    assert_eq!(stored.get("after"), Some(&after.seq));
    println!(
        "disk full: {} posts acknowledged before the first busy ({:.1} s); served again \
         once space returned",
        acked.len(),
        started.elapsed().as_secs_f64()
    );
    c.stop().await;
    drop(fs);
}
