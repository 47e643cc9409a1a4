//! Presence: watchers get their contacts' changes; signing in and out changes state; a
//! user created while the server runs can sign in.

use chatcap_server::protocol::reply::PresenceList;
use chatcap_server::protocol::{ErrorCode, Op, PresenceState, Push};

use crate::common::{backends, ok, ok_as, refused, wait_push, Cast};

#[tokio::test]
async fn watchers_see_contacts_change_state() {
    for backend in backends() {
        let c = Cast::new(backend).await;
        let mut alice = c.srv.client(c.alice).await;
        let list: PresenceList = ok_as(
            &mut alice,
            Op::Subscribe {
                users: vec![c.bob, c.admin],
            },
        )
        .await;
        let states: Vec<(i64, PresenceState)> =
            list.presence.iter().map(|e| (e.user, e.state)).collect();
        let mut expected = vec![
            (c.bob, PresenceState::Offline),
            (c.admin, PresenceState::Online),
        ];
        expected.sort_unstable();
        assert_eq!(
            states, expected,
            "the admin's client is signed in, bob is not"
        );

        let mut bob = c.srv.client(c.bob).await;
        let online = wait_push(
            &mut alice,
            |p| matches!(p, Push::Presence { user, .. } if *user == c.bob),
        )
        .await;
        assert_eq!(
            online,
            Push::Presence {
                user: c.bob,
                state: PresenceState::Online
            }
        );

        ok(
            &mut bob,
            Op::SetPresence {
                state: PresenceState::Busy,
            },
        )
        .await;
        let busy = wait_push(&mut alice, |p| {
            matches!(
                p,
                Push::Presence {
                    state: PresenceState::Busy,
                    ..
                }
            )
        })
        .await;
        assert_eq!(
            busy,
            Push::Presence {
                user: c.bob,
                state: PresenceState::Busy
            }
        );

        bob.close().await;
        let gone = wait_push(&mut alice, |p| {
            matches!(
                p,
                Push::Presence {
                    state: PresenceState::Offline,
                    ..
                }
            )
        })
        .await;
        assert_eq!(
            gone,
            Push::Presence {
                user: c.bob,
                state: PresenceState::Offline
            }
        );

        let too_many = Op::Subscribe {
            users: (0..1001).collect(),
        };
        assert_eq!(
            refused(&mut alice, too_many).await,
            ErrorCode::InvalidArgument
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn a_user_created_while_the_server_runs_signs_in() {
    for backend in backends() {
        let c = Cast::new(backend).await;
        // Written to the database only, as `chatcap user add` does beside a running server.
        let late = c
            .srv
            .store
            .create_user("late@t", false)
            .await
            .expect("create user");
        let mut client = c.srv.client(late).await;
        ok(&mut client, Op::Ping).await;
        c.stop().await;
    }
}
