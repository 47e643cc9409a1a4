//! A multiple-server pool (real processes, loopback, PostgreSQL): users homed on different
//! chat servers chat in one order with global sequence numbers; history, files and room
//! changes made through one server show through every other; drain and set-active behave
//! as docs/POOL.md says; a pool that breaks the topology rules is refused.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chatcap::client::Client;
use chatcap_server::protocol::pool::AdminRequest;
use chatcap_server::protocol::reply::Ack;
use chatcap_server::protocol::{Op, Privacy, Push, RoleName, RoomKind, RoomPatch};
use serde_json::Value;

use crate::common::pool::{pool_tests_run, TestPool};
use crate::common::{
    category, full_history, join, ok, ok_as, open_category, post, post_op, room, set_role,
    wait_push,
};
use crate::files::support::Http;

/// The admin and `n` users, each with a client through front end `i % front ends`.
struct Crowd {
    admin: Client,
    admin_id: i64,
    ids: Vec<i64>,
    tokens: Vec<String>,
    clients: Vec<Client>,
}

async fn crowd(pool: &TestPool, n: usize) -> Crowd {
    let (admin_id, admin_token) = pool.user("admin@pool.test", true);
    let admin = pool.client(0, &admin_token).await;
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    let mut clients = Vec::new();
    for i in 0..n {
        let (id, token) = pool.user(&format!("user{i}@pool.test"), false);
        clients.push(
            pool.client(i % pool.topology.front_ends.len(), &token)
                .await,
        );
        ids.push(id);
        tokens.push(token);
    }
    Crowd {
        admin,
        admin_id,
        ids,
        tokens,
        clients,
    }
}

/// A closed room with every member of the crowd in it, everyone joined.
async fn shared_room(c: &mut Crowd, name: &str) -> i64 {
    let cat = category(&mut c.admin, open_category(&format!("cat-{name}"))).await;
    let id = room(&mut c.admin, cat, name, Privacy::Closed, RoomKind::Normal).await;
    for user in c.ids.clone() {
        set_role(&mut c.admin, id, user, RoleName::Member, true).await;
    }
    for client in &mut c.clients {
        join(client, id).await;
    }
    id
}

/// Servers holding at least one session.
async fn servers_in_use(pool: &TestPool) -> usize {
    pool.sessions().await.iter().filter(|(_, n)| *n > 0).count()
}

#[tokio::test]
async fn users_homed_on_different_servers_chat_in_one_order_with_global_numbers() {
    if !pool_tests_run() {
        return;
    }
    let pool = TestPool::start(3, 1, 2).await;
    let mut c = crowd(&pool, 6).await;
    // Each user's session is on the server the front ends' routing picks for it.
    let mut want = [0u64; 3];
    for id in c.ids.iter().chain([&c.admin_id]) {
        want[chatcap_server::frontend::home_of(*id, 3)] += 1;
    }
    let got: Vec<u64> = pool
        .sessions()
        .await
        .iter()
        .take(3)
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(got, want, "sessions over the 3 active servers");
    assert!(
        want.iter().filter(|n| **n > 0).count() >= 2,
        "users on several servers"
    );
    let standby = pool.status("chat4").await.expect("chat4 answers");
    assert_eq!(
        standby["sessions"], 0,
        "a standby takes no sessions: {standby}"
    );
    let room_id = shared_room(&mut c, "one-order").await;

    // Everyone posts at once, through every server.
    const EACH: usize = 5;
    let mut tasks = Vec::new();
    for (i, mut client) in std::mem::take(&mut c.clients).into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for k in 0..EACH {
                let text = format!("u{i}-m{k}");
                let ack: Ack = ok_as(&mut client, post_op(room_id, &text, &text)).await;
                acks.push((ack.seq, text));
            }
            (client, acks)
        }));
    }
    let mut clients = Vec::new();
    let mut by_seq: BTreeMap<i64, String> = BTreeMap::new();
    let mut own = Vec::new();
    for t in tasks {
        let (client, acks) = t.await.expect("poster");
        for (seq, text) in &acks {
            assert!(
                by_seq.insert(*seq, text.clone()).is_none(),
                "seq {seq} acked twice"
            );
        }
        own.push(acks);
        clients.push(client);
    }
    let total = (EACH * 6) as i64;
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>(),
        "one gapless numbering for the room, whichever server each post reached"
    );
    // Every member sees every other member's post, in number order, with those numbers.
    for (i, client) in clients.iter_mut().enumerate() {
        let mut seen: Vec<(i64, String)> = own[i].clone();
        while seen.len() < total as usize {
            match wait_push(client, |p| matches!(p, Push::Chat(m) if m.room == room_id)).await {
                Push::Chat(m) => seen.push((m.seq, m.text)),
                _ => unreachable!(),
            }
        }
        let pushed: Vec<i64> = seen[EACH..].iter().map(|(s, _)| *s).collect();
        assert!(
            pushed.windows(2).all(|w| w[0] < w[1]),
            "user {i} got pushes out of order: {pushed:?}"
        );
        seen.sort();
        let want: Vec<(i64, String)> = by_seq.iter().map(|(s, t)| (*s, t.clone())).collect();
        assert_eq!(
            seen, want,
            "user {i} saw every message once, numbered as acked"
        );
    }
    // History is the same through every server.
    for client in clients.iter_mut() {
        let h = full_history(client, room_id).await;
        let got: Vec<(i64, String)> = h.into_iter().map(|m| (m.seq, m.text)).collect();
        assert_eq!(got, by_seq.clone().into_iter().collect::<Vec<_>>());
    }
    pool.stop().await;
}

