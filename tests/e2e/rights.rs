//! Every right of DESIGN.md through the protocol: open/closed/secret rooms for members and
//! others, disabled rooms, auditoriums, ethical walls, category allowed lists and creators,
//! managers, and the administrators' exclusive operations.

use chatcap_server::protocol::reply::Rooms;
use chatcap_server::protocol::{
    CategoryPatch, CategorySpec, ErrorCode, Op, Privacy, Push, RoleName, RoomInfo, RoomKind,
    RoomPatch, RoomSpec,
};

use crate::common::{
    backends, category, join, join_op, ok, ok_as, open_category, post, refused, room, set_role,
    wait_push, Cast,
};

/// The room ids `list_rooms` shows the client.
async fn listed(c: &mut chatcap::client::Client) -> Vec<i64> {
    let r: Rooms = ok_as(
        c,
        Op::ListRooms {
            query: None,
            category: None,
            mine: None,
            limit: None,
        },
    )
    .await;
    r.rooms.into_iter().map(|r| r.id).collect()
}

/// What a user gets from find (room_info) and join: Ok(()) or the error code.
async fn find_and_join(
    c: &mut chatcap::client::Client,
    room: i64,
) -> (Result<(), ErrorCode>, Result<(), ErrorCode>) {
    let find = match c.call(Op::RoomInfo { room }).await.expect("reply") {
        Ok(_) => Ok(()),
        Err(r) => Err(r.code),
    };
    let join = match c.call(join_op(room)).await.expect("reply") {
        Ok(_) => Ok(()),
        Err(r) => Err(r.code),
    };
    (find, join)
}

#[tokio::test]
async fn privacy_decides_who_finds_and_joins() {
    use ErrorCode::{Forbidden, RoomNotFound};
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let mut rooms = Vec::new();
        for privacy in [Privacy::Open, Privacy::Closed, Privacy::Secret] {
            rooms.push(c.room(&format!("{privacy:?}"), privacy, &[c.alice]).await);
        }
        let mut member = c.srv.client(c.alice).await;
        let mut outsider = c.srv.client(c.bob).await;
        // (room, member's find/join, outsider's find/join)
        let table = [
            (rooms[0], (Ok(()), Ok(())), (Ok(()), Ok(()))),
            (rooms[1], (Ok(()), Ok(())), (Ok(()), Err(Forbidden))),
            (
                rooms[2],
                (Ok(()), Ok(())),
                (Err(RoomNotFound), Err(RoomNotFound)),
            ),
        ];
        for (room, want_member, want_outsider) in table {
            assert_eq!(
                find_and_join(&mut member, room).await,
                want_member,
                "member, room {room}"
            );
            assert_eq!(
                find_and_join(&mut outsider, room).await,
                want_outsider,
                "outsider, room {room}"
            );
        }
        assert_eq!(listed(&mut member).await, rooms);
        assert_eq!(listed(&mut outsider).await, rooms[..2].to_vec());
        // Every read of a secret room is "not found" to an outsider, never "forbidden".
        let secret = rooms[2];
        for op in [
            Op::History {
                room: secret,
                after_seq: None,
                limit: None,
            },
            Op::Participants { room: secret },
            Op::UpdateRoom {
                room: secret,
                patch: RoomPatch::default(),
            },
            Op::SetRole {
                room: secret,
                user: c.bob,
                role: RoleName::Member,
                grant: true,
            },
        ] {
            let name = op.name();
            assert_eq!(refused(&mut outsider, op).await, RoomNotFound, "{name}");
        }
        c.stop().await;
    }
}

