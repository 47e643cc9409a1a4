//! Finding rooms and people and reading across rooms: search (words, phrase, author, dates,
//! only readable rooms), participants and roster pushes, the room directory (`list_rooms`
//! filters) and `room_info`.

use chatcap_server::protocol::reply::{Messages, Participants, Rooms};
use chatcap_server::protocol::{ErrorCode, Op, Privacy, Push, RoleName, RoomInfo, RoomKind};

use crate::common::{
    backends, category, join, ok_as, open_category, post, refused, room, set_role, wait_push, Cast,
};

fn seqs(msgs: &[chatcap_server::protocol::Message]) -> Vec<i64> {
    msgs.iter().map(|m| m.seq).collect()
}

/// The criteria of a `search`, with everything absent by default.
#[derive(Default)]
struct Find {
    text: Option<String>,
    phrase: Option<String>,
    author: Option<i64>,
    from_us: Option<i64>,
    to_us: Option<i64>,
    rooms: Option<Vec<i64>>,
}

impl Find {
    fn op(self) -> Op {
        Op::Search {
            text: self.text,
            phrase: self.phrase,
            author: self.author,
            from_us: self.from_us,
            to_us: self.to_us,
            rooms: self.rooms,
            limit: None,
        }
    }
}

#[tokio::test]
async fn search_finds_words_phrases_authors_and_dates_in_readable_rooms_only() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("r", Privacy::Closed, &[c.alice, c.bob]).await;
        let secret = c.room("s", Privacy::Secret, &[c.alice]).await;
        let mut al = c.srv.client(c.alice).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut al, r).await;
        join(&mut al, secret).await;
        join(&mut b, r).await;
        let a1 = post(&mut al, r, "The Quarterly report is ready", "1").await;
        let a2 = post(&mut b, r, "report draft: quarterly numbers inside", "2").await;
        let a3 = post(&mut al, r, "lunch at noon?", "3").await;
        post(
            &mut al,
            secret,
            "secret quarterly report, do not share",
            "4",
        )
        .await;

        let search = |text: Option<&str>, phrase: Option<&str>| {
            Find {
                text: text.map(String::from),
                phrase: phrase.map(String::from),
                ..Default::default()
            }
            .op()
        };
        let texts =
            |m: Messages| -> Vec<String> { m.messages.into_iter().map(|m| m.text).collect() };

        // Words, any order, case-insensitive; bob never sees the secret room.
        let m: Messages = ok_as(&mut b, search(Some("REPORT quarterly"), None)).await;
        assert_eq!(
            texts(m),
            vec![
                "The Quarterly report is ready",
                "report draft: quarterly numbers inside"
            ]
        );
        let m: Messages = ok_as(&mut al, search(Some("quarterly report"), None)).await;
        assert_eq!(m.messages.len(), 3, "alice reads the secret room too");
        let m: Messages = ok_as(&mut b, search(None, Some("quarterly report"))).await;
        assert_eq!(texts(m), vec!["The Quarterly report is ready"]);
        let m: Messages = ok_as(&mut b, search(None, Some("report quarterly"))).await;
        assert!(m.messages.is_empty());

        let by_bob = Find {
            author: Some(c.bob),
            ..Default::default()
        }
        .op();
        let m: Messages = ok_as(&mut al, by_bob).await;
        assert_eq!(texts(m), vec!["report draft: quarterly numbers inside"]);

        let window = Find {
            from_us: Some(a2.posted_at_us),
            to_us: Some(a3.posted_at_us),
            ..Default::default()
        }
        .op();
        let m: Messages = ok_as(&mut b, window).await;
        assert_eq!(seqs(&m.messages), vec![a2.seq]);
        let since = Find {
            from_us: Some(a1.posted_at_us + 1),
            ..Default::default()
        }
        .op();
        let m: Messages = ok_as(&mut b, since).await;
        assert_eq!(seqs(&m.messages), vec![2, 3]);

        let in_secret = |rooms| {
            Find {
                text: Some("secret".into()),
                rooms: Some(rooms),
                ..Default::default()
            }
            .op()
        };
        assert_eq!(
            refused(&mut b, in_secret(vec![secret])).await,
            ErrorCode::RoomNotFound
        );
        let m: Messages = ok_as(&mut b, search(Some("secret"), None)).await;
        assert!(m.messages.is_empty(), "secret messages leaked: {m:?}");
        let m: Messages = ok_as(&mut al, in_secret(vec![secret])).await;
        assert_eq!(m.messages.len(), 1);
        c.stop().await;
    }
}