#[tokio::test]
async fn history_files_and_room_changes_show_through_every_server() {
    if !pool_tests_run() {
        return;
    }
    let pool = TestPool::start(3, 0, 2).await;
    let mut c = crowd(&pool, 3).await;
    assert!(
        servers_in_use(&pool).await >= 2,
        "{:?}",
        pool.sessions().await
    );
    let room_id = shared_room(&mut c, "changes").await;

    // A room edit through the admin's server reaches members on every other server.
    let patch = RoomPatch {
        description: Some("edited elsewhere".into()),
        ..Default::default()
    };
    ok(
        &mut c.admin,
        Op::UpdateRoom {
            room: room_id,
            patch,
        },
    )
    .await;
    // Membership changes made while the room was set up are announced too, and one made
    // through another server may still be on its way: wait for the edit itself.
    for client in &mut c.clients {
        wait_push(
            client,
            |p| matches!(p, Push::RoomChanged(info) if info.description == "edited elsewhere"),
        )
        .await;
    }
    // A room created and a member added through one server can be joined through another.
    let cat = category(&mut c.admin, open_category("cat-late")).await;
    let late = room(&mut c.admin, cat, "late", Privacy::Closed, RoomKind::Normal).await;
    set_role(&mut c.admin, late, c.ids[1], RoleName::Member, true).await;
    join(&mut c.clients[1], late).await;
    post(&mut c.clients[1], late, "hello late", "late-1").await;
    // History posted anywhere is readable everywhere.
    post(&mut c.clients[0], room_id, "from user0", "h-1").await;
    post(&mut c.clients[2], room_id, "from user2", "h-2").await;
    for client in &mut c.clients {
        let texts: Vec<String> = full_history(client, room_id)
            .await
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["from user0", "from user2"]);
    }
    // A file uploaded through one front end downloads through the other.
    let fe1 = Http::new(pool.topology.front_ends[0].addr());
    let fe2 = Http::new(pool.topology.front_ends[1].addr());
    let stored = fe1
        .uploaded(&c.tokens[0], room_id, "notes.txt", b"pool file")
        .await;
    let got = fe2.download(&c.tokens[2], room_id, &stored.file).await;
    assert_eq!(got.status, hyper::StatusCode::OK);
    assert_eq!(&got.body[..], b"pool file");
    // An administrator's removal of a message shows on every server's members.
    ok(
        &mut c.admin,
        Op::RemoveMessage {
            room: room_id,
            seq: 1,
            replacement: None,
        },
    )
    .await;
    for client in &mut c.clients {
        wait_push(client, |p| {
            matches!(
                p,
                Push::MessageChanged {
                    seq: 1,
                    removed: true,
                    ..
                }
            )
        })
        .await;
    }
    // Disabling the room closes it for members on every server.
    let patch = RoomPatch {
        disabled: Some(true),
        ..Default::default()
    };
    ok(
        &mut c.admin,
        Op::UpdateRoom {
            room: room_id,
            patch,
        },
    )
    .await;
    for client in &mut c.clients {
        wait_push(
            client,
            |p| matches!(p, Push::RoomClosed { room, .. } if *room == room_id),
        )
        .await;
    }
    pool.stop().await;
}

