//! The file upload/download web service (docs/FILES.md), over real HTTP: a file round-trips
//! byte for byte and its announcement reaches the room's members; outsiders get 403 on a
//! closed room and 404 on a secret one; the category's switch and auditoriums are
//! respected; oversized uploads get 413 and leave nothing in the file store; broken
//! multipart, path-like names and forged tokens are refused; a file posted through one
//! front end downloads through another; uploads and downloads are recorded for compliance.
//!
//! Streaming is by design (docs/FILES.md), not asserted here: no memory or timing checks.

use bytes::Bytes;
use chatcap::client::Client;
use chatcap_server::compliance::{self, EventKind};
use chatcap_server::config::{Role, ServeConfig};
use chatcap_server::protocol::files::Files;
use chatcap_server::protocol::{CategoryPatch, ErrorCode, Op, Privacy, Push, RoleName, RoomKind};
use chatcap_server::store::{Schema, Store};
use hyper::{header, StatusCode};

use crate::common::{
    backends, category, join, open_category, refused, room, set_role, wait_push, Cast, TestServer,
};

pub mod support;
use support::*;

#[tokio::test]
async fn a_file_round_trips_and_members_see_it_arrive() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let id = c.room("files", Privacy::Closed, &[c.alice, c.bob]).await;
        let mut bob = c.srv.client(c.bob).await;
        join(&mut bob, id).await;
        let http = Http::of(&c.srv.running);
        let alice = c.srv.token(c.alice);

        let bytes = noise(300 * 1024 + 7, 1);
        let name = "Quarterly report é.BIN";
        let up = http.uploaded(&alice, id, name, &bytes).await;
        assert_eq!(up.room, id);
        assert_eq!(up.name, name);
        assert_eq!(up.size, bytes.len() as u64);
        assert_eq!(up.uploader, c.alice);
        assert!(up.file.ends_with(".bin"), "{}", up.file);
        assert_eq!(up.file.len(), 32 + 4);

        // Members see the file arrive through the normal post path, numbered.
        let pushed = wait_push(&mut bob, |p| matches!(p, Push::Chat(m) if m.room == id)).await;
        let Push::Chat(m) = pushed else {
            unreachable!()
        };
        assert_eq!(Some(m.seq), up.seq);
        assert_eq!(m.author, c.alice);
        assert_eq!(m.client_msg_id, format!("file:{}", up.file));
        assert_eq!(
            m.text,
            format!(
                "[file] {name} ({} bytes) /api/rooms/{id}/files/{}",
                bytes.len(),
                up.file
            )
        );

        // Bob downloads exactly the bytes, with the original name.
        let bob_token = c.srv.token(c.bob);
        let down = http.download(&bob_token, id, &up.file).await;
        assert_eq!(down.status, StatusCode::OK);
        assert_eq!(down.body.as_ref(), &bytes[..]);
        assert_eq!(down.header(header::CONTENT_LENGTH), bytes.len().to_string());
        assert_eq!(
            down.header(header::CONTENT_DISPOSITION),
            "attachment; filename=\"Quarterly report _.BIN\"; \
             filename*=UTF-8''Quarterly%20report%20%C3%A9.BIN"
        );
        assert_eq!(down.header(header::ETAG), format!("\"{}\"", up.sha256));

        // The digest is SHA-256 of the bytes.
        let abc = http.uploaded(&alice, id, "abc.txt", b"abc").await;
        assert_eq!(abc.sha256, SHA256_ABC);
        assert_eq!(
            http.download(&alice, id, &abc.file).await.body.as_ref(),
            b"abc"
        );

        let listed: Files =
            serde_json::from_value(http.list(&bob_token, id).await.json()).expect("a file list");
        let names: Vec<&str> = listed.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["abc.txt", name]);
        assert_eq!(listed.files[1].sha256, up.sha256);

        bob.close().await;
        c.stop().await;
    }
}

