//! Invitations, followed rooms with unread counts, and the ParticipantUpdateLimit on
//! roster pushes.

use chatcap_server::protocol::reply::{Changed, Followed, FollowedRoom, Invitations};
use chatcap_server::protocol::{ErrorCode, Op, Privacy, Push, RoleName, RoomKind, RoomSpec};

use crate::common::{
    backends, category, join, ok, ok_as, open_category, post, pushes_so_far, refused, set_role,
    wait_push, Cast, TestServer,
};

async fn invitations(c: &mut chatcap::client::Client) -> Vec<(i64, String, i64)> {
    let list: Invitations = ok_as(c, Op::Invitations).await;
    list.invitations
        .into_iter()
        .map(|i| (i.room, i.name, i.inviter))
        .collect()
}

async fn followed(c: &mut chatcap::client::Client) -> Vec<FollowedRoom> {
    ok_as::<Followed>(c, Op::Followed).await.followed
}

/// (room, last_seq, last_read_seq, unread) of each followed room.
fn counts(rooms: &[FollowedRoom]) -> Vec<(i64, i64, i64, i64)> {
    rooms
        .iter()
        .map(|f| (f.room, f.last_seq, f.last_read_seq, f.unread))
        .collect()
}

fn invitation_pushes(pushes: &[Push]) -> Vec<&Push> {
    pushes
        .iter()
        .filter(|p| matches!(p, Push::Invitation(_)))
        .collect()
}

#[tokio::test]
async fn a_new_member_is_invited_and_fetches_it_after_signing_in() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("inv", Privacy::Closed, &[]).await;

        // Alice is offline when she is added: she finds the invitation after signing in.
        set_role(&mut c.a, r, c.alice, RoleName::Member, true).await;
        let mut alice = c.srv.client(c.alice).await;
        assert_eq!(
            invitations(&mut alice).await,
            vec![(r, "inv".to_string(), c.admin)]
        );

        // Bob is online: the invitation is pushed to him as well as kept.
        let mut bob = c.srv.client(c.bob).await;
        set_role(&mut c.a, r, c.bob, RoleName::Member, true).await;
        let pushed = wait_push(&mut bob, |p| matches!(p, Push::Invitation(_))).await;
        let Push::Invitation(inv) = pushed else {
            unreachable!()
        };
        assert_eq!(
            (inv.room, inv.name.as_str(), inv.inviter),
            (r, "inv", c.admin)
        );
        assert_eq!(
            invitations(&mut bob).await,
            vec![(r, "inv".to_string(), c.admin)]
        );

        // Granting member again (and other roles) leaves no second invitation.
        let before: Invitations = ok_as(&mut alice, Op::Invitations).await;
        set_role(&mut c.a, r, c.alice, RoleName::Member, true).await;
        set_role(&mut c.a, r, c.alice, RoleName::Presenter, true).await;
        let after: Invitations = ok_as(&mut alice, Op::Invitations).await;
        assert_eq!(after, before, "one invitation, the first one");
        assert!(invitation_pushes(&pushes_so_far(&mut alice).await).is_empty());

        // Dismissing clears it; joining clears it.
        let gone: Changed = ok_as(&mut alice, Op::DismissInvitation { room: r }).await;
        assert_eq!(gone.changed, 1);
        assert!(invitations(&mut alice).await.is_empty());
        join(&mut bob, r).await;
        assert!(invitations(&mut bob).await.is_empty());

        // A manager adding themselves as member invites nobody.
        let other = c.room("other", Privacy::Closed, &[]).await;
        set_role(&mut c.a, other, c.bob, RoleName::Manager, true).await;
        set_role(&mut bob, other, c.bob, RoleName::Member, true).await;
        assert!(invitations(&mut bob).await.is_empty());
        assert!(invitation_pushes(&pushes_so_far(&mut bob).await).is_empty());
        c.stop().await;
    }
}

