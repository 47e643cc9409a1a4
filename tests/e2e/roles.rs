//! The front end as its own role: a chat server process and front-end processes started
//! separately from the real binary. Users connected through different front ends chat
//! with each other; front ends share a port; a front end survives its chat server going
//! away and coming back; a user whose chat server is down lands on another; a full front
//! end refuses new connections with "server too busy"; room changes and files made through
//! one front-end process show through another.

use std::net::SocketAddr;
use std::time::Duration;

use chatcap::client::Client;
use chatcap_server::protocol::reply::ServerMsg;
use chatcap_server::protocol::{ErrorCode, Op, Privacy, Push, RoleName, RoomKind};

use crate::common::procs::{any_port, http_get, http_get_as, signed_in, Data};
use crate::common::{
    backends, category, free_port, full_history, join, open_category, post, room, set_role,
    wait_push, Backend, TestServer,
};
use crate::web_rooms::Http;

/// Admin, alice and bob, and a closed room (alice and bob members) made by the admin.
struct People {
    admin: String,
    alice: (i64, String),
    bob: (i64, String),
}

fn people(data: &Data) -> People {
    People {
        admin: data.user_add("admin@chatcap.test", true).1,
        alice: data.user_add("alice@chatcap.test", false),
        bob: data.user_add("bob@chatcap.test", false),
    }
}

async fn closed_room(url: &str, p: &People, name: &str) -> i64 {
    let mut admin = signed_in(url, &p.admin).await;
    let cat = category(&mut admin, open_category(&format!("cat-{name}"))).await;
    let id = room(&mut admin, cat, name, Privacy::Closed, RoomKind::Normal).await;
    for user in [p.alice.0, p.bob.0] {
        set_role(&mut admin, id, user, RoleName::Member, true).await;
    }
    id
}

/// The next message pushed for `room`'s chat.
async fn next_message_text(c: &mut Client, room_id: i64) -> String {
    match wait_push(c, |p| matches!(p, Push::Chat(m) if m.room == room_id)).await {
        Push::Chat(m) => m.text,
        other => panic!("not a message: {other:?}"),
    }
}

#[tokio::test]
async fn users_on_two_front_ends_of_one_chat_server_chat_with_each_other() {
    for backend in backends() {
        let data = Data::new(backend).await;
        let p = people(&data);
        let chat = data.chat_server("chat", any_port()).await;
        let link = chat.chat_addr().expect("chat link");
        let fe_a = data.front_end("fe-a", any_port(), &[link]).await;
        let fe_b = data.front_end("fe-b", any_port(), &[link]).await;
        assert_eq!(chat.ready.role, "chat");
        assert_eq!(fe_a.ready.role, "frontend");
        assert_ne!(fe_a.ready.http, fe_b.ready.http);

        let id = closed_room(&fe_a.ws_url(), &p, "two-fronts").await;
        let mut alice = signed_in(&fe_a.ws_url(), &p.alice.1).await;
        let mut bob = signed_in(&fe_b.ws_url(), &p.bob.1).await;
        join(&mut alice, id).await;
        join(&mut bob, id).await;

        post(&mut alice, id, "hello from front end A", "a1").await;
        assert_eq!(
            next_message_text(&mut bob, id).await,
            "hello from front end A"
        );
        post(&mut bob, id, "hello back from B", "b1").await;
        assert_eq!(next_message_text(&mut alice, id).await, "hello back from B");

        let texts: Vec<String> = full_history(&mut bob, id)
            .await
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["hello from front end A", "hello back from B"]);

        // A user created while the processes run uses the web service at once (the chat
        // server looks up users it has not loaded).
        let (_, carol) = data.user_add("carol@chatcap.test", false);
        let (status, body) = http_get_as(fe_b.ready.http, "/api/rooms", Some(&carol)).await;
        assert_eq!(status, 200, "{body}");

        // Every process serves health and Prometheus metrics.
        let (status, body) = http_get(chat.ready.http, "/healthz").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains("role=chat") && body.contains("links=2"),
            "{body}"
        );
        let (status, body) = http_get(chat.ready.http, "/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("chatcap_sessions"), "chat metrics: {body}");
        for fe in [&fe_a, &fe_b] {
            let (status, body) = http_get(fe.ready.http, "/healthz").await;
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("links=1/1"), "{body}");
            let (status, body) = http_get(fe.ready.http, "/metrics").await;
            assert_eq!(status, 200);
            assert!(body.contains("chatcap_frontend_sessions"), "{body}");
        }
        for process in [fe_a, fe_b, chat] {
            let status = process.terminate(Duration::from_secs(20)).await;
            assert!(status.is_some_and(|s| s.success()), "clean exit on SIGTERM");
        }
    }
}