#[tokio::test]
async fn only_readers_of_a_room_download_and_secret_rooms_stay_hidden() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let closed = c.room("closed", Privacy::Closed, &[c.alice]).await;
        let secret = c.room("secret", Privacy::Secret, &[c.alice]).await;
        let open = c.room("open", Privacy::Open, &[]).await;
        let http = Http::of(&c.srv.running);
        let alice = c.srv.token(c.alice);
        let bob = c.srv.token(c.bob);
        let in_closed = http.uploaded(&alice, closed, "c.txt", b"closed").await;
        let in_secret = http.uploaded(&alice, secret, "s.txt", b"secret").await;

        // Closed: bob finds the room but may not read it.
        http.download(&bob, closed, &in_closed.file)
            .await
            .refused(StatusCode::FORBIDDEN, "forbidden");
        http.list(&bob, closed)
            .await
            .refused(StatusCode::FORBIDDEN, "forbidden");
        http.upload(&bob, closed, "b.txt", b"x")
            .await
            .refused(StatusCode::FORBIDDEN, "forbidden");
        // Secret: to bob the room does not exist.
        http.download(&bob, secret, &in_secret.file)
            .await
            .refused(StatusCode::NOT_FOUND, "room_not_found");
        http.list(&bob, secret)
            .await
            .refused(StatusCode::NOT_FOUND, "room_not_found");
        http.upload(&bob, secret, "b.txt", b"x")
            .await
            .refused(StatusCode::NOT_FOUND, "room_not_found");
        // A file is only reachable through its own room.
        let via_open = http.uploaded(&bob, open, "o.txt", b"open").await;
        http.download(&alice, open, &in_closed.file)
            .await
            .refused(StatusCode::NOT_FOUND, "file_not_found");
        http.download(&alice, open, "0123456789abcdef0123456789abcdef.txt")
            .await
            .refused(StatusCode::NOT_FOUND, "file_not_found");
        http.download(&alice, 999_999, &in_closed.file)
            .await
            .refused(StatusCode::NOT_FOUND, "room_not_found");
        // Anyone allowed reads an open room.
        assert_eq!(
            http.download(&alice, open, &via_open.file)
                .await
                .body
                .as_ref(),
            b"open"
        );

        // Tokens: forged, missing.
        // Alice's token, claiming to be bob's.
        let forged = alice.replacen(&format!("v1.{}.", c.alice), &format!("v1.{}.", c.bob), 1);
        assert_ne!(forged, alice);
        http.download(&forged, closed, &in_closed.file)
            .await
            .refused(StatusCode::UNAUTHORIZED, "invalid_token");
        http.upload(&forged, closed, "f.txt", b"x")
            .await
            .refused(StatusCode::UNAUTHORIZED, "invalid_token");
        let path = format!("/api/rooms/{closed}/files/{}", in_closed.file);
        http.send("GET", &path, None, None, Bytes::new())
            .await
            .refused(StatusCode::UNAUTHORIZED, "invalid_token");
        c.stop().await;
    }
}

#[tokio::test]
async fn the_category_switch_and_auditoriums_are_respected() {
    for backend in backends() {
        let mut c = Cast::new(backend).await;
        let mut spec = open_category("no-files");
        spec.file_upload = false;
        let cat = category(&mut c.a, spec).await;
        let id = room(&mut c.a, cat, "no-files", Privacy::Open, RoomKind::Normal).await;
        let http = Http::of(&c.srv.running);
        let alice = c.srv.token(c.alice);
        let a = http.upload(&alice, id, "x.txt", b"x").await;
        a.refused(StatusCode::FORBIDDEN, "forbidden");
        assert!(a.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("switched off")));
        assert!(files_under(&c.srv.config.file_store_dir()).is_empty());

        chatcap_server_ok(
            &mut c.a,
            Op::UpdateCategory {
                category: cat,
                patch: CategoryPatch {
                    file_upload: Some(true),
                    ..Default::default()
                },
            },
        )
        .await;
        http.uploaded(&alice, id, "x.txt", b"x").await;

        // Auditorium: only presenters post files, like messages.
        let aud = room(
            &mut c.a,
            c.cat,
            "stage",
            Privacy::Open,
            RoomKind::Auditorium,
        )
        .await;
        http.upload(&alice, aud, "x.txt", b"x")
            .await
            .refused(StatusCode::FORBIDDEN, "forbidden");
        set_role(&mut c.a, aud, c.alice, RoleName::Presenter, true).await;
        http.uploaded(&alice, aud, "x.txt", b"x").await;
        c.stop().await;
    }
}

