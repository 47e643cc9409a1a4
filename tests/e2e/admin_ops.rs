//! Management and administration through the protocol: categories, rooms (create, rename,
//! privacy, disable), roles, and the administrators' operations on content (delete a room,
//! clear history before a date, remove or replace a message).

use chatcap_server::protocol::reply::{Changed, Joined, Rooms};
use chatcap_server::protocol::{
    CategoryPatch, CategorySpec, ErrorCode, Op, Privacy, Push, RoleName, RoomInfo, RoomKind,
    RoomPatch, RoomSpec,
};

use crate::common::{
    backends, category, full_history, join, join_op, ok, ok_as, open_category, post, post_op,
    pushes_so_far, refused, room, set_role, wait_push, Cast, TestServer,
};

fn update_room(room: i64, patch: RoomPatch) -> Op {
    Op::UpdateRoom { room, patch }
}

fn seqs(msgs: &[chatcap_server::protocol::Message]) -> Vec<i64> {
    msgs.iter().map(|m| m.seq).collect()
}

fn closed_push(room: i64, reason: &str) -> Push {
    Push::RoomClosed {
        room,
        reason: reason.into(),
    }
}

#[tokio::test]
async fn categories_are_created_checked_and_updated() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let spec = CategorySpec {
            allow_everyone: false,
            allowed: vec![c.alice],
            creators: vec![c.alice],
            ..open_category("restricted")
        };
        let cat = category(&mut c.a, spec.clone()).await;
        assert_ne!(cat, c.cat);
        assert_eq!(
            refused(&mut c.a, Op::CreateCategory(spec)).await,
            ErrorCode::Conflict
        );
        let blank = Op::CreateCategory(open_category("  "));
        assert_eq!(refused(&mut c.a, blank).await, ErrorCode::InvalidArgument);
        let ghost = Op::CreateCategory(CategorySpec {
            denied: vec![987_654],
            ..open_category("ghosts")
        });
        assert_eq!(refused(&mut c.a, ghost).await, ErrorCode::UserNotFound);

        // alice (an allowed creator) creates a room; bob cannot see it until allowed.
        let mut al = c.srv.client(c.alice).await;
        let r = room(&mut al, cat, "inner", Privacy::Open, RoomKind::Normal).await;
        let mut b = c.srv.client(c.bob).await;
        assert_eq!(refused(&mut b, join_op(r)).await, ErrorCode::RoomNotFound);
        let allow_bob = Op::UpdateCategory {
            category: cat,
            patch: CategoryPatch {
                allowed: Some(vec![c.alice, c.bob]),
                ..Default::default()
            },
        };
        let changed: Changed = ok_as(&mut c.a, allow_bob).await;
        assert_eq!(changed.changed, 1);
        join(&mut b, r).await;

        // Narrowing the allowed list again evicts bob at once.
        let drop_bob = Op::UpdateCategory {
            category: cat,
            patch: CategoryPatch {
                allowed: Some(vec![c.alice]),
                ..Default::default()
            },
        };
        ok(&mut c.a, drop_bob).await;
        let closed = wait_push(&mut b, |p| matches!(p, Push::RoomClosed { .. })).await;
        assert_eq!(closed, closed_push(r, "removed"));
        assert_eq!(refused(&mut b, join_op(r)).await, ErrorCode::RoomNotFound);

        let unknown = Op::UpdateCategory {
            category: 55_555,
            patch: CategoryPatch::default(),
        };
        assert_eq!(
            refused(&mut c.a, unknown).await,
            ErrorCode::CategoryNotFound
        );
        let bad_user = Op::UpdateCategory {
            category: cat,
            patch: CategoryPatch {
                creators: Some(vec![987_654]),
                ..Default::default()
            },
        };
        assert_eq!(refused(&mut c.a, bad_user).await, ErrorCode::UserNotFound);
        c.stop().await;
    }
}