#[tokio::test]
async fn front_ends_share_one_port_and_either_serves_any_user() {
    let data = Data::new(Backend::Sqlite).await;
    let p = people(&data);
    let chat = data.chat_server("chat", any_port()).await;
    let link = chat.chat_addr().expect("chat link");
    let port: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let fe_a = data.front_end("fe-a", port, &[link]).await;
    let fe_b = data.front_end("fe-b", port, &[link]).await;
    assert_eq!(fe_a.ready.http, port);
    assert_eq!(fe_b.ready.http, port, "SO_REUSEPORT: both bound the port");

    let url = format!("ws://{port}/ws");
    let id = closed_room(&url, &p, "shared-port").await;
    let before = [open_files(fe_a.pid), open_files(fe_b.pid)];
    let mut clients = Vec::new();
    for i in 0..20 {
        let token = if i % 2 == 0 { &p.alice.1 } else { &p.bob.1 };
        let mut c = signed_in(&url, token).await;
        join(&mut c, id).await;
        clients.push(c);
    }
    // The kernel spread the connections: both front ends hold some (20 connections all
    // on one of two listeners happens once in 2^19).
    let after = [open_files(fe_a.pid), open_files(fe_b.pid)];
    assert!(
        after[0] > before[0] && after[1] > before[1],
        "open files before {before:?}, after {after:?}"
    );
    let (_, health) = http_get(chat.ready.http, "/healthz").await;
    assert!(health.contains("links=2"), "{health}");

    // One front end goes away; the port keeps serving through the other.
    fe_a.kill().await;
    let mut late = signed_in(&url, &p.alice.1).await;
    join(&mut late, id).await;
    post(&mut late, id, "still here", "late-1").await;
    let texts: Vec<String> = full_history(&mut late, id)
        .await
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["still here"]);
    drop(clients);
    fe_b.kill().await;
    chat.kill().await;
}

/// Descriptors a process holds now.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_front_end_survives_its_chat_server_restarting() {
    for backend in backends() {
        let data = Data::new(backend).await;
        let p = people(&data);
        let link: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let chat = data.chat_server("chat-1", link).await;
        let fe = data.front_end("fe", any_port(), &[link]).await;
        let id = closed_room(&fe.ws_url(), &p, "restart").await;
        let mut alice = signed_in(&fe.ws_url(), &p.alice.1).await;
        join(&mut alice, id).await;
        post(&mut alice, id, "before", "r1").await;

        chat.kill().await;
        // The session ends with link_lost (close code 1012: reconnect).
        let bye = loop {
            match alice.recv().await {
                Ok(ServerMsg::Push(Push::Bye { reason })) => break reason,
                Ok(_) => continue,
                Err(e) => panic!("no bye before the close: {e}"),
            }
        };
        assert_eq!(bye, "link_lost");
        let (status, _) = http_get(fe.ready.http, "/healthz").await;
        assert_eq!(status, 503, "no chat server linked");
        // Sign-in is refused as busy meanwhile, not left hanging.
        let mut early = Client::connect(&fe.ws_url()).await.expect("connect");
        early.timeout = Duration::from_secs(10);
        let refused = early
            .call(Op::SignIn {
                token: p.alice.1.clone(),
            })
            .await
            .expect("a reply");
        assert_eq!(refused.err().map(|e| e.code), Some(ErrorCode::Busy));

        let chat = data.chat_server("chat-2", link).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while http_get(fe.ready.http, "/healthz").await.0 != 200 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "front end relinked in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut alice = signed_in(&fe.ws_url(), &p.alice.1).await;
        join(&mut alice, id).await;
        post(&mut alice, id, "after", "r2").await;
        let texts: Vec<String> = full_history(&mut alice, id)
            .await
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["before", "after"]);
        fe.kill().await;
        chat.kill().await;
    }
}

