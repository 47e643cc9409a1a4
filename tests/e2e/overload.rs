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
