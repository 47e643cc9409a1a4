//! The chat operations through the public protocol: sign-in, ping, join (history sizes,
//! joining during a stream of posts), batch join, part, post (numbering, pushes, retries),
//! history catch-up, and categories that keep no history. Search, participants and the
//! room directory are in `discovery`.

use chatcap_server::protocol::reply::SignedIn;
use chatcap_server::protocol::reply::{BjoinResult, Joined, Messages, Pong};
use chatcap_server::protocol::{ErrorCode, Op, Privacy, Push, RoleName, RoomKind};

use crate::common::{
    backends, category, full_history, join, ok, ok_as, open_category, post, post_burst, post_op,
    pushes_so_far, refused, room, wait_push, Cast, TestServer,
};

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}-{i}")).collect()
}

fn seqs(msgs: &[chatcap_server::protocol::Message]) -> Vec<i64> {
    msgs.iter().map(|m| m.seq).collect()
}

#[tokio::test]
async fn sign_in_reports_the_user_and_ping_the_time() {
    for backend in backends() {
        let c = Cast::new(backend).await;
        let mut b = c.srv.anonymous().await;
        let signed: SignedIn = ok_as(
            &mut b,
            Op::SignIn {
                token: c.srv.token(c.bob),
            },
        )
        .await;
        assert_eq!(
            (signed.user.id, signed.user.name.as_str(), signed.user.admin),
            (c.bob, "bob@t", false)
        );
        let before = chatcap_server::model::now_us();
        let pong: Pong = ok_as(&mut b, Op::Ping).await;
        let after = chatcap_server::model::now_us();
        assert!(
            (before..=after).contains(&pong.server_time_us),
            "server time {} outside [{before}, {after}]",
            pong.server_time_us
        );
        let mut a2 = c.srv.anonymous().await;
        let admin: SignedIn = ok_as(
            &mut a2,
            Op::SignIn {
                token: c.srv.token(c.admin),
            },
        )
        .await;
        assert!(admin.user.admin);
        c.stop().await;
    }
}

#[tokio::test]
async fn join_returns_the_requested_history() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("lobby", Privacy::Closed, &[c.bob]).await;
        join(&mut c.a, r).await;
        let acks = post_burst(&mut c.a, r, &ids("h", 40)).await;
        assert!(acks.iter().all(|a| a.is_ok()), "{acks:?}");
        let mut b = c.srv.client(c.bob).await;

        let default = join(&mut b, r).await;
        assert_eq!(seqs(&default.messages), (11..=40).collect::<Vec<_>>());
        assert_eq!(default.last_seq, 40);
        assert_eq!(default.messages[0].text, "text of h-11");
        assert_eq!(default.room.roles, vec![RoleName::Member]);

        for (n, want) in [(5, 36..=40), (40, 1..=40), (500, 1..=40), (35, 6..=40)] {
            let j: Joined = ok_as(
                &mut b,
                Op::Join {
                    room: r,
                    history: Some(n),
                },
            )
            .await;
            assert_eq!(seqs(&j.messages), want.collect::<Vec<_>>(), "history {n}");
        }
        let none: Joined = ok_as(
            &mut b,
            Op::Join {
                room: r,
                history: Some(0),
            },
        )
        .await;
        assert!(none.messages.is_empty());
        let too_many = Op::Join {
            room: r,
            history: Some(501),
        };
        assert_eq!(refused(&mut b, too_many).await, ErrorCode::InvalidArgument);
        c.stop().await;
    }
}

