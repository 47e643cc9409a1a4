//! An acknowledged post survives `kill -9`: the real `chatcap serve` binary runs as a child
//! process, two clients pipeline posts into one room, the server is killed with SIGKILL
//! while posts are still in flight, restarted on the same database, and every acked post
//! must be in history, in order, exactly once, numbered 1..=n without gaps.

use std::collections::HashMap;
use std::time::Duration;

use chatcap::client::Client;
use chatcap_server::protocol::reply::{Ack, ServerMsg};
use chatcap_server::protocol::{Op, Privacy, Request, RoomKind};

use crate::common::procs::Data;
use crate::common::{
    backends, category, check_acked_in, full_history, join, ok, open_category, post, room, Backend,
};

/// Posts each client sends.
const PER_CLIENT: usize = 150;
/// Acks each client waits for before the server is killed.
const BEFORE_KILL: usize = 100;

/// A single box on any free ports.
const LISTEN: [&str; 4] = ["--listen", "127.0.0.1:0", "--chat-listen", "127.0.0.1:0"];

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
    let data = Data::new(backend).await;
    let (admin, admin_token) = data.user_add("admin@durable", true);
    let (bob, bob_token) = data.user_add("bob@durable", false);

    let server = data.serve("serve-1", &LISTEN).await;
    let mut a = signed_in(&server.ws_url(), &admin_token).await;
    let cat = category(&mut a, open_category("durable")).await;
    let r = room(&mut a, cat, "durable", Privacy::Open, RoomKind::Normal).await;
    let mut b = signed_in(&server.ws_url(), &bob_token).await;
    join(&mut a, r).await;
    join(&mut b, r).await;

    send_posts(&mut a, r, "a").await;
    send_posts(&mut b, r, "b").await;
    let mut acked = HashMap::new();
    read_acks(&mut a, "a", &mut acked, BEFORE_KILL).await;
    read_acks(&mut b, "b", &mut acked, BEFORE_KILL).await;
    server.kill().await;
    // Acks already on their way still count: every ack a client saw is a promise.
    read_acks(&mut a, "a", &mut acked, PER_CLIENT).await;
    read_acks(&mut b, "b", &mut acked, PER_CLIENT).await;
    assert!(acked.len() >= 2 * BEFORE_KILL);

    let server = data.serve("serve-2", &LISTEN).await;
    let mut a = signed_in(&server.ws_url(), &admin_token).await;
    // `user add` on an existing name creates nothing and issues a token again; the one
    // issued before still signs in (docs/PROTOCOL.md, "Tokens").
    let (again, bob_token_2) = data.user_add("bob@durable", false);
    assert_eq!(again, bob);
    signed_in(&server.ws_url(), &bob_token_2).await;
    signed_in(&server.ws_url(), &bob_token).await;
    let hist = full_history(&mut a, r).await;
    check_acked_in(&hist, acked.iter().map(|(cid, seq)| (cid, *seq)));
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
    server.kill().await;
}

#[tokio::test]
async fn acked_posts_survive_sigkill() {
    for backend in backends() {
        kill_and_recover(backend).await;
    }
}