#[tokio::test]
async fn users_whose_chat_server_is_down_land_on_another() {
    let data = Data::new(Backend::Sqlite).await;
    let p = people(&data);
    let chat = data.chat_server("chat", any_port()).await;
    let up = chat.chat_addr().expect("chat link");
    // A second configured chat server that is not running: its users fail over.
    let down: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let fe = data.front_end("fe", any_port(), &[up, down]).await;
    let (status, body) = http_get(fe.ready.http, "/healthz").await;
    assert_eq!(status, 200);
    assert!(body.contains("links=1/2"), "{body}");
    let id = closed_room(&fe.ws_url(), &p, "failover").await;
    // Alice and bob have consecutive ids: one of them is homed on the missing server.
    let mut alice = signed_in(&fe.ws_url(), &p.alice.1).await;
    let mut bob = signed_in(&fe.ws_url(), &p.bob.1).await;
    join(&mut alice, id).await;
    join(&mut bob, id).await;
    post(&mut alice, id, "routed around", "f1").await;
    assert_eq!(next_message_text(&mut bob, id).await, "routed around");
    fe.kill().await;
    chat.kill().await;
}

#[tokio::test]
async fn a_full_front_end_refuses_new_connections_as_too_busy() {
    let srv = TestServer::start_with(Backend::Sqlite, |cfg| {
        cfg.front.max_connections = 2;
    })
    .await;
    let admin = srv.user("admin@chatcap.test", true).await;
    let first = srv.client(admin).await;
    let second = srv.client(admin).await;
    let (status, body) = http_get_upgrade(srv.running.http_addr).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("server too busy"), "{body}");
    // A connection that ends makes room for a new one.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut c) = Client::connect(&srv.url()).await {
            c.timeout = Duration::from_secs(10);
            let token = srv.token(admin);
            if c.call(Op::SignIn { token }).await.is_ok_and(|r| r.is_ok()) {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "room made in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(second);
    srv.stop().await;
}

/// A WebSocket upgrade request by hand: (status, body).
async fn http_get_upgrade(addr: SocketAddr) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut resp = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut resp))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&resp[..n]).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn files_and_room_changes_made_through_one_front_end_process_show_through_another() {
    for backend in backends() {
        let data = Data::new(backend).await;
        let p = people(&data);
        let chat = data.chat_server("chat", any_port()).await;
        let link = chat.chat_addr().expect("chat link");
        let fe_a = data.front_end("fe-a", any_port(), &[link]).await;
        let fe_b = data.front_end("fe-b", any_port(), &[link]).await;
        let id = closed_room(&fe_a.ws_url(), &p, "shared-files").await;
        let (a, b) = (Http::new(fe_a.ready.http), Http::new(fe_b.ready.http));

        // A room change through A is what B serves.
        let patch = serde_json::json!({ "description": "changed through front end A" });
        let changed = a
            .call("PATCH", &format!("/api/rooms/{id}"), &p.admin, Some(patch))
            .await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        let seen = b.get(&format!("/api/rooms/{id}"), &p.alice.1).await;
        assert_eq!(seen.status, 200, "{}", seen.text);
        assert_eq!(seen.json["description"], "changed through front end A");

        // A file uploaded through A downloads through B, byte for byte.
        // Text bytes, so that the answer's text is the file exactly.
        let bytes: Vec<u8> = (0..70_000u32).map(|i| b'a' + (i * 7 % 26) as u8).collect();
        let boundary = "roles-test-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"notes.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let auth = format!("Bearer {}", p.alice.1);
        let path = format!("/api/rooms/{id}/files");
        let up = a
            .raw("POST", &path, Some(&auth), Some((&content_type, body)))
            .await;
        assert_eq!(up.status, 201, "{}", up.text);
        let stored = up.json["file"].as_str().expect("stored name").to_string();
        let listed = b.get(&path, &p.bob.1).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        assert!(listed.text.contains(&stored), "{}", listed.text);
        let auth_bob = format!("Bearer {}", p.bob.1);
        let down = b
            .raw("GET", &format!("{path}/{stored}"), Some(&auth_bob), None)
            .await;
        assert_eq!(down.status, 200);
        assert!(down.text.as_bytes() == bytes.as_slice(), "the same bytes");
        for process in [fe_a, fe_b, chat] {
            process.kill().await;
        }
    }
}