#[tokio::test]
async fn disabled_rooms_are_hidden_from_outsiders_and_closed_to_members() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("off", Privacy::Open, &[c.alice]).await;
        let off = RoomPatch {
            disabled: Some(true),
            ..Default::default()
        };
        ok(
            &mut c.a,
            Op::UpdateRoom {
                room: r,
                patch: off,
            },
        )
        .await;
        let mut member = c.srv.client(c.alice).await;
        let mut outsider = c.srv.client(c.bob).await;
        assert_eq!(
            find_and_join(&mut member, r).await,
            (Ok(()), Err(ErrorCode::RoomDisabled))
        );
        assert_eq!(
            find_and_join(&mut outsider, r).await,
            (Err(ErrorCode::RoomNotFound), Err(ErrorCode::RoomNotFound))
        );
        assert_eq!(listed(&mut member).await, vec![r]);
        assert!(listed(&mut outsider).await.is_empty());
        assert_eq!(
            refused(&mut c.a, join_op(r)).await,
            ErrorCode::RoomDisabled,
            "administrators cannot join a disabled room either"
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn only_presenters_post_in_an_auditorium() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = room(&mut c.a, c.cat, "hall", Privacy::Open, RoomKind::Auditorium).await;
        set_role(&mut c.a, r, c.alice, RoleName::Presenter, true).await;
        set_role(&mut c.a, r, c.bob, RoleName::Member, true).await;
        let mut presenter = c.srv.client(c.alice).await;
        let mut member = c.srv.client(c.bob).await;
        let carol = c.srv.user("carol@t", false).await;
        let mut listener = c.srv.client(carol).await; // not even a member: open room
        for cl in [&mut presenter, &mut member, &mut listener] {
            join(cl, r).await;
        }
        assert_eq!(post(&mut presenter, r, "welcome", "p1").await.seq, 1);
        for (cl, id) in [(&mut member, "m1"), (&mut listener, "l1")] {
            let op = crate::common::post_op(r, "may I?", id);
            assert_eq!(refused(cl, op).await, ErrorCode::Forbidden);
        }
        join(&mut c.a, r).await;
        assert_eq!(post(&mut c.a, r, "admin speaks", "a1").await.seq, 2);
        // Everyone reads; the refused posts took no number.
        for cl in [&mut member, &mut listener] {
            let p = wait_push(cl, |p| matches!(p, Push::Chat(m) if m.seq == 2)).await;
            assert!(matches!(p, Push::Chat(m) if m.text == "admin speaks"));
        }
        assert_eq!(crate::common::full_history(&mut listener, r).await.len(), 2);
        c.stop().await;
    }
}

#[tokio::test]
async fn the_ethical_wall_beats_room_membership() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let carol = c.srv.user("carol@t", false).await;
        let walled = category(
            &mut c.a,
            CategorySpec {
                denied: vec![carol],
                ..open_category("walled")
            },
        )
        .await;
        let r = room(&mut c.a, walled, "deal", Privacy::Open, RoomKind::Normal).await;
        set_role(&mut c.a, r, carol, RoleName::Member, true).await;
        let mut cl = c.srv.client(carol).await;
        assert_eq!(
            find_and_join(&mut cl, r).await,
            (Err(ErrorCode::RoomNotFound), Err(ErrorCode::RoomNotFound))
        );
        assert!(listed(&mut cl).await.is_empty());

        // A wall added later evicts members already in the room, and keeps them out.
        let r2 = c.room("open-talk", Privacy::Open, &[c.bob]).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut b, r2).await;
        join(&mut c.a, r2).await;
        let wall = Op::UpdateCategory {
            category: c.cat,
            patch: CategoryPatch {
                denied: Some(vec![c.bob]),
                ..Default::default()
            },
        };
        ok(&mut c.a, wall).await;
        let out = wait_push(&mut b, |p| matches!(p, Push::RoomClosed { .. })).await;
        assert_eq!(
            out,
            Push::RoomClosed {
                room: r2,
                reason: "removed".into()
            }
        );
        assert_eq!(
            find_and_join(&mut b, r2).await,
            (Err(ErrorCode::RoomNotFound), Err(ErrorCode::RoomNotFound))
        );
        // The administrator, not behind the wall, stays and reads.
        post(&mut c.a, r2, "after the wall", "w1").await;
        let search: chatcap_server::protocol::reply::Messages = ok_as(
            &mut b,
            Op::Search {
                text: Some("wall".into()),
                phrase: None,
                author: None,
                from_us: None,
                to_us: None,
                rooms: None,
                limit: None,
            },
        )
        .await;
        assert!(search.messages.is_empty(), "the wall hides search results");
        // A wall naming an administrator binds them too.
        let wall_admin = Op::UpdateCategory {
            category: walled,
            patch: CategoryPatch {
                denied: Some(vec![carol, c.admin]),
                ..Default::default()
            },
        };
        ok(&mut c.a, wall_admin).await;
        assert_eq!(refused(&mut c.a, join_op(r)).await, ErrorCode::RoomNotFound);
        c.stop().await;
    }
}

#[tokio::test]
async fn a_category_that_does_not_allow_everyone_admits_only_its_list() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let cat = category(
            &mut c.a,
            CategorySpec {
                allow_everyone: false,
                allowed: vec![c.alice],
                ..open_category("board")
            },
        )
        .await;
        let open = room(&mut c.a, cat, "board-open", Privacy::Open, RoomKind::Normal).await;
        let closed = room(
            &mut c.a,
            cat,
            "board-closed",
            Privacy::Closed,
            RoomKind::Normal,
        )
        .await;
        set_role(&mut c.a, closed, c.bob, RoleName::Member, true).await;
        let mut allowed = c.srv.client(c.alice).await;
        let mut other = c.srv.client(c.bob).await;
        assert_eq!(find_and_join(&mut allowed, open).await, (Ok(()), Ok(())));
        assert_eq!(
            find_and_join(&mut allowed, closed).await,
            (Ok(()), Err(ErrorCode::Forbidden))
        );
        for r in [open, closed] {
            assert_eq!(
                find_and_join(&mut other, r).await,
                (Err(ErrorCode::RoomNotFound), Err(ErrorCode::RoomNotFound)),
                "room {r}: bob is not allowed, even as a member"
            );
        }
        assert!(listed(&mut other).await.is_empty());
        c.stop().await;
    }
}