#[tokio::test]
async fn drain_moves_sessions_and_set_active_takes_a_server_off_new_sessions() {
    if !pool_tests_run() {
        return;
    }
    let pool = TestPool::start(2, 1, 2).await;
    let mut c = crowd(&pool, 6).await;
    let room_id = shared_room(&mut c, "drain").await;
    let before: HashMap<String, u64> = pool.sessions().await.into_iter().collect();
    assert!(before["chat1"] > 0 && before["chat2"] > 0, "{before:?}");

    // Drain chat1: its sessions move to chat2 (and the standby, once it takes chat1's
    // place); the clients keep their WebSockets and keep chatting.
    let drained = pool
        .admin("chat1", AdminRequest::Drain)
        .await
        .expect("drain");
    assert_eq!(drained["drained"], true, "{drained}");
    pool.wait_status("chat1", |v| v["sessions"] == 0).await;
    pool.wait_status("chat3", |v| v["active"] == true).await;
    for (i, client) in c.clients.iter_mut().enumerate() {
        let text = format!("after drain {i}");
        post(client, room_id, &text, &text).await;
    }
    for client in &mut c.clients {
        let h = full_history(client, room_id).await;
        assert_eq!(h.len(), 6, "every post stored once");
    }
    let new = pool.client(0, &c.tokens[0]).await;
    let sessions: HashMap<String, u64> = pool.sessions().await.into_iter().collect();
    assert_eq!(
        sessions["chat1"], 0,
        "a drained server takes no new session: {sessions:?}"
    );
    drop(new);

    // set-active chat1 + chat2: chat1 is undrained and active again; chat3 is left off and
    // keeps its sessions but takes no new ones.
    let answer = pool
        .admin(
            "chat2",
            AdminRequest::SetActive {
                servers: vec!["chat1".into(), "chat2".into()],
            },
        )
        .await
        .expect("set-active");
    assert!(
        answer["slots"].as_array().is_some_and(|s| s.len() == 2),
        "{answer}"
    );
    pool.wait_status("chat1", |v| v["active"] == true).await;
    let chat3 = pool.wait_status("chat3", |v| v["accepting"] == false).await;
    let kept = chat3["sessions"].as_u64().unwrap_or(0);
    let mut fresh = Vec::new();
    for token in &c.tokens {
        fresh.push(pool.client(1, token).await);
    }
    let after = pool.status("chat3").await.expect("chat3");
    assert_eq!(
        after["sessions"].as_u64(),
        Some(kept),
        "chat3 kept its sessions, took none: {after}"
    );
    // Bad lists are refused with a reason.
    let e = pool
        .admin(
            "chat1",
            AdminRequest::SetActive {
                servers: vec!["chat1".into(), "chat9".into()],
            },
        )
        .await
        .unwrap_err();
    assert!(
        e.contains("chat9") && e.contains("not a chat server"),
        "{e}"
    );
    pool.stop().await;
}

#[tokio::test]
async fn pools_that_break_the_topology_rules_are_refused() {
    if !pool_tests_run() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_chatcap");
    let dir = tempfile::tempdir().expect("dir");
    // Five active servers: `pool up` refuses before starting anything.
    let file = dir.path().join("five.toml");
    std::fs::write(&file, crate::common::pool::topology_text("five", 5, 0, 1)).expect("write");
    let out = std::process::Command::new(bin)
        .args(["pool", "up"])
        .arg(&file)
        .output()
        .expect("run pool up");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at most 4 active"), "{err}");
    assert!(err.contains("five.toml:"), "names the file and line: {err}");

    // A database created by a single-server pool cannot serve a pool with more servers.
    let database = crate::common::fresh_pg_database().await;
    let single = crate::common::pool::topology_text("grow", 1, 0, 1).replacen(
        "name = \"grow\"\n",
        "name = \"grow\"\nkind = \"single\"\n",
        1,
    );
    let pool = TestPool::start_from(&single, Default::default(), Some(database.clone())).await;
    pool.stop().await;
    let grown = dir.path().join("grown.toml");
    std::fs::write(&grown, crate::common::pool::topology_text("grow", 2, 0, 1)).expect("write");
    let out = tokio::process::Command::new(bin)
        .args(["serve", "--topology"])
        .arg(&grown)
        .args(["--name", "chat1", "--database", &database])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("exits")
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("single-server pool; it cannot gain servers"),
        "{err}"
    );
}

/// A post retried after its user moved to another chat server is stored once and
/// acknowledged with the original's number.
#[tokio::test]
async fn a_retry_through_another_server_is_stored_once() {
    if !pool_tests_run() {
        return;
    }
    let pool = TestPool::start(2, 0, 1).await;
    let mut c = crowd(&pool, 2).await;
    let room_id = shared_room(&mut c, "retry").await;
    let first = post(&mut c.clients[0], room_id, "once", "retry-1").await;
    // Drain chat1, let it back in, drain chat2: every session has moved at least once.
    pool.admin("chat1", AdminRequest::Drain)
        .await
        .expect("drain chat1");
    pool.wait_status("chat1", |v| v["sessions"] == 0).await;
    pool.admin("chat1", AdminRequest::Undrain)
        .await
        .expect("undrain chat1");
    pool.wait_status("chat1", |v| v["active"] == true).await;
    pool.admin("chat2", AdminRequest::Drain)
        .await
        .expect("drain chat2");
    pool.wait_status("chat2", |v| v["sessions"] == 0).await;
    let again = post(&mut c.clients[0], room_id, "once", "retry-1").await;
    assert_eq!(again.seq, first.seq, "the original's number");
    assert!(again.duplicate, "acknowledged as a retry");
    let history = full_history(&mut c.clients[1], room_id).await;
    assert_eq!(history.len(), 1, "stored once: {history:?}");
    pool.stop().await;
}

/// Pool status over the command line: every server, the active places.
#[tokio::test]
async fn pool_status_prints_every_server_and_the_active_places() {
    if !pool_tests_run() {
        return;
    }
    let pool = TestPool::start(2, 1, 1).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_chatcap"))
        .args(["pool", "status"])
        .arg(pool.file())
        .output()
        .await
        .expect("run pool status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "chat1",
        "active",
        "chat3",
        "standby",
        "active places (test-pool): 0=chat1",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let json = tokio::process::Command::new(env!("CARGO_BIN_EXE_chatcap"))
        .args(["pool", "status", "--json"])
        .arg(pool.file())
        .output()
        .await
        .expect("run pool status --json");
    let v: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(3));
    pool.stop().await;
}