#[tokio::test]
async fn participants_and_roster_pushes_follow_joins_and_disconnects() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("r", Privacy::Closed, &[c.alice, c.bob]).await;
        let mut al = c.srv.client(c.alice).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut al, r).await;
        join(&mut b, r).await;
        let arrived = wait_push(&mut al, |p| matches!(p, Push::Roster { .. })).await;
        assert_eq!(
            arrived,
            Push::Roster {
                room: r,
                user: c.bob,
                present: true
            }
        );
        let p: Participants = ok_as(&mut c.a, Op::Participants { room: r }).await;
        let who: Vec<(i64, &str)> = p.users.iter().map(|u| (u.id, u.name.as_str())).collect();
        assert_eq!(who, vec![(c.alice, "alice@t"), (c.bob, "bob@t")]);

        b.close().await;
        let left = wait_push(&mut al, |p| matches!(p, Push::Roster { .. })).await;
        assert_eq!(
            left,
            Push::Roster {
                room: r,
                user: c.bob,
                present: false
            }
        );
        let p: Participants = ok_as(&mut al, Op::Participants { room: r }).await;
        assert_eq!(
            p.users.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![c.alice]
        );

        let carol = c.srv.user("carol@t", false).await;
        let mut cl = c.srv.client(carol).await;
        assert_eq!(
            refused(&mut cl, Op::Participants { room: r }).await,
            ErrorCode::Forbidden
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn list_rooms_filters_and_room_info_show_what_the_user_may_find() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let other = category(&mut c.a, open_category("other")).await;
        let alpha = c.room("Alpha-open", Privacy::Open, &[]).await;
        let beta = c.room("beta-closed", Privacy::Closed, &[]).await;
        let gamma = c.room("gamma-secret", Privacy::Secret, &[]).await;
        let eps = c.room("eps-secret", Privacy::Secret, &[c.bob]).await;
        let delta = room(&mut c.a, other, "delta", Privacy::Closed, RoomKind::Normal).await;
        set_role(&mut c.a, delta, c.bob, RoleName::Member, true).await;
        let mut b = c.srv.client(c.bob).await;

        let list = |query: Option<&str>, category, mine, limit| Op::ListRooms {
            query: query.map(String::from),
            category,
            mine,
            limit,
        };
        let ids = |r: Rooms| -> Vec<i64> { r.rooms.into_iter().map(|r| r.id).collect() };
        let all: Rooms = ok_as(&mut b, list(None, None, None, None)).await;
        assert_eq!(ids(all), vec![alpha, beta, eps, delta]);
        let admin_all: Rooms = ok_as(&mut c.a, list(None, None, None, None)).await;
        assert_eq!(ids(admin_all), vec![alpha, beta, gamma, eps, delta]);
        let q: Rooms = ok_as(&mut b, list(Some("ALPHA"), None, None, None)).await;
        assert_eq!(ids(q), vec![alpha]);
        let q: Rooms = ok_as(&mut b, list(Some("secret"), None, None, None)).await;
        assert_eq!(ids(q), vec![eps]);
        let in_other: Rooms = ok_as(&mut b, list(None, Some(other), None, None)).await;
        assert_eq!(ids(in_other), vec![delta]);
        let mine: Rooms = ok_as(&mut b, list(None, None, Some(true), None)).await;
        assert_eq!(ids(mine), vec![eps, delta]);
        let first: Rooms = ok_as(&mut b, list(None, None, None, Some(1))).await;
        assert_eq!(ids(first), vec![alpha]);

        let info: RoomInfo = ok_as(&mut b, Op::RoomInfo { room: delta }).await;
        assert_eq!(
            (info.name.as_str(), info.category, info.privacy, info.roles),
            ("delta", other, Privacy::Closed, vec![RoleName::Member])
        );
        let info: RoomInfo = ok_as(&mut b, Op::RoomInfo { room: beta }).await;
        assert!(info.roles.is_empty());
        assert_eq!(
            refused(&mut b, Op::RoomInfo { room: gamma }).await,
            ErrorCode::RoomNotFound
        );
        assert_eq!(
            refused(&mut b, Op::RoomInfo { room: 424_242 }).await,
            ErrorCode::RoomNotFound
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn a_user_with_two_endpoints_is_one_participant() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("r", Privacy::Closed, &[c.alice, c.bob]).await;
        let mut al = c.srv.client(c.alice).await;
        let mut b1 = c.srv.client(c.bob).await;
        let mut b2 = c.srv.client(c.bob).await;
        join(&mut al, r).await;
        join(&mut b1, r).await;
        join(&mut b2, r).await;
        let p: Participants = ok_as(&mut al, Op::Participants { room: r }).await;
        assert_eq!(
            p.users.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![c.alice, c.bob]
        );
        // bob's first endpoint leaving is not bob leaving.
        crate::common::ok(&mut b1, Op::Part { room: r }).await;
        let rosters: Vec<Push> = crate::common::pushes_so_far(&mut al)
            .await
            .into_iter()
            .filter(|p| matches!(p, Push::Roster { .. }))
            .collect();
        assert_eq!(
            rosters,
            vec![Push::Roster {
                room: r,
                user: c.bob,
                present: true
            }],
            "one arrival for two endpoints, no departure yet"
        );
        let p: Participants = ok_as(&mut al, Op::Participants { room: r }).await;
        assert_eq!(p.users.len(), 2);
        b2.close().await;
        let left = wait_push(&mut al, |p| matches!(p, Push::Roster { .. })).await;
        assert_eq!(
            left,
            Push::Roster {
                room: r,
                user: c.bob,
                present: false
            }
        );
        let p: Participants = ok_as(&mut al, Op::Participants { room: r }).await;
        assert_eq!(
            p.users.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![c.alice]
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn search_looks_past_a_page_of_unreadable_messages() {
    for backend in backends() {
        let srv = crate::common::TestServer::start_with(backend, |cfg| {
            cfg.front.rate_burst = 5000.0;
        })
        .await;
        let mut c = Cast::with(srv).await;
        let open = c.room("open", Privacy::Open, &[]).await;
        let secret = c.room("secret", Privacy::Secret, &[]).await;
        join(&mut c.a, open).await;
        join(&mut c.a, secret).await;
        post(&mut c.a, open, "needle in the open", "n1").await;
        // More hidden matches than one scan page holds, all newer than the readable one.
        let ids: Vec<String> = (0..700).map(|i| format!("needle-{i}")).collect();
        let acks = crate::common::post_burst(&mut c.a, secret, &ids).await;
        assert!(acks.iter().all(|a| a.is_ok()));
        let mut b = c.srv.client(c.bob).await;
        let found: Messages = ok_as(
            &mut b,
            Find {
                text: Some("needle".into()),
                ..Default::default()
            }
            .op(),
        )
        .await;
        let got: Vec<(i64, i64)> = found.messages.iter().map(|m| (m.room, m.seq)).collect();
        assert_eq!(got, vec![(open, 1)]);
        let all: Messages = ok_as(
            &mut c.a,
            Op::Search {
                text: Some("needle".into()),
                phrase: None,
                author: None,
                from_us: None,
                to_us: None,
                rooms: None,
                limit: Some(500),
            },
        )
        .await;
        assert_eq!(all.messages.len(), 500);
        assert!(all.messages.iter().all(|m| m.room == secret));
        assert_eq!(all.messages.last().map(|m| m.seq), Some(700), "newest last");
        c.stop().await;
    }
}
