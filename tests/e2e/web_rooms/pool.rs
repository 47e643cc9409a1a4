//! The protocol operations the web service adds (`room_roles`, `list_categories`,
//! `find_users`) over a WebSocket, and one chat server with two front ends: room changes
//! made through one front end are seen through the other, over HTTP and as pushes.

use std::net::SocketAddr;
use std::time::Duration;

use chatcap_server::config::{Role, ServeConfig};
use chatcap_server::protocol::reply::{Categories, RoomRoles, Users};
use chatcap_server::protocol::{ErrorCode, Op, Push, RoleName};
use serde_json::json;

use super::{expect, ids, names, Http};
use crate::common::{backends, fresh_pg_database, join, ok_as, wait_push, Backend, Cast};

#[tokio::test]
async fn directory_ops_answer_over_the_chat_protocol() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let secret = c
            .room(
                "hidden",
                chatcap_server::protocol::Privacy::Secret,
                &[c.alice],
            )
            .await;
        let mut alice = c.srv.client(c.alice).await;
        let mut bob = c.srv.client(c.bob).await;
        let roles: RoomRoles = ok_as(&mut alice, Op::RoomRoles { room: secret }).await;
        // The creator (the administrator) is manager and member.
        assert_eq!(names(&roles.members), vec!["admin@t", "alice@t"]);
        assert_eq!(names(&roles.managers), vec!["admin@t"]);
        let code = crate::common::refused(&mut bob, Op::RoomRoles { room: secret }).await;
        assert_eq!(code, ErrorCode::RoomNotFound);
        let cats: Categories = ok_as(&mut bob, Op::ListCategories).await;
        assert_eq!(cats.categories.len(), 1);
        assert!(!cats.categories[0].may_create && cats.categories[0].allowed.is_none());
        // A user created after the server started is found by its exact name.
        let late = c
            .srv
            .store
            .create_user("late@t", false)
            .await
            .expect("user");
        let found: Users = ok_as(
            &mut bob,
            Op::FindUsers {
                query: "late@t".into(),
                limit: None,
            },
        )
        .await;
        assert_eq!(
            found.users.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![late]
        );
        // …and may then be added to a room.
        crate::common::set_role(&mut c.a, secret, late, RoleName::Member, true).await;
        alice.close().await;
        bob.close().await;
        c.stop().await;
    }
}

/// A chat server and two front ends, each its own `serve::start` (in-process).
struct Pool {
    chat: chatcap_server::serve::Running,
    fronts: Vec<chatcap_server::serve::Running>,
    _dir: tempfile::TempDir,
}

impl Pool {
    async fn start(backend: Backend) -> Pool {
        let dir = tempfile::tempdir().expect("temp dir");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let mut chat_cfg = ServeConfig {
            role: Role::Chat,
            data_dir: dir.path().join("chat"),
            listen: any,
            chat_listen: any,
            ..Default::default()
        };
        if backend == Backend::Postgres {
            chat_cfg.database = Some(fresh_pg_database().await);
        }
        let chat = chatcap_server::serve::start(chat_cfg)
            .await
            .expect("chat server starts");
        let mut fronts = Vec::new();
        for i in 0..2 {
            let cfg = ServeConfig {
                role: Role::Frontend,
                chat_servers: vec![chat.chat_addr().expect("chat address")],
                data_dir: dir.path().join(format!("front{i}")),
                listen: any,
                ..Default::default()
            };
            fronts.push(
                chatcap_server::serve::start(cfg)
                    .await
                    .expect("front end starts"),
            );
        }
        Pool {
            chat,
            fronts,
            _dir: dir,
        }
    }

    async fn user(&self, name: &str, admin: bool) -> (i64, String) {
        let hub = self.chat.hub().expect("a chat server");
        let id = hub.store.create_user(name, admin).await.expect("user");
        hub.dir_mut().users.insert(
            id,
            chatcap_server::model::User {
                id,
                name: name.into(),
                admin,
            },
        );
        let token = self.chat.token(id, Duration::from_secs(3600)).expect("key");
        (id, token)
    }

    async fn stop(self) {
        for f in self.fronts {
            f.shutdown().await;
        }
        self.chat.shutdown().await;
    }
}

#[tokio::test]
async fn room_changes_through_one_front_end_are_seen_through_the_other() {
    for backend in backends() {
        let pool = Pool::start(backend).await;
        let (_, admin) = pool.user("admin@t", true).await;
        let (alice_id, alice) = pool.user("alice@t", false).await;
        let (bob_id, bob) = pool.user("bob@t", false).await;
        let a = Http::new(pool.fronts[0].http_addr);
        let b = Http::new(pool.fronts[1].http_addr);

        let body = json!({"name": "teams", "creators": [alice_id]});
        let cat = a.call("POST", "/api/categories", &admin, Some(body)).await;
        expect(&cat, 201, None, "category through A");
        let cat = cat.json["id"].as_i64().expect("id");
        let seen: Categories = b.get("/api/categories", &alice).await.decode();
        assert!(seen.categories.iter().any(|c| c.id == cat && c.may_create));

        let spec = json!({"name": "pool-room", "category": cat});
        let made = a.call("POST", "/api/rooms", &alice, Some(spec)).await;
        expect(&made, 201, None, "room through A");
        let room = made.json["id"].as_i64().expect("id");
        let path = format!("/api/rooms/{room}");
        let r = a
            .call("PUT", &format!("{path}/members/{bob_id}"), &alice, None)
            .await;
        expect(&r, 204, None, "member through A");

        // Bob, connected through B, joins the room; then alice changes it through A.
        let url = format!("ws://{}/ws", pool.fronts[1].http_addr);
        let mut ws = chatcap::client::Client::connect(&url)
            .await
            .expect("connect");
        ws.timeout = Duration::from_secs(10);
        ws.call(Op::SignIn { token: bob.clone() })
            .await
            .expect("reply")
            .expect("signed in");
        join(&mut ws, room).await;
        let changes = json!({"description": "moved to Thursdays"});
        let r = a.call("PATCH", &path, &alice, Some(changes)).await;
        expect(&r, 200, None, "change through A");
        let push = wait_push(&mut ws, |p| matches!(p, Push::RoomChanged(_))).await;
        let Push::RoomChanged(info) = push else {
            unreachable!()
        };
        assert_eq!(info.description, "moved to Thursdays");
        assert_eq!(info.roles, vec![RoleName::Member]);

        // Through B over HTTP: the same room, the same lists.
        let r = b.get(&path, &alice).await;
        expect(&r, 200, None, "room through B");
        assert_eq!(r.json["description"], "moved to Thursdays");
        let roles: RoomRoles = b.get(&format!("{path}/roles"), &bob).await.decode();
        assert_eq!(names(&roles.members), vec!["alice@t", "bob@t"]);
        let listed = b.get("/api/rooms?mine=true", &bob).await;
        assert_eq!(ids(&listed), vec![room]);

        // A revoke through B reaches bob's session, which came through B, and A's view.
        let r = b
            .call("DELETE", &format!("{path}/members/{bob_id}"), &alice, None)
            .await;
        expect(&r, 204, None, "revoke through B");
        let push = wait_push(&mut ws, |p| matches!(p, Push::RoomClosed { .. })).await;
        assert!(matches!(push, Push::RoomClosed { room: closed, .. } if closed == room));
        let roles: RoomRoles = a.get(&format!("{path}/roles"), &alice).await.decode();
        assert_eq!(names(&roles.members), vec!["alice@t"]);
        ws.close().await;
        pool.stop().await;
    }
}