#[tokio::test]
async fn with_a_link_secret_only_front_ends_that_prove_it_get_the_token_key() {
    use chatcap_server::protocol::session::{codec, Frame, VERSION};
    use futures_util::{SinkExt, StreamExt};

    let data = Data::new(Backend::Sqlite).await;
    let p = people(&data);
    let chat = data
        .serve(
            "chat",
            &[
                "--role",
                "chat",
                "--listen",
                "127.0.0.1:0",
                "--chat-listen",
                "127.0.0.1:0",
                "--link-secret",
                "pool-secret",
            ],
        )
        .await;
    let link = chat.chat_addr().expect("chat link").to_string();
    let front = |secret: &'static str| {
        [
            "--role",
            "frontend",
            "--listen",
            "127.0.0.1:0",
            "--chat",
            &link,
            "--link-secret",
            secret,
        ]
        .map(str::to_string)
    };
    let good_args = front("pool-secret");
    let good_args: Vec<&str> = good_args.iter().map(String::as_str).collect();
    let good = data.serve("fe-good", &good_args).await;
    let bad_args = front("wrong-secret");
    let bad_args: Vec<&str> = bad_args.iter().map(String::as_str).collect();
    let bad = data.serve("fe-bad", &bad_args).await;

    // The front end that knows the secret serves users.
    let id = closed_room(&good.ws_url(), &p, "secret-links").await;
    let mut alice = signed_in(&good.ws_url(), &p.alice.1).await;
    join(&mut alice, id).await;
    // The one that does not never links, so it holds no token key and signs nobody in.
    let (status, body) = http_get(bad.ready.http, "/healthz").await;
    assert_eq!(status, 503, "{body}");
    let mut c = Client::connect(&bad.ws_url()).await.expect("connect");
    c.timeout = Duration::from_secs(10);
    let refused = c
        .call(Op::SignIn {
            token: p.alice.1.clone(),
        })
        .await
        .expect("a reply");
    assert_eq!(refused.err().map(|e| e.code), Some(ErrorCode::Busy));

    // A peer that merely reaches the port gets a challenge, never the key.
    let stream = tokio::net::TcpStream::connect(chat.chat_addr().expect("link"))
        .await
        .expect("connect");
    let mut framed = tokio_util::codec::Framed::new(stream, codec());
    let hello = Frame::Hello {
        version: VERSION,
        name: "intruder".into(),
    };
    framed.send(hello.to_bytes()).await.expect("hello");
    let first = framed.next().await.expect("a frame").expect("read");
    assert!(matches!(
        Frame::decode(first.freeze()),
        Ok(Frame::Challenge { .. })
    ));
    let proof = Frame::Proof {
        mac: bytes::Bytes::from_static(b"guess"),
    };
    framed.send(proof.to_bytes()).await.expect("proof");
    let after = tokio::time::timeout(Duration::from_secs(10), framed.next())
        .await
        .expect("the link is closed in time");
    assert!(
        !matches!(after, Some(Ok(_))),
        "a wrong proof gets nothing: {after:?}"
    );
    for process in [good, bad, chat] {
        process.kill().await;
    }
}