#[tokio::test]
async fn bjoin_joins_a_list_or_all_my_rooms_and_lists_failures() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r1 = c.room("one", Privacy::Closed, &[c.bob]).await;
        let r2 = c.room("two", Privacy::Secret, &[c.bob]).await;
        let closed = c.room("closed", Privacy::Closed, &[]).await;
        let secret = c.room("secret", Privacy::Secret, &[]).await;
        let open = c.room("open", Privacy::Open, &[]).await;
        join(&mut c.a, r1).await;
        post(&mut c.a, r1, "before", "b1").await;

        let mut b = c.srv.client(c.bob).await;
        let res: BjoinResult = ok_as(
            &mut b,
            Op::Bjoin {
                rooms: Some(vec![r1, closed, 999_999, secret, r2, open]),
                history: Some(10),
            },
        )
        .await;
        let joined: Vec<i64> = res.joined.iter().map(|j| j.room.id).collect();
        assert_eq!(joined, vec![r1, r2, open]);
        assert_eq!(seqs(&res.joined[0].messages), vec![1]);
        let failed: Vec<(i64, ErrorCode)> = res.failed.iter().map(|f| (f.room, f.code)).collect();
        assert_eq!(
            failed,
            vec![
                (closed, ErrorCode::Forbidden),
                (999_999, ErrorCode::RoomNotFound),
                (secret, ErrorCode::RoomNotFound),
            ]
        );
        // Joined for real: the next post is pushed.
        post(&mut c.a, r1, "after", "b2").await;
        let p = wait_push(&mut b, |p| matches!(p, Push::Chat(_))).await;
        assert!(matches!(p, Push::Chat(m) if m.seq == 2 && m.room == r1));

        // "All my rooms": exactly the rooms where bob holds a role; a disabled one fails.
        let r3 = c.room("three", Privacy::Open, &[c.bob]).await;
        ok(
            &mut c.a,
            Op::UpdateRoom {
                room: r3,
                patch: chatcap_server::protocol::RoomPatch {
                    disabled: Some(true),
                    ..Default::default()
                },
            },
        )
        .await;
        let mut b2 = c.srv.client(c.bob).await;
        let all: BjoinResult = ok_as(
            &mut b2,
            Op::Bjoin {
                rooms: None,
                history: None,
            },
        )
        .await;
        let mut joined: Vec<i64> = all.joined.iter().map(|j| j.room.id).collect();
        joined.sort_unstable();
        assert_eq!(joined, vec![r1, r2]);
        let failed: Vec<(i64, ErrorCode)> = all.failed.iter().map(|f| (f.room, f.code)).collect();
        assert_eq!(failed, vec![(r3, ErrorCode::RoomDisabled)]);
        let bad = Op::Bjoin {
            rooms: None,
            history: Some(501),
        };
        assert_eq!(refused(&mut b2, bad).await, ErrorCode::InvalidArgument);
        c.stop().await;
    }
}

#[tokio::test]
async fn part_leaves_and_refuses_rooms_not_joined() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("room", Privacy::Closed, &[c.bob]).await;
        let mut b = c.srv.client(c.bob).await;
        assert_eq!(
            refused(&mut b, Op::Part { room: r }).await,
            ErrorCode::NotJoined
        );
        join(&mut c.a, r).await;
        join(&mut b, r).await;
        ok(&mut b, Op::Part { room: r }).await;
        let gone = wait_push(&mut c.a, |p| {
            matches!(p, Push::Roster { present: false, .. })
        })
        .await;
        assert_eq!(
            gone,
            Push::Roster {
                room: r,
                user: c.bob,
                present: false
            }
        );
        assert_eq!(
            refused(&mut b, Op::Part { room: r }).await,
            ErrorCode::NotJoined
        );
        // Parted: no more pushes, and posting needs a join again.
        post(&mut c.a, r, "after part", "p1").await;
        assert!(pushes_so_far(&mut b).await.is_empty());
        assert_eq!(
            refused(&mut b, post_op(r, "x", "b1")).await,
            ErrorCode::NotJoined
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn posts_are_numbered_per_room_acked_to_the_sender_and_pushed_to_others() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r1 = c.room("r1", Privacy::Closed, &[c.alice, c.bob]).await;
        let r2 = c.room("r2", Privacy::Closed, &[c.alice]).await;
        let mut al = c.srv.client(c.alice).await;
        let mut al2 = c.srv.client(c.alice).await; // alice's second endpoint
        let mut b = c.srv.client(c.bob).await;
        for cl in [&mut al, &mut al2, &mut b] {
            join(cl, r1).await;
        }
        join(&mut al, r2).await;
        for (i, text) in ["one", "two", "three"].iter().enumerate() {
            let ack = post(&mut al, r1, text, &format!("m{i}")).await;
            assert_eq!(
                (ack.room, ack.seq, ack.duplicate),
                (r1, i as i64 + 1, false)
            );
        }
        let ack = post(&mut al, r2, "elsewhere", "n0").await;
        assert_eq!((ack.room, ack.seq), (r2, 1));

        for other in [&mut b, &mut al2] {
            let mut got = Vec::new();
            while got.len() < 3 {
                if let Push::Chat(m) = wait_push(other, |p| matches!(p, Push::Chat(_))).await {
                    got.push((m.room, m.seq, m.text, m.author));
                }
            }
            let want: Vec<(i64, i64, String, i64)> = ["one", "two", "three"]
                .iter()
                .enumerate()
                .map(|(i, t)| (r1, i as i64 + 1, t.to_string(), c.alice))
                .collect();
            assert_eq!(got, want);
        }
        // bob is not in r2, and the sender never gets its own posts as pushes.
        assert!(!pushes_so_far(&mut b)
            .await
            .iter()
            .any(|p| matches!(p, Push::Chat(_))));
        assert!(!pushes_so_far(&mut al)
            .await
            .iter()
            .any(|p| matches!(p, Push::Chat(_))));
        assert_eq!(seqs(&full_history(&mut b, r1).await), vec![1, 2, 3]);
        c.stop().await;
    }
}

