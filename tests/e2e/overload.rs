//! A stalled link: when the chat server cannot queue more frames toward a front end, it
//! drops that link; the front end ends its sessions with `bye link_lost`, reconnects, and
//! the server keeps serving (no deadlock, no stalled room).

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