async fn chatcap_server_ok(c: &mut Client, op: Op) {
    crate::common::ok(c, op).await;
}

#[tokio::test]
async fn oversized_broken_and_path_like_uploads_are_refused_and_leave_nothing() {
    for backend in backends() {
        let srv = TestServer::start_with(backend, |cfg| cfg.front.max_file_kb = 64).await;
        let mut c = Cast::with(srv).await;
        let id = c.room("limits", Privacy::Closed, &[c.alice]).await;
        let http = Http::of(&c.srv.running);
        let alice = c.srv.token(c.alice);
        let store = c.srv.config.file_store_dir();

        // At the limit is fine; one byte more is refused while streaming (the body is within
        // the request limit), far more before the body is read.
        let at_limit = http
            .uploaded(&alice, id, "max.bin", &noise(64 * 1024, 2))
            .await;
        http.upload(&alice, id, "over.bin", &noise(64 * 1024 + 1, 3))
            .await
            .refused(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
        http.upload(&alice, id, "huge.bin", &noise(512 * 1024, 4))
            .await
            .refused(StatusCode::PAYLOAD_TOO_LARGE, "too_large");

        // Broken multipart: cut off mid-part, no boundary, not multipart, no file part.
        let whole = form("cut.bin", &noise(10_000, 5));
        let multipart = format!("multipart/form-data; boundary={BOUNDARY}");
        let path = format!("/api/rooms/{id}/files");
        for (content_type, body) in [
            (multipart.as_str(), whole.slice(..5_000)),
            ("multipart/form-data", whole.clone()),
            ("application/json", Bytes::from_static(b"{}")),
            (multipart.as_str(), Bytes::from_static(b"garbage")),
            (
                multipart.as_str(),
                Bytes::from(format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n\
                     hi\r\n--{BOUNDARY}--\r\n"
                )),
            ),
        ] {
            let a = http
                .send("POST", &path, Some(&alice), Some(content_type), body)
                .await;
            a.refused(StatusCode::BAD_REQUEST, "bad_request");
        }

        // Names that look like paths, or are empty.
        for name in [
            "../x.txt",
            "a/b",
            "..",
            "a\\b",
            "",
            "..\\..\\boot.ini",
            "a\u{1}b",
        ] {
            http.upload(&alice, id, name, b"x")
                .await
                .refused(StatusCode::BAD_REQUEST, "bad_request");
        }
        // And a download path that is not a stored name.
        for file in ["..%2F..%2Fcontent.db", "x.txt", "%2E%2E"] {
            http.download(&alice, id, file)
                .await
                .refused(StatusCode::BAD_REQUEST, "bad_request");
        }
        http.send(
            "POST",
            "/api/rooms/abc/files",
            Some(&alice),
            Some(&multipart),
            form("a", b"a"),
        )
        .await
        .refused(StatusCode::BAD_REQUEST, "bad_request");

        // Only the accepted file is in the store: no partial upload is left behind.
        let left = files_under(&store);
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(left[0].ends_with(&at_limit.file));

        // Over the chat connection the file operations that change or record anything are
        // the web service's alone.
        let mut ws = c.srv.client(c.alice).await;
        assert_eq!(
            refused(&mut ws, Op::FileBegin { room: id }).await,
            ErrorCode::Forbidden
        );
        assert_eq!(
            refused(
                &mut ws,
                Op::FileInfo {
                    room: id,
                    file: at_limit.file.clone()
                }
            )
            .await,
            ErrorCode::Forbidden
        );
        let listed: Files = crate::common::ok_as(
            &mut ws,
            Op::FileList {
                room: id,
                limit: None,
            },
        )
        .await;
        assert_eq!(listed.files.len(), 1);
        ws.close().await;
        c.stop().await;
    }
}

