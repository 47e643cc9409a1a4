//! Failures of a pool (real processes, loopback, PostgreSQL): an active chat server killed
//! with SIGKILL while users post, and a chat server cut off from the database. Every
//! acknowledged post stays in history exactly once and in order, every user keeps their
//! WebSocket and their rooms, a standby takes the lost server's place, and the time until
//! every session is back is printed.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatcap::client::{Client, ClientError};
use chatcap::pool::launch::Options;
use chatcap_server::protocol::reply::Ack;
use chatcap_server::protocol::{Op, Privacy, Push, RoleName, RoomKind};
use serde_json::Value;

use crate::common::pool::{pool_tests_run, topology_text, Proxy, TestPool};
use crate::common::{category, full_history, join, open_category, post_op, room, set_role};

/// What one posting user saw.
#[derive(Default)]
struct Seen {
    /// seq → text of its own acknowledged posts.
    acked: BTreeMap<i64, String>,
    /// Numbers pushed to it.
    pushed: Vec<i64>,
    /// Numbers it saw twice (pushed and acked, or pushed twice), with how the second came.
    repeats: Vec<(i64, &'static str)>,
    /// When, after the failure, a post sent after it was acknowledged or a message was
    /// pushed to it, whichever came first.
    back_at: Option<Instant>,
    /// A `bye` reached it (its WebSocket was closed).
    bye: bool,
}

/// Post every 20 ms until `stop`, reading pushes meanwhile; the client keeps going through
/// timeouts (a request in flight when its server dies gets no answer).
async fn post_loop(
    mut c: Client,
    me: usize,
    room_id: i64,
    stop: Arc<AtomicBool>,
    failed_at: Arc<std::sync::Mutex<Option<Instant>>>,
) -> (Client, Seen) {
    let mut seen = Seen::default();
    let mut numbers = HashSet::new();
    let mut k = 0;
    let mut note = |seen: &mut Seen, seq: i64, how: &'static str| {
        if !numbers.insert(seq) {
            seen.repeats.push((seq, how));
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let text = format!("u{me}-{k}");
        k += 1;
        let sent_after_failure = failed_at.lock().expect("lock").is_some();
        // A request in flight when its server goes gets no answer: the client gives up on
        // it after 2 s (pushes keep coming meanwhile) and goes on.
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            c.call(post_op(room_id, &text, &text)),
        )
        .await
        .unwrap_or(Err(ClientError::Timeout));
        match answer {
            Ok(Ok(v)) => {
                let ack: Ack = serde_json::from_value(v).expect("an ack");
                note(&mut seen, ack.seq, "ack");
                seen.acked.insert(ack.seq, text);
                if sent_after_failure && seen.back_at.is_none() {
                    seen.back_at = Some(Instant::now());
                }
            }
            Ok(Err(_)) | Err(ClientError::Timeout) => {}
            Err(e) => panic!("user {me} lost its connection: {e}"),
        }
        let failed = failed_at.lock().expect("lock").is_some();
        for p in c.queued_pushes() {
            match p {
                Push::Chat(m) if m.room == room_id => {
                    note(&mut seen, m.seq, "push");
                    seen.pushed.push(m.seq);
                    // Messages reach the user again (its client may still be waiting on a
                    // request lost with the old server).
                    if failed && seen.back_at.is_none() {
                        seen.back_at = Some(Instant::now());
                    }
                }
                Push::Bye { .. } => seen.bye = true,
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (c, seen)
}

/// Users through every front end, in one room, posting until told to stop.
struct Posting {
    stop: Arc<AtomicBool>,
    failed_at: Arc<std::sync::Mutex<Option<Instant>>>,
    tasks: Vec<tokio::task::JoinHandle<(Client, Seen)>>,
    room: i64,
}

async fn start_posting(pool: &TestPool, users: usize) -> Posting {
    let (_, admin_token) = pool.user("admin@pool.test", true);
    let mut admin = pool.client(0, &admin_token).await;
    let cat = category(&mut admin, open_category("cat-failover")).await;
    let room_id = room(
        &mut admin,
        cat,
        "failover",
        Privacy::Closed,
        RoomKind::Normal,
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let failed_at = Arc::new(std::sync::Mutex::new(None));
    // Everyone is in the room before anyone posts: each user expects every message.
    let mut clients = Vec::new();
    for i in 0..users {
        let (id, token) = pool.user(&format!("poster{i}@pool.test"), false);
        set_role(&mut admin, room_id, id, RoleName::Member, true).await;
        let mut c = pool
            .client(i % pool.topology.front_ends.len(), &token)
            .await;
        c.timeout = Duration::from_secs(2);
        join(&mut c, room_id).await;
        clients.push(c);
    }
    let tasks = clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(post_loop(c, i, room_id, stop.clone(), failed_at.clone())))
        .collect();
    Posting {
        stop,
        failed_at,
        tasks,
        room: room_id,
    }
}

/// Stop posting; check every user's view and the history; the time until every user had
/// a post acknowledged after the failure.
async fn finish(p: Posting) -> Duration {
    p.stop.store(true, Ordering::Relaxed);
    let failed = p
        .failed_at
        .lock()
        .expect("lock")
        .expect("a failure happened");
    let mut all_acked: BTreeMap<i64, String> = BTreeMap::new();
    let mut users = Vec::new();
    for t in p.tasks {
        users.push(t.await.expect("poster task"));
    }
    // Nobody posts any more: what is still on its way reaches each user before the reply
    // to a ping.
    for (c, seen) in &mut users {
        c.timeout = Duration::from_secs(10);
        let _ = c.call(Op::Ping).await;
        for push in c.queued_pushes() {
            if let Push::Chat(m) = push {
                if m.room == p.room {
                    if seen.pushed.contains(&m.seq) || seen.acked.contains_key(&m.seq) {
                        seen.repeats.push((m.seq, "late push"));
                    }
                    seen.pushed.push(m.seq);
                }
            }
        }
    }
    let mut views = Vec::new();
    let mut reader = None;
    for (c, seen) in users {
        for (seq, text) in &seen.acked {
            assert!(
                all_acked.insert(*seq, text.clone()).is_none(),
                "seq {seq} acked twice"
            );
        }
        views.push(seen);
        reader.get_or_insert(c);
    }
    let mut reader = reader.expect("a user");
    let history = full_history(&mut reader, p.room).await;
    let numbers: Vec<i64> = history.iter().map(|m| m.seq).collect();
    assert_eq!(
        numbers,
        (1..=history.len() as i64).collect::<Vec<_>>(),
        "history numbered 1..n with no gap and no repeat"
    );
    let texts: HashSet<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts.len(), history.len(), "no post stored twice");
    for (seq, text) in &all_acked {
        let stored = history
            .iter()
            .find(|m| m.seq == *seq)
            .map(|m| m.text.as_str());
        assert_eq!(
            stored,
            Some(text.as_str()),
            "acknowledged post {seq} is in history"
        );
    }
    let last = history.len() as i64;
    let mut back = Duration::ZERO;
    for (i, seen) in views.iter().enumerate() {
        assert!(!seen.bye, "user {i} was disconnected");
        assert!(
            seen.repeats.is_empty(),
            "user {i} saw numbers twice: {:?}; its pushes: {:?}; its acks: {:?}",
            seen.repeats,
            seen.pushed,
            seen.acked.keys().collect::<Vec<_>>()
        );
        let mut all: Vec<i64> = seen
            .pushed
            .iter()
            .chain(seen.acked.keys())
            .copied()
            .collect();
        all.sort_unstable();
        let missing: Vec<i64> = (1..=last)
            .filter(|s| all.binary_search(s).is_err())
            .collect();
        assert!(missing.is_empty(), "user {i} never saw {missing:?}");
        let at = seen.back_at.unwrap_or_else(|| {
            panic!(
                "user {i} never had a post acknowledged after the failure (acked {:?})",
                seen.acked.keys().collect::<Vec<_>>()
            )
        });
        back = back.max(at.saturating_duration_since(failed));
    }
    back
}

fn active(v: &Value) -> bool {
    v["active"] == true
}

#[tokio::test]
async fn sigkill_of_an_active_server_loses_no_acknowledged_post_and_users_stay_connected() {
    if !pool_tests_run() {
        return;
    }
    let mut pool = TestPool::start(3, 1, 2).await;
    let posting = start_posting(&pool, 9).await;
    let before: Vec<(String, u64)> = pool.sessions().await;
    assert!(
        before.iter().any(|(n, s)| n == "chat1" && *s > 0),
        "{before:?}"
    );
    let total: u64 = before.iter().map(|(_, s)| s).sum();
    tokio::time::sleep(Duration::from_millis(800)).await;
    *posting.failed_at.lock().expect("lock") = Some(Instant::now());
    assert!(pool.launched.kill("chat1").await);
    let killed = Instant::now();
    // Every session is back once the other servers hold them all again.
    loop {
        let now: u64 = pool.sessions().await.iter().map(|(_, s)| s).sum();
        if now >= total {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "sessions not back: {now}/{total}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let resumed = killed.elapsed();
    pool.wait_status("chat4", active).await;
    let takeover = killed.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let back = finish(posting).await;
    println!(
        "failover: all {total} sessions resumed on other servers {:.0} ms after SIGKILL; \
         every client acknowledged or pushed to again within {:.0} ms; standby active after \
         {:.0} ms",
        resumed.as_secs_f64() * 1000.0,
        back.as_secs_f64() * 1000.0,
        takeover.as_secs_f64() * 1000.0
    );
    assert!(
        resumed < Duration::from_secs(5),
        "sessions back within 5 s, took {resumed:?}"
    );
    assert!(
        back < Duration::from_secs(5),
        "clients served within 5 s, took {back:?}"
    );
    pool.stop().await;
}

#[tokio::test]
async fn a_server_cut_off_from_the_database_stops_serving_and_the_pool_recovers() {
    if !pool_tests_run() {
        return;
    }
    let database = crate::common::fresh_pg_database().await;
    let (proxy, through_proxy) = Proxy::for_database(&database).await;
    let options = Options {
        database_of: vec![("chat1".into(), through_proxy)],
        ..Default::default()
    };
    let pool = TestPool::start_from(&topology_text("cut", 2, 1, 2), options, Some(database)).await;
    let posting = start_posting(&pool, 6).await;
    pool.wait_status("chat1", |v| v["sessions"].as_u64().unwrap_or(0) > 0)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    proxy.cut();
    *posting.failed_at.lock().expect("lock") = Some(Instant::now());
    // chat1 stops serving: takes nothing new, hands its sessions over; the standby takes
    // its place once its lease has ended.
    let cut = pool.wait_status("chat1", |v| v["cut_off"] == true).await;
    assert_eq!(cut["accepting"], false, "{cut}");
    pool.wait_status("chat1", |v| v["sessions"] == 0).await;
    pool.wait_status("chat3", active).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // The database comes back: chat1 serves again (as a standby: its place was taken).
    proxy.restore();
    let back = pool.wait_status("chat1", |v| v["cut_off"] == false).await;
    assert_eq!(
        back["slot"],
        Value::Null,
        "its place went to the standby: {back}"
    );
    let took = finish(posting).await;
    println!(
        "database cut-off: sessions of the cut-off server back {:.0} ms after the cut",
        took.as_secs_f64() * 1000.0
    );
    // The pool takes new sign-ins again.
    let (_, token) = pool.user("late@pool.test", false);
    let mut late = pool.client(1, &token).await;
    assert!(matches!(late.call(Op::Ping).await, Ok(Ok(_))));
    pool.stop().await;
}