#[tokio::test]
async fn no_invitation_where_they_are_off_or_the_room_is_out_of_reach() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let mut alice = c.srv.client(c.alice).await;

        // The room's switch is off.
        let off = ok_as::<chatcap_server::protocol::reply::Created>(
            &mut c.a,
            Op::CreateRoom(RoomSpec {
                name: "room-off".into(),
                category: c.cat,
                invitations: false,
                ..Default::default()
            }),
        )
        .await
        .id;
        set_role(&mut c.a, off, c.alice, RoleName::Member, true).await;

        // The room inherits, but its category's switch is off.
        let mut quiet = open_category("quiet");
        quiet.invitations = false;
        let quiet = category(&mut c.a, quiet).await;
        let inherits = crate::common::room(
            &mut c.a,
            quiet,
            "inherits",
            Privacy::Closed,
            RoomKind::Normal,
        )
        .await;
        set_role(&mut c.a, inherits, c.alice, RoleName::Member, true).await;

        // Invitations on, but Alice is behind the category's ethical wall.
        let mut walled = open_category("walled");
        walled.denied = vec![c.alice];
        let walled = category(&mut c.a, walled).await;
        let behind =
            crate::common::room(&mut c.a, walled, "behind", Privacy::Open, RoomKind::Normal).await;
        set_role(&mut c.a, behind, c.alice, RoleName::Member, true).await;

        assert!(invitations(&mut alice).await.is_empty());
        assert!(invitation_pushes(&pushes_so_far(&mut alice).await).is_empty());

        // An invitation to a room Alice may no longer read is not listed; deleting the
        // room removes it for good.
        let r = c.room("revoked", Privacy::Closed, &[c.alice]).await;
        assert_eq!(invitations(&mut alice).await.len(), 1);
        set_role(&mut c.a, r, c.alice, RoleName::Member, false).await;
        assert!(invitations(&mut alice).await.is_empty());
        let deleted = c.room("deleted", Privacy::Closed, &[c.alice]).await;
        assert_eq!(invitations(&mut alice).await.len(), 1);
        ok(&mut c.a, Op::DeleteRoom { room: deleted }).await;
        assert!(invitations(&mut alice).await.is_empty());
        c.stop().await;
    }
}

#[tokio::test]
async fn followed_rooms_count_unread_messages_without_joining() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("news", Privacy::Closed, &[c.alice, c.bob]).await;
        let mut bob = c.srv.client(c.bob).await;
        join(&mut bob, r).await;
        post(&mut bob, r, "one", "n1").await;
        post(&mut bob, r, "two", "n2").await;

        // A new follow starts with everything so far read.
        let mut alice = c.srv.client(c.alice).await;
        let f: FollowedRoom = ok_as(&mut alice, Op::Follow { room: r }).await;
        assert_eq!((f.room, f.name.as_str()), (r, "news"));
        assert_eq!(counts(&[f]), vec![(r, 2, 2, 0)]);

        for i in 3..=5 {
            post(&mut bob, r, "more", &format!("n{i}")).await;
        }
        assert_eq!(counts(&followed(&mut alice).await), vec![(r, 5, 2, 3)]);

        let read: FollowedRoom = ok_as(&mut alice, Op::MarkRead { room: r, seq: 4 }).await;
        assert_eq!(counts(&[read]), vec![(r, 5, 4, 1)]);
        let back: FollowedRoom = ok_as(&mut alice, Op::MarkRead { room: r, seq: 1 }).await;
        assert_eq!(counts(&[back]), vec![(r, 5, 4, 1)], "never moves back");
        let far: FollowedRoom = ok_as(&mut alice, Op::MarkRead { room: r, seq: 99 }).await;
        assert_eq!(
            counts(&[far]),
            vec![(r, 5, 5, 0)],
            "clamped to the last seq"
        );
        post(&mut bob, r, "six", "n6").await;
        let again: FollowedRoom = ok_as(&mut alice, Op::Follow { room: r }).await;
        assert_eq!(
            counts(&[again]),
            vec![(r, 6, 5, 1)],
            "following again keeps the mark"
        );

        let gone: Changed = ok_as(&mut alice, Op::Unfollow { room: r }).await;
        assert_eq!(gone.changed, 1);
        assert!(followed(&mut alice).await.is_empty());
        assert_eq!(
            refused(&mut alice, Op::MarkRead { room: r, seq: 6 }).await,
            ErrorCode::InvalidArgument,
            "only followed rooms have a read mark"
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn only_readable_rooms_are_followed() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let secret = c.room("hidden", Privacy::Secret, &[c.bob]).await;
        let closed = c.room("closed", Privacy::Closed, &[c.bob]).await;
        let mine = c.room("mine", Privacy::Closed, &[c.alice]).await;
        let mut alice = c.srv.client(c.alice).await;

        // A secret room looks exactly like a room that does not exist.
        let unknown = refused(&mut alice, Op::Follow { room: 987_654 }).await;
        assert_eq!(unknown, ErrorCode::RoomNotFound);
        assert_eq!(
            refused(&mut alice, Op::Follow { room: secret }).await,
            unknown
        );
        assert_eq!(
            refused(
                &mut alice,
                Op::MarkRead {
                    room: secret,
                    seq: 1
                }
            )
            .await,
            unknown
        );
        assert_eq!(
            refused(&mut alice, Op::Follow { room: closed }).await,
            ErrorCode::Forbidden
        );

        // Losing the right hides a followed room; getting it back shows it again.
        ok(&mut alice, Op::Follow { room: mine }).await;
        assert_eq!(counts(&followed(&mut alice).await), vec![(mine, 0, 0, 0)]);
        set_role(&mut c.a, mine, c.alice, RoleName::Member, false).await;
        assert!(followed(&mut alice).await.is_empty());
        set_role(&mut c.a, mine, c.alice, RoleName::Member, true).await;
        assert_eq!(followed(&mut alice).await.len(), 1);
        c.stop().await;
    }
}