#[tokio::test]
async fn only_creators_create_rooms() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let cat = category(
            &mut c.a,
            CategorySpec {
                creators: vec![c.alice, c.bob],
                denied: vec![c.bob],
                ..open_category("makers")
            },
        )
        .await;
        let spec = |name: &str| {
            Op::CreateRoom(RoomSpec {
                name: name.into(),
                category: cat,
                invitations: true,
                ..Default::default()
            })
        };
        let mut al = c.srv.client(c.alice).await;
        let mut b = c.srv.client(c.bob).await;
        let carol = c.srv.user("carol@t", false).await;
        let mut cl = c.srv.client(carol).await;
        ok(&mut al, spec("by-alice")).await;
        ok(&mut c.a, spec("by-admin")).await;
        assert_eq!(
            refused(&mut cl, spec("by-carol")).await,
            ErrorCode::Forbidden
        );
        assert_eq!(
            refused(&mut b, spec("by-bob")).await,
            ErrorCode::Forbidden,
            "a creator behind the wall may not create"
        );
        // Not a creator in the general category either.
        let general = Op::CreateRoom(RoomSpec {
            name: "x".into(),
            category: c.cat,
            invitations: true,
            ..Default::default()
        });
        assert_eq!(refused(&mut al, general).await, ErrorCode::Forbidden);
        c.stop().await;
    }
}

#[tokio::test]
async fn managers_manage_and_members_do_not() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("managed", Privacy::Closed, &[c.bob]).await;
        set_role(&mut c.a, r, c.alice, RoleName::Manager, true).await;
        let carol = c.srv.user("carol@t", false).await;
        let mut manager = c.srv.client(c.alice).await;
        let mut member = c.srv.client(c.bob).await;
        let describe = |d: &str| Op::UpdateRoom {
            room: r,
            patch: RoomPatch {
                description: Some(d.into()),
                ..Default::default()
            },
        };
        let grant_carol = |grant| Op::SetRole {
            room: r,
            user: carol,
            role: RoleName::Member,
            grant,
        };
        ok(&mut manager, describe("by the manager")).await;
        ok(&mut manager, grant_carol(true)).await;
        assert_eq!(
            refused(&mut member, describe("by a member")).await,
            ErrorCode::Forbidden
        );
        assert_eq!(
            refused(&mut member, grant_carol(false)).await,
            ErrorCode::Forbidden
        );
        let info: RoomInfo = ok_as(&mut member, Op::RoomInfo { room: r }).await;
        assert_eq!(info.description, "by the manager");
        let mut cl = c.srv.client(carol).await;
        join(&mut cl, r).await; // the manager's grant took effect
                                // A manager may hand management on.
        let promote = Op::SetRole {
            room: r,
            user: c.bob,
            role: RoleName::Manager,
            grant: true,
        };
        ok(&mut manager, promote).await;
        ok(&mut member, describe("by bob, now a manager")).await;
        c.stop().await;
    }
}

#[tokio::test]
async fn administrator_operations_are_forbidden_to_everyone_else() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("mine", Privacy::Closed, &[c.alice]).await;
        set_role(&mut c.a, r, c.alice, RoleName::Manager, true).await;
        let mut al = c.srv.client(c.alice).await; // a manager, but not an administrator
        join(&mut al, r).await;
        post(&mut al, r, "keep me", "k1").await;
        for room in [r, 999_999] {
            let ops = [
                Op::DeleteRoom { room },
                Op::ClearHistory {
                    room,
                    before_us: i64::MAX,
                },
                Op::RemoveMessage {
                    room,
                    seq: 1,
                    replacement: None,
                },
                Op::CreateCategory(open_category("mine")),
                Op::UpdateCategory {
                    category: c.cat,
                    patch: CategoryPatch {
                        creators: Some(vec![c.alice]),
                        ..Default::default()
                    },
                },
            ];
            for op in ops {
                let name = op.name();
                assert_eq!(refused(&mut al, op).await, ErrorCode::Forbidden, "{name}");
            }
        }
        // Nothing happened.
        let hist = crate::common::full_history(&mut al, r).await;
        assert_eq!(
            hist.iter()
                .map(|m| (m.seq, m.text.as_str(), m.removed))
                .collect::<Vec<_>>(),
            vec![(1, "keep me", false)]
        );
        let info: RoomInfo = ok_as(&mut al, Op::RoomInfo { room: r }).await;
        assert_eq!(info.id, r);
        c.stop().await;
    }
}