#[tokio::test]
async fn a_retried_post_is_stored_once_even_after_a_restart() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("r", Privacy::Closed, &[c.alice, c.bob]).await;
        let mut al = c.srv.client(c.alice).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut al, r).await;
        join(&mut b, r).await;
        let first = post(&mut al, r, "original", "same").await;
        let retry = post(&mut al, r, "changed on retry", "same").await;
        assert_eq!((first.seq, first.duplicate), (1, false));
        assert_eq!((retry.seq, retry.duplicate), (1, true));
        // Pipelined retries, queued before the first one commits, are one message too.
        let burst = post_burst(&mut al, r, &vec!["fast".to_string(); 20]).await;
        let acks: Vec<(i64, bool)> = burst
            .into_iter()
            .map(|a| a.map(|a| (a.seq, a.duplicate)).expect("acked"))
            .collect();
        assert_eq!(acks[0], (2, false));
        assert!(acks[1..].iter().all(|a| *a == (2, true)), "{acks:?}");
        // The same client id from another author is another message.
        let other = post(&mut b, r, "bob's", "same").await;
        assert_eq!((other.seq, other.duplicate), (3, false));

        let chats: Vec<i64> = pushes_so_far(&mut b)
            .await
            .into_iter()
            .filter_map(|p| match p {
                Push::Chat(m) => Some(m.seq),
                _ => None,
            })
            .collect();
        assert_eq!(chats, vec![1, 2]);
        let hist = full_history(&mut b, r).await;
        assert_eq!(seqs(&hist), vec![1, 2, 3]);
        assert_eq!(hist[0].text, "original");

        // Retries are recognised after a restart too (the window is reloaded).
        let Cast { srv, a, .. } = c;
        a.close().await;
        drop((al, b));
        let (config, dir) = srv.stop().await;
        let srv = TestServer::restart(config, dir).await;
        let mut al = srv.client(c.alice).await;
        join(&mut al, r).await;
        let again = post(&mut al, r, "original", "same").await;
        assert_eq!((again.seq, again.duplicate), (1, true));
        let next = post(&mut al, r, "new", "new").await;
        assert_eq!((next.seq, next.duplicate), (4, false));
        assert_eq!(seqs(&full_history(&mut al, r).await), vec![1, 2, 3, 4]);
        srv.stop().await;
    }
}