#[tokio::test]
async fn create_room_makes_the_creator_manager_and_checks_names() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let cat = category(
            &mut c.a,
            CategorySpec {
                creators: vec![c.alice],
                ..open_category("team")
            },
        )
        .await;
        let mut al = c.srv.client(c.alice).await;
        let spec = RoomSpec {
            name: "standup".into(),
            category: cat,
            description: "daily".into(),
            kind: RoomKind::Auditorium,
            privacy: Privacy::Secret,
            addin_url: Some("https://addin.example/x".into()),
            invitations: false,
        };
        let r = ok_as::<chatcap_server::protocol::reply::Created>(
            &mut al,
            Op::CreateRoom(spec.clone()),
        )
        .await
        .id;
        let info: RoomInfo = ok_as(&mut al, Op::RoomInfo { room: r }).await;
        assert_eq!(info.roles, vec![RoleName::Member, RoleName::Manager]);
        assert_eq!(
            (
                info.name.as_str(),
                info.description.as_str(),
                info.kind,
                info.privacy,
                info.addin_url.as_deref(),
                info.invitations,
                info.disabled
            ),
            (
                "standup",
                "daily",
                RoomKind::Auditorium,
                Privacy::Secret,
                Some("https://addin.example/x"),
                false,
                false
            )
        );
        // The manager's rights are real: alice grants bob a role in her secret room.
        set_role(&mut al, r, c.bob, RoleName::Member, true).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut b, r).await;

        assert_eq!(
            refused(&mut al, Op::CreateRoom(spec.clone())).await,
            ErrorCode::Conflict
        );
        let blank = RoomSpec {
            name: "".into(),
            ..spec.clone()
        };
        assert_eq!(
            refused(&mut al, Op::CreateRoom(blank)).await,
            ErrorCode::InvalidArgument
        );
        let nowhere = RoomSpec {
            category: 77_777,
            name: "x".into(),
            ..spec
        };
        assert_eq!(
            refused(&mut al, Op::CreateRoom(nowhere)).await,
            ErrorCode::CategoryNotFound
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn update_room_renames_changes_privacy_and_disables() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("old-name", Privacy::Open, &[c.alice]).await;
        c.room("taken", Privacy::Open, &[]).await;
        let mut al = c.srv.client(c.alice).await;
        let mut b = c.srv.client(c.bob).await; // not a member: joins the open room
        join(&mut c.a, r).await;
        join(&mut al, r).await;
        join(&mut b, r).await;

        let rename = RoomPatch {
            name: Some("new-name".into()),
            description: Some("renamed".into()),
            ..Default::default()
        };
        ok(&mut c.a, update_room(r, rename)).await;
        let changed = wait_push(&mut al, |p| matches!(p, Push::RoomChanged(_))).await;
        let Push::RoomChanged(info) = changed else {
            unreachable!()
        };
        assert_eq!(
            (info.id, info.name.as_str(), info.description.as_str()),
            (r, "new-name", "renamed")
        );
        assert_eq!(
            info.roles,
            vec![RoleName::Member],
            "the receiver's own roles"
        );
        let found: Rooms = ok_as(
            &mut b,
            Op::ListRooms {
                query: Some("new-name".into()),
                category: None,
                mine: None,
                limit: None,
            },
        )
        .await;
        assert_eq!(
            found.rooms.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![r]
        );
        let clash = RoomPatch {
            name: Some("taken".into()),
            ..Default::default()
        };
        assert_eq!(
            refused(&mut c.a, update_room(r, clash)).await,
            ErrorCode::Conflict
        );

        // Open → closed: bob, not a member, is removed; alice stays.
        let close = RoomPatch {
            privacy: Some(Privacy::Closed),
            ..Default::default()
        };
        ok(&mut c.a, update_room(r, close)).await;
        let out = wait_push(&mut b, |p| matches!(p, Push::RoomClosed { .. })).await;
        assert_eq!(out, closed_push(r, "removed"));
        assert_eq!(refused(&mut b, join_op(r)).await, ErrorCode::Forbidden);
        let still = wait_push(&mut al, |p| matches!(p, Push::RoomChanged(_))).await;
        assert!(matches!(still, Push::RoomChanged(i) if i.privacy == Privacy::Closed));
        post(&mut c.a, r, "still here", "s1").await;
        let got = wait_push(&mut al, |p| matches!(p, Push::Chat(_))).await;
        assert!(matches!(got, Push::Chat(m) if m.text == "still here"));

        // Disabled: every joined session is closed out and nobody can join.
        let disable = RoomPatch {
            disabled: Some(true),
            ..Default::default()
        };
        ok(&mut c.a, update_room(r, disable)).await;
        for cl in [&mut al, &mut c.a] {
            let p = wait_push(cl, |p| matches!(p, Push::RoomClosed { .. })).await;
            assert_eq!(p, closed_push(r, "disabled"));
        }
        assert_eq!(refused(&mut al, join_op(r)).await, ErrorCode::RoomDisabled);
        assert_eq!(
            refused(&mut al, post_op(r, "x", "x1")).await,
            ErrorCode::NotJoined
        );
        assert_eq!(refused(&mut b, join_op(r)).await, ErrorCode::RoomNotFound);
        let info: RoomInfo = ok_as(&mut al, Op::RoomInfo { room: r }).await;
        assert!(info.disabled);
        let enable = RoomPatch {
            disabled: Some(false),
            ..Default::default()
        };
        ok(&mut c.a, update_room(r, enable)).await;
        let back: Joined = join(&mut al, r).await;
        assert_eq!(seqs(&back.messages), vec![1]);
        c.stop().await;
    }
}