#[tokio::test]
async fn uploads_and_downloads_are_recorded_for_compliance() {
    for backend in backends() {
        let srv = TestServer::start_with(backend, |cfg| cfg.compliance.enabled = true).await;
        let mut c = Cast::with(srv).await;
        let id = c.room("audit", Privacy::Closed, &[c.alice, c.bob]).await;
        let http = Http::of(&c.srv.running);
        let up = http
            .uploaded(&c.srv.token(c.alice), id, "a.txt", b"audited")
            .await;
        let down = http.download(&c.srv.token(c.bob), id, &up.file).await;
        assert_eq!(down.status, StatusCode::OK);

        let hub = c.srv.running.hub().expect("chat server").clone();
        compliance::flush(&hub).await;
        let store = Store::open(&c.srv.config.compliance_url(), Schema::Compliance)
            .await
            .expect("compliance database");
        let events = store.compliance_events().await.expect("events");
        let files: Vec<(EventKind, i64, i64, String)> = events
            .iter()
            .filter_map(|e| {
                let kind = EventKind::from_code(e.event.kind)?;
                matches!(kind, EventKind::FileUpload | EventKind::FileDownload)
                    .then(|| (kind, e.event.room, e.event.user, e.event.content.clone()))
            })
            .collect();
        assert_eq!(
            files,
            [
                (EventKind::FileUpload, id, c.alice, up.file.clone()),
                (EventKind::FileDownload, id, c.bob, up.file.clone()),
            ]
        );
        store.close().await;
        c.stop().await;
    }
}

#[tokio::test]
async fn a_file_posted_through_one_front_end_downloads_through_another() {
    for backend in backends() {
        let srv = TestServer::start_with(backend, |cfg| cfg.role = Role::Chat).await;
        let link = srv.running.chat_addr().expect("chat link");
        let shared = srv.dir.path().join("shared-file-store");
        let front_end = |name: &str| ServeConfig {
            role: Role::Frontend,
            chat_servers: vec![link],
            data_dir: srv.dir.path().join(name),
            listen: "127.0.0.1:0".parse().expect("addr"),
            file_store: Some(shared.clone()),
            ..Default::default()
        };
        let fe_a = chatcap_server::serve::start(front_end("fe-a"))
            .await
            .expect("front end A");
        let fe_b = chatcap_server::serve::start(front_end("fe-b"))
            .await
            .expect("front end B");

        let admin = srv.user("admin@t", true).await;
        let alice = srv.user("alice@t", false).await;
        let bob = srv.user("bob@t", false).await;
        let mut a = Client::connect(&format!("ws://{}/ws", fe_a.http_addr))
            .await
            .expect("connect");
        crate::common::ok(
            &mut a,
            Op::SignIn {
                token: srv.token(admin),
            },
        )
        .await;
        let cat = category(&mut a, open_category("shared")).await;
        let id = room(&mut a, cat, "shared", Privacy::Closed, RoomKind::Normal).await;
        for u in [alice, bob] {
            set_role(&mut a, id, u, RoleName::Member, true).await;
        }

        let bytes = noise(200_000, 6);
        let up = Http::of(&fe_a)
            .uploaded(&srv.token(alice), id, "shared.dat", &bytes)
            .await;
        let via_b = Http::of(&fe_b);
        let down = via_b.download(&srv.token(bob), id, &up.file).await;
        assert_eq!(down.status, StatusCode::OK);
        assert_eq!(down.body.as_ref(), &bytes[..]);
        let listed: Files = serde_json::from_value(via_b.list(&srv.token(bob), id).await.json())
            .expect("a file list");
        assert_eq!(listed.files.len(), 1);
        assert_eq!(listed.files[0].file, up.file);

        a.close().await;
        fe_a.shutdown().await;
        fe_b.shutdown().await;
        srv.stop().await;
    }
}
