//! Overload and abandonment: a stalled link (the chat server drops it; the front end ends
//! its sessions with `bye link_lost`, reconnects, and the server keeps serving), a client
//! that does not read (dropped, the room goes on), web calls abandoned mid-call or beyond
//! the rate, sessions closing mid-join.

use std::time::{Duration, Instant};

use chatcap::client::Client;
use chatcap_server::protocol::reply::ServerMsg;
use chatcap_server::protocol::{Op, Privacy, Push};

use crate::common::{join, post_op, read_until_closed, Backend, Cast, TestServer};

#[tokio::test]
async fn an_overflowing_link_is_dropped_and_the_server_recovers() {
    // A link queue of 4 frames overflows at the first burst of deliveries.
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.chat.link_queue = 4).await;
    let mut c = Cast::with(srv).await;
    let r = c.room("busy", Privacy::Open, &[]).await;
    join(&mut c.a, r).await;
    let mut b = c.srv.client(c.bob).await;
    join(&mut b, r).await;
    for i in 0..300u64 {
        let req = chatcap_server::protocol::Request {
            id: 1000 + i,
            op: post_op(r, "x", &format!("m{i}")),
        };
        c.a.send_text(serde_json::to_string(&req).expect("json"))
            .await
            .expect("send");
    }
    let seen = read_until_closed(&mut b).await;
    assert!(
        seen.iter()
            .any(|m| matches!(m, ServerMsg::Push(Push::Bye { reason }) if reason == "link_lost")),
        "bob's session ends with bye link_lost: {:?}",
        seen.last()
    );
    // The front end reconnects and the server answers again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut fresh = Client::connect(&c.srv.url()).await.expect("connect");
        fresh.timeout = Duration::from_secs(2);
        let signed = fresh
            .call(Op::SignIn {
                token: c.srv.token(c.alice),
            })
            .await;
        if let Ok(Ok(_)) = signed {
            assert!(fresh.call(Op::Ping).await.expect("reply").is_ok());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not recover: {signed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.srv.stop().await;
}

/// Posts in the slow-consumer test, and their size: together far more than the socket
/// buffers between the front end and a client that does not read.
const FLOOD_POSTS: usize = 600;
/// Posts sent before waiting for their acks (the poster's queue holds their acks and
/// their own deliveries).
const CHUNK: usize = 20;
const FLOOD_TEXT: usize = 15_000;

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped_and_the_room_goes_on() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.front.session_queue = 64;
        c.front.rate_per_sec = 1e6;
        c.front.rate_burst = 1e6;
    })
    .await;
    let mut c = Cast::with(srv).await;
    let r = c.room("firehose", Privacy::Open, &[]).await;
    join(&mut c.a, r).await;
    // Bob reads everything, in a task of its own.
    let mut bob = c.srv.client(c.bob).await;
    join(&mut bob, r).await;
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while seqs.len() < FLOOD_POSTS {
            match bob.next_push().await {
                Ok(Push::Chat(m)) => seqs.push(m.seq),
                Ok(_) => {}
                Err(e) => panic!("bob, who reads, lost his session: {e}"),
            }
        }
        seqs
    });
    // Alice joins and then never reads again.
    let mut stalled = c.srv.client(c.alice).await;
    join(&mut stalled, r).await;
    let sessions_before = c
        .srv
        .running
        .front
        .as_ref()
        .expect("front end")
        .session_count();

    let text = "z".repeat(FLOOD_TEXT);
    for chunk in 0..(FLOOD_POSTS / CHUNK) {
        let ids: Vec<String> = (0..CHUNK).map(|i| format!("f{chunk}-{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let req = chatcap_server::protocol::Request {
                id: 10_000 + (chunk * CHUNK + i) as u64,
                op: Op::Post {
                    room: r,
                    text: text.clone(),
                    client_msg_id: id.clone(),
                    sent_at_us: None,
                },
            };
            c.a.send_text(serde_json::to_string(&req).expect("json"))
                .await
                .expect("send");
        }
        // Every post of the chunk is acknowledged: the poster never waits on the stalled
        // reader.
        let mut acked = 0;
        while acked < ids.len() {
            match c.a.recv().await.expect("the poster's replies arrive") {
                ServerMsg::Reply { .. } => acked += 1,
                ServerMsg::Error { code, .. } => panic!("a post was refused: {code:?}"),
                ServerMsg::Push(_) => {}
            }
        }
    }
    let seqs = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("bob got every message in time")
        .expect("reader task");
    assert_eq!(seqs, (1..=FLOOD_POSTS as i64).collect::<Vec<_>>());

    // The stalled session was dropped by the front end…
    let front = c.srv.running.front.clone().expect("front end");
    let deadline = Instant::now() + Duration::from_secs(20);
    while front.session_count() >= sessions_before {
        assert!(
            Instant::now() < deadline,
            "the stalled session was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // …and its client, reading at last, finds the stream ended early: some messages, then
    // (at most) `bye slow_consumer`, then the end — never all of them.
    let seen = read_until_closed(&mut stalled).await;
    let chats = seen
        .iter()
        .filter(|m| matches!(m, ServerMsg::Push(Push::Chat(_))))
        .count();
    assert!(
        chats < FLOOD_POSTS,
        "the stalled client got all {chats} messages"
    );
    for m in &seen {
        if let ServerMsg::Push(Push::Bye { reason }) = m {
            assert_eq!(reason, "slow_consumer");
        }
    }
    c.srv.stop().await;
}

/// Web-service calls whose HTTP client goes away mid-call leave no session behind, on the
/// front end or on the chat server.
#[tokio::test]
async fn abandoned_web_calls_leave_no_sessions() {
    use tokio::io::AsyncWriteExt;
    let srv = TestServer::start(Backend::Sqlite).await;
    let admin = srv.user("admin@chatcap.test", true).await;
    let token = srv.token(admin);
    let addr = srv.running.http_addr;
    for _ in 0..200 {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "GET /api/rooms HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.expect("write");
        drop(s);
    }
    let front = srv.running.front.clone().expect("front end");
    let hub = srv.running.hub().expect("chat server").clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while front.session_count() > 0 || hub.session_count() > 0 {
        assert!(
            Instant::now() < deadline,
            "sessions left: front end {}, chat server {}",
            front.session_count(),
            hub.session_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.stop().await;
}

/// Sessions that close while their `join` is being handled leave no ghost participant.
#[tokio::test]
async fn sessions_closing_mid_join_leave_no_ghosts() {
    let mut c = Cast::new(Backend::Sqlite).await;
    let mut rooms = Vec::new();
    for i in 0..20 {
        rooms.push(c.room(&format!("cold-{i}"), Privacy::Open, &[]).await);
    }
    for _ in 0..4 {
        for &r in &rooms {
            let mut alice = c.srv.client(c.alice).await;
            let req = chatcap_server::protocol::Request {
                id: 1,
                op: crate::common::join_op(r),
            };
            alice
                .send_text(serde_json::to_string(&req).expect("json"))
                .await
                .expect("send");
            drop(alice);
        }
    }
    // Once every session has ended, nobody is left in any room.
    let hub = c.srv.running.hub().expect("chat server").clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while hub.session_count() > 1 {
        assert!(Instant::now() < deadline, "sessions did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for &r in &rooms {
        let list: chatcap_server::protocol::reply::Participants =
            crate::common::ok_as(&mut c.a, Op::Participants { room: r }).await;
        assert!(list.users.is_empty(), "room {r}: {:?}", list.users);
    }
    c.srv.stop().await;
}

/// The web services are rate-limited per user like a WebSocket session: 429 beyond.
#[tokio::test]
async fn web_calls_beyond_the_rate_are_refused_429() {
    let srv = TestServer::start_with(Backend::Sqlite, |cfg| {
        cfg.front.rate_per_sec = 0.01;
        cfg.front.rate_burst = 3.0;
    })
    .await;
    let admin = srv.user("admin@chatcap.test", true).await;
    let token = srv.token(admin);
    let addr = srv.running.http_addr;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, _) = crate::common::procs::http_get_as(addr, "/api/rooms", Some(&token)).await;
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let (_, body) = crate::common::procs::http_get_as(addr, "/api/rooms", Some(&token)).await;
    assert!(body.contains("rate_limited"), "{body}");
    srv.stop().await;
}