#[tokio::test]
async fn set_role_grants_and_revoke_evicts() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("closed", Privacy::Closed, &[]).await;
        let mut b = c.srv.client(c.bob).await;
        assert_eq!(refused(&mut b, join_op(r)).await, ErrorCode::Forbidden);
        set_role(&mut c.a, r, c.bob, RoleName::Member, true).await;
        set_role(&mut c.a, r, c.bob, RoleName::Member, true).await; // idempotent
        join(&mut b, r).await;
        let info: RoomInfo = ok_as(&mut b, Op::RoomInfo { room: r }).await;
        assert_eq!(info.roles, vec![RoleName::Member]);

        set_role(&mut c.a, r, c.bob, RoleName::Member, false).await;
        let out = wait_push(&mut b, |p| matches!(p, Push::RoomClosed { .. })).await;
        assert_eq!(out, closed_push(r, "removed"));
        assert_eq!(
            refused(&mut b, post_op(r, "x", "x")).await,
            ErrorCode::NotJoined
        );
        assert_eq!(refused(&mut b, join_op(r)).await, ErrorCode::Forbidden);

        let ghost = Op::SetRole {
            room: r,
            user: 987_654,
            role: RoleName::Member,
            grant: true,
        };
        assert_eq!(refused(&mut c.a, ghost).await, ErrorCode::UserNotFound);
        let no_room = Op::SetRole {
            room: 31_337,
            user: c.bob,
            role: RoleName::Member,
            grant: true,
        };
        assert_eq!(refused(&mut c.a, no_room).await, ErrorCode::RoomNotFound);
        c.stop().await;
    }
}

#[tokio::test]
async fn delete_room_closes_it_for_everyone_and_frees_the_name() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("doomed", Privacy::Closed, &[c.bob]).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut b, r).await;
        join(&mut c.a, r).await;
        post(&mut c.a, r, "last words", "d1").await;
        let changed: Changed = ok_as(&mut c.a, Op::DeleteRoom { room: r }).await;
        assert_eq!(changed.changed, 1);
        let out = wait_push(&mut b, |p| matches!(p, Push::RoomClosed { .. })).await;
        assert_eq!(out, closed_push(r, "deleted"));
        assert_eq!(
            refused(&mut b, Op::RoomInfo { room: r }).await,
            ErrorCode::RoomNotFound
        );
        let hist = Op::History {
            room: r,
            after_seq: None,
            limit: None,
        };
        assert_eq!(refused(&mut c.a, hist).await, ErrorCode::RoomNotFound);
        assert_eq!(
            refused(&mut c.a, Op::DeleteRoom { room: r }).await,
            ErrorCode::RoomNotFound
        );
        // The name is free again, and the new room starts its own numbering.
        let again = c.room("doomed", Privacy::Closed, &[]).await;
        assert_ne!(again, r);
        join(&mut c.a, again).await;
        assert_eq!(post(&mut c.a, again, "new", "d2").await.seq, 1);
        c.stop().await;
    }
}