#[tokio::test]
async fn follows_and_invitations_survive_a_restart() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let r = c.room("kept", Privacy::Open, &[]).await;
        let invited = c.room("invited", Privacy::Closed, &[c.bob]).await;
        let mut alice = c.srv.client(c.alice).await;
        ok(&mut alice, Op::Follow { room: r }).await;
        join(&mut c.a, r).await;
        for i in 1..=3 {
            post(&mut c.a, r, "before", &format!("b{i}")).await;
        }
        ok(&mut alice, Op::MarkRead { room: r, seq: 1 }).await;

        let Cast {
            srv,
            a,
            admin,
            alice: alice_id,
            bob: bob_id,
            ..
        } = c;
        a.close().await;
        alice.close().await;
        let (config, dir) = srv.stop().await;
        let srv = TestServer::restart(config, dir).await;

        // The room is not loaded yet: the count comes from the database.
        let mut alice = srv.client(alice_id).await;
        assert_eq!(counts(&followed(&mut alice).await), vec![(r, 3, 1, 2)]);
        let mut a = srv.client(admin).await;
        join(&mut a, r).await;
        post(&mut a, r, "after", "a1").await;
        assert_eq!(counts(&followed(&mut alice).await), vec![(r, 4, 1, 3)]);
        let mut bob = srv.client(bob_id).await;
        assert_eq!(
            invitations(&mut bob).await,
            vec![(invited, "invited".to_string(), admin)]
        );
        a.close().await;
        srv.stop().await;
    }
}

#[tokio::test]
async fn roster_changes_are_pushed_only_up_to_the_participant_update_limit() {
    for backend in backends() {
        let srv = TestServer::start_with(backend, |cfg| {
            cfg.chat.participant_update_limit = 2;
        })
        .await;
        let mut c = Cast::with(srv).await;
        let r = c.room("busy", Privacy::Open, &[]).await;
        let mut alice = c.srv.client(c.alice).await;
        let mut bob = c.srv.client(c.bob).await;
        let roster = |pushes: Vec<Push>| -> Vec<Push> {
            pushes
                .into_iter()
                .filter(|p| matches!(p, Push::Roster { .. }))
                .collect()
        };

        // Two participants: at the limit, Bob's arrival is pushed.
        join(&mut alice, r).await;
        join(&mut bob, r).await;
        let p = wait_push(&mut alice, |p| matches!(p, Push::Roster { .. })).await;
        assert_eq!(
            p,
            Push::Roster {
                room: r,
                user: c.bob,
                present: true
            }
        );

        // A third is above the limit: neither arrival nor departure is pushed.
        join(&mut c.a, r).await;
        ok(&mut c.a, Op::Part { room: r }).await;
        assert_eq!(roster(pushes_so_far(&mut alice).await), vec![]);
        assert_eq!(roster(pushes_so_far(&mut bob).await), vec![]);

        // Back at two, Bob's departure is pushed again.
        ok(&mut bob, Op::Part { room: r }).await;
        let p = wait_push(&mut alice, |p| matches!(p, Push::Roster { .. })).await;
        assert_eq!(
            p,
            Push::Roster {
                room: r,
                user: c.bob,
                present: false
            }
        );
        c.stop().await;
    }
}
