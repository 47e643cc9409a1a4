//! Bad input gets its documented error, and never kills anyone else's session, the server,
//! or data: malformed and unknown requests, binary frames, oversized posts and messages,
//! bad tokens, requests out of order, unknown rooms, and floods.

use std::collections::HashSet;

use chatcap::client::Client;
use chatcap_server::protocol::reply::{BjoinResult, ServerMsg};
use chatcap_server::protocol::{ErrorCode, Op, Privacy, Push, RoleName, RoomPatch};

use crate::common::{
    backends, full_history, join, join_op, ok, post, post_burst, post_op, pushes_so_far,
    read_until_closed, refused, wait_push, Cast, TestServer,
};

/// Send raw text and return the first error reply (pushes are skipped).
async fn raw_error(c: &mut Client, text: &str) -> (Option<u64>, ErrorCode) {
    c.send_text(text).await.expect("send");
    loop {
        match c.recv().await.expect("a reply") {
            ServerMsg::Error { id, code, .. } => return (id, code),
            ServerMsg::Push(_) => continue,
            other => panic!("expected an error for {text:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn malformed_unknown_and_incomplete_requests_get_errors_and_the_session_survives() {
    use ErrorCode::{BadRequest, UnknownType};
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("r", Privacy::Open, &[]).await;
        join(&mut c.a, r).await;
        let cases: [(&str, Option<u64>, ErrorCode); 12] = [
            ("{not json", None, BadRequest),
            ("[1,2,3]", None, BadRequest),
            ("", None, BadRequest),
            (r#"{"type":"ping"}"#, None, BadRequest),
            (r#"{"id":"seven","type":"ping"}"#, None, BadRequest),
            (r#"{"id":5,"type":"join"}"#, Some(5), BadRequest),
            (
                r#"{"id":6,"type":"post","room":"abc","text":1}"#,
                Some(6),
                BadRequest,
            ),
            (
                r#"{"id":7,"type":"fly_to_the_moon","room":1}"#,
                Some(7),
                UnknownType,
            ),
            (r#"{"id":8}"#, Some(8), BadRequest),
            // A `type` must be a string: an integer does not pick an operation by its
            // position (3 would be `bjoin`), and the readable id comes back.
            (r#"{"id":62,"type":3}"#, Some(62), BadRequest),
            (r#"{"id":63,"type":null}"#, Some(63), BadRequest),
            (r#"{"id":64,"type":["ping"]}"#, Some(64), BadRequest),
        ];
        for (text, id, code) in cases {
            assert_eq!(raw_error(&mut c.a, text).await, (id, code), "for {text:?}");
        }
        c.a.send_binary(vec![0, 159, 146, 150]).await.expect("send");
        match c.a.recv().await.expect("a reply") {
            ServerMsg::Error { id, code, .. } => assert_eq!((id, code), (None, BadRequest)),
            other => panic!("binary frame answered with {other:?}"),
        }
        // Still signed in, still joined, nothing stored by any of it.
        ok(&mut c.a, Op::Ping).await;
        assert_eq!(post(&mut c.a, r, "fine", "f1").await.seq, 1);
        assert_eq!(full_history(&mut c.a, r).await.len(), 1);
        c.stop().await;
    }
}

#[tokio::test]
async fn sign_in_comes_first_and_only_once() {
    for backend in backends() {
        let c = Cast::new(backend).await;
        let mut anon = c.srv.anonymous().await;
        assert_eq!(refused(&mut anon, Op::Ping).await, ErrorCode::NotSignedIn);
        assert_eq!(refused(&mut anon, join_op(1)).await, ErrorCode::NotSignedIn);
        assert_eq!(
            raw_error(&mut anon, r#"{"id":77,"type":"teleport"}"#).await,
            (Some(77), ErrorCode::UnknownType),
            "before sign-in an unknown type is named as such, as after"
        );
        // Nor does `"type":0` sign in.
        let token = c.srv.token(c.bob);
        let by_position = format!(r#"{{"id":78,"type":0,"token":"{token}"}}"#);
        assert_eq!(
            raw_error(&mut anon, &by_position).await,
            (Some(78), ErrorCode::BadRequest)
        );
        assert_eq!(refused(&mut anon, Op::Ping).await, ErrorCode::NotSignedIn);
        anon.send_binary(vec![1, 2, 3]).await.expect("send");
        assert!(matches!(
            anon.recv().await.expect("reply"),
            ServerMsg::Error {
                id: None,
                code: ErrorCode::BadRequest,
                ..
            }
        ));
        let token = c.srv.token(c.bob);
        ok(&mut anon, Op::SignIn { token }).await;
        let again = Op::SignIn {
            token: "not even a token".into(),
        };
        assert_eq!(refused(&mut anon, again).await, ErrorCode::AlreadySignedIn);
        ok(&mut anon, Op::Ping).await;
        c.stop().await;
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_and_the_connection_closed() {
    for backend in backends() {
        let c = Cast::new(backend).await;
        let good = c.srv.token(c.bob);
        let forged = good.replacen(&format!("v1.{}.", c.bob), &format!("v1.{}.", c.admin), 1);
        assert_ne!(forged, good);
        let foreign = chatcap_server::auth::TokenKey::new(b"another pool".to_vec())
            .issue(c.bob, chatcap_server::auth::unix_now() + 3600);
        let expired = c
            .srv
            .running
            .chat
            .as_ref()
            .expect("a chat server")
            .tokens
            .issue(c.bob, chatcap_server::auth::unix_now() - 1);
        for (token, want) in [
            ("garbage".to_string(), ErrorCode::InvalidToken),
            (String::new(), ErrorCode::InvalidToken),
            (forged, ErrorCode::InvalidToken),
            (foreign, ErrorCode::InvalidToken),
            (expired, ErrorCode::TokenExpired),
        ] {
            let mut cl = c.srv.anonymous().await;
            let got = refused(
                &mut cl,
                Op::SignIn {
                    token: token.clone(),
                },
            )
            .await;
            assert_eq!(got, want, "token {token:?}");
            assert!(read_until_closed(&mut cl).await.is_empty());
        }
        // A well-signed token for a user the server does not know ends the session too.
        let stranger = c.srv.token(424_242);
        let mut cl = c.srv.anonymous().await;
        cl.send_text(
            serde_json::json!({"id": 1, "type": "sign_in", "token": stranger}).to_string(),
        )
        .await
        .expect("send");
        let seen = read_until_closed(&mut cl).await;
        assert!(
            seen.iter().any(|m| matches!(
                m,
                ServerMsg::Error {
                    code: ErrorCode::InvalidToken,
                    ..
                } | ServerMsg::Push(Push::Bye { .. })
            )),
            "{seen:?}"
        );
        assert!(!seen.iter().any(|m| matches!(m, ServerMsg::Reply { .. })));
        // The server carries on.
        let mut b = c.srv.client(c.bob).await;
        ok(&mut b, Op::Ping).await;
        c.stop().await;
    }
}

#[tokio::test]
async fn an_oversized_post_is_refused_and_nothing_is_stored() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("r", Privacy::Open, &[]).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut c.a, r).await;
        join(&mut b, r).await;
        let limit = c.srv.config.chat.max_post_bytes;
        let too_big = "é".repeat(limit / 2) + "x"; // limit + 1 bytes, fewer characters
        assert_eq!(too_big.len(), limit + 1);
        assert_eq!(
            refused(&mut c.a, post_op(r, &too_big, "big")).await,
            ErrorCode::TooLarge
        );
        assert!(full_history(&mut c.a, r).await.is_empty());
        assert!(pushes_so_far(&mut b)
            .await
            .iter()
            .all(|p| !matches!(p, Push::Chat(_))));
        let just_fits = "y".repeat(limit);
        assert_eq!(post(&mut c.a, r, &just_fits, "fits").await.seq, 1);
        let bad_id = "z".repeat(129);
        assert_eq!(
            refused(&mut c.a, post_op(r, "x", &bad_id)).await,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            refused(&mut c.a, post_op(r, "x", "")).await,
            ErrorCode::InvalidArgument
        );
        // A NUL character is refused in any text (PostgreSQL cannot store it): nothing
        // stored, and the session, the room and compliance go on.
        assert_eq!(
            refused(&mut c.a, post_op(r, "nul\u{0}here", "nul")).await,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            refused(&mut c.a, post_op(r, "x", "id-\u{0}")).await,
            ErrorCode::InvalidArgument
        );
        let hist = full_history(&mut c.a, r).await;
        assert_eq!(hist.len(), 1);
        assert_eq!(hist[0].text.len(), limit);
        c.stop().await;
    }
}

#[tokio::test]
async fn a_message_above_one_mib_closes_only_its_own_connection() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("r", Privacy::Open, &[]).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut b, r).await;
        join(&mut c.a, r).await;
        let mut big = c.srv.client(c.alice).await;
        join(&mut big, r).await;
        let huge = "w".repeat(c.srv.config.front.max_message_bytes + 1);
        // The server may close while the frame is still being written.
        let _ = big
            .send_text(serde_json::to_string(&post_op(r, &huge, "huge")).expect("json"))
            .await;
        let seen = read_until_closed(&mut big).await;
        assert!(
            !seen.iter().any(|m| matches!(m, ServerMsg::Reply { .. })),
            "{seen:?}"
        );
        // Everyone else carries on; nothing was stored.
        ok(&mut b, Op::Ping).await;
        assert_eq!(post(&mut c.a, r, "after", "a1").await.seq, 1);
        let p = wait_push(&mut b, |p| matches!(p, Push::Chat(_))).await;
        assert!(matches!(p, Push::Chat(m) if m.text == "after"));
        let mut again = c.srv.client(c.alice).await;
        ok(&mut again, Op::Ping).await;
        assert_eq!(full_history(&mut again, r).await.len(), 1);
        c.stop().await;
    }
}

#[tokio::test]
async fn unknown_rooms_are_not_found_everywhere() {
    use ErrorCode::RoomNotFound;
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let nope = 8_080_808;
        let ops = vec![
            join_op(nope),
            Op::RoomInfo { room: nope },
            Op::Participants { room: nope },
            Op::History {
                room: nope,
                after_seq: None,
                limit: None,
            },
            Op::Search {
                text: Some("x".into()),
                phrase: None,
                author: None,
                from_us: None,
                to_us: None,
                rooms: Some(vec![nope]),
                limit: None,
            },
            Op::UpdateRoom {
                room: nope,
                patch: RoomPatch::default(),
            },
            Op::SetRole {
                room: nope,
                user: c.bob,
                role: RoleName::Member,
                grant: true,
            },
            Op::DeleteRoom { room: nope },
            Op::ClearHistory {
                room: nope,
                before_us: 1,
            },
            Op::RemoveMessage {
                room: nope,
                seq: 1,
                replacement: None,
            },
        ];
        for op in ops {
            let name = op.name();
            assert_eq!(refused(&mut c.a, op).await, RoomNotFound, "{name}");
        }
        let mut b = c.srv.client(c.bob).await;
        assert_eq!(refused(&mut b, join_op(nope)).await, RoomNotFound);
        let res: BjoinResult = crate::common::ok_as(
            &mut b,
            Op::Bjoin {
                rooms: Some(vec![nope]),
                history: None,
            },
        )
        .await;
        assert!(res.joined.is_empty());
        assert_eq!(res.failed[0].code, RoomNotFound);
        // A post to an unknown room says so (not "join first").
        assert_eq!(
            refused(&mut b, post_op(nope, "x", "x")).await,
            ErrorCode::RoomNotFound
        );
        ok(&mut b, Op::Ping).await;
        c.stop().await;
    }
}

#[tokio::test]
async fn a_flood_is_rate_limited_and_nothing_is_lost_or_stored_twice() {
    for backend in backends() {
        let srv = TestServer::start_with(backend, |cfg| {
            cfg.front.rate_burst = 50.0;
            cfg.front.rate_per_sec = 10.0;
        })
        .await;
        let mut c = Cast::with(srv).await;
        let r = c.room("flood", Privacy::Open, &[]).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut b, r).await;
        join(&mut c.a, r).await;
        let ids: Vec<String> = (0..300).map(|i| format!("flood-{i}")).collect();
        let replies = post_burst(&mut c.a, r, &ids).await;

        let mut acked = Vec::new();
        let mut limited = HashSet::new();
        for (id, reply) in ids.iter().zip(&replies) {
            match reply {
                Ok(ack) => acked.push((ack.seq, id.clone())),
                Err(ErrorCode::RateLimited) => {
                    limited.insert(id.clone());
                }
                Err(other) => panic!("{id}: unexpected {other:?}"),
            }
        }
        assert!(!limited.is_empty(), "the flood was not limited");
        assert!(acked.len() >= 40, "only {} posts went through", acked.len());
        // Acked posts are numbered 1..=n in the order sent.
        let want: Vec<i64> = (1..=acked.len() as i64).collect();
        assert_eq!(acked.iter().map(|a| a.0).collect::<Vec<_>>(), want);
        // The connection survives (once the bucket refills).
        ok(&mut b, Op::Ping).await; // bob's own allowance is untouched
        wait_until_allowed(&mut c.a).await;

        // Every acked post is stored exactly once; no refused post is stored.
        let hist = full_history(&mut b, r).await;
        let stored: Vec<(i64, String)> =
            hist.into_iter().map(|m| (m.seq, m.client_msg_id)).collect();
        assert_eq!(stored, acked);
        assert!(stored.iter().all(|(_, id)| !limited.contains(id)));
        // bob saw each acked post exactly once, in order.
        let pushed: Vec<i64> = pushes_so_far(&mut b)
            .await
            .into_iter()
            .filter_map(|p| match p {
                Push::Chat(m) => Some(m.seq),
                _ => None,
            })
            .collect();
        assert_eq!(pushed, want);
        c.stop().await;
    }
}

/// Wait (polling with a deadline) until the client's rate allowance lets a ping through.
async fn wait_until_allowed(c: &mut Client) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match c.call(Op::Ping).await.expect("reply") {
            Ok(_) => return,
            Err(e) if e.code == ErrorCode::RateLimited && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("ping refused: {e:?}"),
        }
    }
}