#[tokio::test]
async fn history_catches_up_by_sequence_number() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("r", Privacy::Closed, &[c.bob]).await;
        join(&mut c.a, r).await;
        post_burst(&mut c.a, r, &ids("c", 10)).await;
        let mut b = c.srv.client(c.bob).await; // a member need not join to read history
        let page = |after, limit| Op::History {
            room: r,
            after_seq: after,
            limit,
        };
        let m: Messages = ok_as(&mut b, page(Some(3), Some(4))).await;
        assert_eq!(seqs(&m.messages), vec![4, 5, 6, 7]);
        assert_eq!(m.messages[0].text, "text of c-4");
        let m: Messages = ok_as(&mut b, page(None, None)).await;
        assert_eq!(seqs(&m.messages), (1..=10).collect::<Vec<_>>());
        let m: Messages = ok_as(&mut b, page(Some(10), None)).await;
        assert!(m.messages.is_empty());
        let m: Messages = ok_as(&mut b, page(Some(0), Some(0))).await;
        assert!(m.messages.is_empty());
        let mut al = c.srv.client(c.alice).await;
        assert_eq!(
            refused(&mut al, page(None, None)).await,
            ErrorCode::Forbidden
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn a_category_without_history_delivers_but_does_not_store() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let spec = chatcap_server::protocol::CategorySpec {
            history: false,
            ..open_category("ephemeral")
        };
        let cat = category(&mut c.a, spec).await;
        let r = room(&mut c.a, cat, "r", Privacy::Open, RoomKind::Normal).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut c.a, r).await;
        join(&mut b, r).await;
        for i in 1..=3 {
            assert_eq!(post(&mut c.a, r, "gone", &format!("e{i}")).await.seq, i);
        }
        let pushed = wait_push(&mut b, |p| matches!(p, Push::Chat(m) if m.seq == 3)).await;
        assert!(matches!(pushed, Push::Chat(m) if m.text == "gone"));
        assert!(full_history(&mut b, r).await.is_empty());

        // Numbering survives a restart although nothing was stored.
        let Cast { srv, a, admin, .. } = c;
        a.close().await;
        drop(b);
        let (config, dir) = srv.stop().await;
        let srv = TestServer::restart(config, dir).await;
        let mut a = srv.client(admin).await;
        join(&mut a, r).await;
        assert_eq!(post(&mut a, r, "later", "e4").await.seq, 4);
        srv.stop().await;
    }
}

#[tokio::test]
async fn a_join_during_a_stream_of_posts_sees_every_message_once() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("busy", Privacy::Open, &[]).await;
        join(&mut c.a, r).await;
        // Posts are numbered and committed while bob joins: each one must reach him
        // exactly once, either in the join's history or as a later push.
        let ids = ids("s", 200);
        for (i, id) in ids.iter().enumerate() {
            let req = chatcap_server::protocol::Request {
                id: 10_000 + i as u64,
                op: post_op(r, id, id),
            };
            c.a.send_text(serde_json::to_string(&req).expect("json"))
                .await
                .expect("send");
        }
        let mut b = c.srv.client(c.bob).await;
        let joined: Joined = ok_as(
            &mut b,
            Op::Join {
                room: r,
                history: Some(500),
            },
        )
        .await;
        let mut seen = seqs(&joined.messages);
        assert!(seen.iter().all(|s| *s <= joined.last_seq));
        let mut acks = 0;
        while acks < ids.len() {
            if let chatcap_server::protocol::reply::ServerMsg::Reply { .. } =
                c.a.recv().await.expect("ack")
            {
                acks += 1;
            }
        }
        while seen.last().copied().unwrap_or(0) < 200 {
            if let Push::Chat(m) = wait_push(&mut b, |p| matches!(p, Push::Chat(_))).await {
                if m.seq <= joined.last_seq {
                    // Only the database path may repeat a message (documented): dedupe.
                    assert!(seen.contains(&m.seq), "push {} below last_seq", m.seq);
                    continue;
                }
                seen.push(m.seq);
            }
        }
        assert_eq!(seen, (1..=200).collect::<Vec<_>>());
        assert!(!pushes_so_far(&mut b)
            .await
            .iter()
            .any(|p| matches!(p, Push::Chat(_))));
        c.stop().await;
    }
}