#[tokio::test]
async fn clear_history_deletes_older_messages_and_numbering_continues() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("r", Privacy::Closed, &[c.bob]).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut c.a, r).await;
        join(&mut b, r).await;
        let mut acks = Vec::new();
        for i in 1..=3 {
            acks.push(post(&mut c.a, r, &format!("m{i}"), &format!("c{i}")).await);
        }
        let before = acks[1].posted_at_us;
        let cleared: Changed = ok_as(
            &mut c.a,
            Op::ClearHistory {
                room: r,
                before_us: before,
            },
        )
        .await;
        assert_eq!(cleared.changed, 1);
        let p = wait_push(&mut b, |p| matches!(p, Push::HistoryCleared { .. })).await;
        assert_eq!(
            p,
            Push::HistoryCleared {
                room: r,
                before_us: before
            }
        );
        assert_eq!(seqs(&full_history(&mut b, r).await), vec![2, 3]);
        let mut fresh = c.srv.client(c.bob).await;
        assert_eq!(seqs(&join(&mut fresh, r).await.messages), vec![2, 3]);
        assert_eq!(post(&mut c.a, r, "m4", "c4").await.seq, 4);

        // Clearing everything still never restarts the numbering, even across a restart.
        let all = Op::ClearHistory {
            room: r,
            before_us: chatcap_server::model::now_us() + 1,
        };
        let cleared: Changed = ok_as(&mut c.a, all).await;
        assert_eq!(cleared.changed, 3);
        assert!(full_history(&mut b, r).await.is_empty());
        assert!(join(&mut fresh, r).await.messages.is_empty());
        assert_eq!(post(&mut c.a, r, "m5", "c5").await.seq, 5);
        let all = Op::ClearHistory {
            room: r,
            before_us: chatcap_server::model::now_us() + 1,
        };
        ok(&mut c.a, all).await;
        let Cast { srv, a, admin, .. } = c;
        a.close().await;
        drop((b, fresh));
        let (config, dir) = srv.stop().await;
        let srv = TestServer::restart(config, dir).await;
        let mut a = srv.client(admin).await;
        let j = join(&mut a, r).await;
        assert!(j.messages.is_empty());
        assert_eq!(j.last_seq, 5);
        assert_eq!(post(&mut a, r, "m6", "c6").await.seq, 6);
        srv.stop().await;
    }
}

#[tokio::test]
async fn remove_message_blanks_or_replaces_it_everywhere() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("r", Privacy::Closed, &[c.bob]).await;
        let mut b = c.srv.client(c.bob).await;
        join(&mut c.a, r).await;
        join(&mut b, r).await;
        for i in 1..=3 {
            post(&mut c.a, r, &format!("secret plan {i}"), &format!("r{i}")).await;
        }
        let remove = Op::RemoveMessage {
            room: r,
            seq: 2,
            replacement: None,
        };
        let changed: Changed = ok_as(&mut c.a, remove).await;
        assert_eq!(changed.changed, 1);
        let p = wait_push(&mut b, |p| matches!(p, Push::MessageChanged { .. })).await;
        assert_eq!(
            p,
            Push::MessageChanged {
                room: r,
                seq: 2,
                text: String::new(),
                removed: true
            }
        );
        let replace = Op::RemoveMessage {
            room: r,
            seq: 3,
            replacement: Some("[redacted by admin]".into()),
        };
        ok(&mut c.a, replace).await;
        let p = wait_push(&mut b, |p| matches!(p, Push::MessageChanged { .. })).await;
        assert_eq!(
            p,
            Push::MessageChanged {
                room: r,
                seq: 3,
                text: "[redacted by admin]".into(),
                removed: false
            }
        );
        let view = |m: &[chatcap_server::protocol::Message]| -> Vec<(i64, String, bool)> {
            m.iter()
                .map(|m| (m.seq, m.text.clone(), m.removed))
                .collect()
        };
        let want = vec![
            (1, "secret plan 1".to_string(), false),
            (2, String::new(), true),
            (3, "[redacted by admin]".to_string(), false),
        ];
        assert_eq!(view(&full_history(&mut b, r).await), want);
        let mut fresh = c.srv.client(c.bob).await;
        assert_eq!(view(&join(&mut fresh, r).await.messages), want);
        let found: chatcap_server::protocol::reply::Messages = ok_as(
            &mut b,
            Op::Search {
                text: Some("plan".into()),
                phrase: None,
                author: None,
                from_us: None,
                to_us: None,
                rooms: None,
                limit: None,
            },
        )
        .await;
        assert_eq!(
            seqs(&found.messages),
            vec![1],
            "removed text is not searchable"
        );
        let missing = Op::RemoveMessage {
            room: r,
            seq: 99,
            replacement: None,
        };
        assert_eq!(refused(&mut c.a, missing).await, ErrorCode::MessageNotFound);
        assert!(!pushes_so_far(&mut b)
            .await
            .iter()
            .any(|p| matches!(p, Push::MessageChanged { seq: 99, .. })));
        c.stop().await;
    }
}
