//! The shortest path through the system: sign in, create a room, join, post, receive.

use chatcap_server::protocol::reply::{Ack, Created, Joined};
use chatcap_server::protocol::{CategorySpec, Op, Push, RoleName, RoomSpec};

use crate::common::{backends, TestServer};

#[tokio::test]
async fn two_users_chat_in_a_room() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let admin = srv.user("admin@t", true).await;
        let bob = srv.user("bob@t", false).await;
        let mut a = srv.client(admin).await;
        let cat: Created = a
            .call_as(Op::CreateCategory(CategorySpec {
                name: "c".into(),
                allow_everyone: true,
                invitations: true,
                file_upload: true,
                history: true,
                ..Default::default()
            }))
            .await
            .unwrap()
            .unwrap();
        let room: Created = a
            .call_as(Op::CreateRoom(RoomSpec {
                name: "r".into(),
                category: cat.id,
                ..Default::default()
            }))
            .await
            .unwrap()
            .unwrap();
        a.call(Op::SetRole {
            room: room.id,
            user: bob,
            role: RoleName::Member,
            grant: true,
        })
        .await
        .unwrap()
        .unwrap();
        let mut b = srv.client(bob).await;
        let j: Joined = b
            .call_as(Op::Join {
                room: room.id,
                history: None,
            })
            .await
            .unwrap()
            .unwrap();
        assert!(j.messages.is_empty());
        a.call(Op::Join {
            room: room.id,
            history: None,
        })
        .await
        .unwrap()
        .unwrap();
        let ack: Ack = a
            .call_as(Op::Post {
                room: room.id,
                text: "hello".into(),
                client_msg_id: "m1".into(),
                sent_at_us: Some(1),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ack.seq, 1);
        let push = loop {
            match b.next_push().await.unwrap() {
                Push::Chat(m) => break m,
                _ => continue,
            }
        };
        assert_eq!(
            (push.seq, push.text.as_str(), push.author),
            (1, "hello", admin)
        );
        srv.stop().await;
    }
}
