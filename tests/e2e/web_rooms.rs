//! The chat room management web service over real HTTP: every route's happy path and its
//! rights (member, manager, administrator, outsider), 404 for secret rooms the caller may
//! not find, 401 for missing/forged/expired tokens, 400/415 for bad bodies, the OpenAPI
//! document against the routes served, and changes made through one front end seen
//! through another (over HTTP and as a `room_changed` push on a WebSocket).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use chatcap_server::config::{Role, ServeConfig};
use chatcap_server::protocol::reply::{Categories, RoomRoles, Users};
use chatcap_server::protocol::{ErrorCode, Op, Push, RoleName};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use crate::common::{backends, fresh_pg_database, join, ok_as, wait_push, Backend, Cast};

/// A small HTTP client for one server.
pub struct Http {
    base: String,
    client: HyperClient<HttpConnector, Full<Bytes>>,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: hyper::HeaderMap,
    /// The body as JSON (`Null` when empty or not JSON).
    pub json: Value,
    /// The body as text.
    pub text: String,
}

impl Answer {
    /// The error code of a JSON error body.
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }

    /// Decode the JSON body.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.json.clone()).expect("a body of the documented shape")
    }
}

impl Http {
    /// A client for the server at `addr`.
    pub fn new(addr: SocketAddr) -> Http {
        Http {
            base: format!("http://{addr}"),
            client: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Send a request with optional `Authorization: <auth>` and body (content type, bytes).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Answer {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let bytes = match body {
            Some((content_type, bytes)) => {
                req = req.header("content-type", content_type);
                bytes
            }
            None => Vec::new(),
        };
        let req = req.body(Full::new(Bytes::from(bytes))).expect("request");
        let res = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .expect("an answer within 30 s")
            .expect("HTTP exchange");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        Answer {
            status,
            headers,
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
            text,
        }
    }

    /// The status of a bodiless request, or `None` when nothing answers (yet).
    pub async fn try_raw(&self, method: &str, path: &str) -> Option<u16> {
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .body(Full::new(Bytes::new()))
            .ok()?;
        let res = tokio::time::timeout(Duration::from_secs(5), self.client.request(req))
            .await
            .ok()?
            .ok()?;
        Some(res.status().as_u16())
    }

    /// A request as the holder of `token`, with an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Answer {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.raw(method, path, Some(&auth), body).await
    }

    /// GET as the holder of `token`.
    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call("GET", path, token, None).await
    }
}

/// Assert a status (and, for errors, a code), naming the request.
fn expect(a: &Answer, status: u16, code: Option<&str>, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text);
    if let Some(code) = code {
        assert_eq!(a.code(), code, "{what}: {}", a.text);
    }
}

/// The room ids a listing shows.
fn ids(a: &Answer) -> Vec<i64> {
    a.json["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

fn names(list: &[chatcap_server::protocol::UserInfo]) -> Vec<&str> {
    list.iter().map(|u| u.name.as_str()).collect()
}

#[tokio::test]
async fn room_routes_have_the_protocol_rights() {
    for backend in backends() {
        let c = Cast::new(backend).await;
        let carol = c.srv.user("carol@t", false).await;
        let http = Http::new(c.srv.running.http_addr);
        let (admin, alice, bob, carol_t) = (
            c.srv.token(c.admin),
            c.srv.token(c.alice),
            c.srv.token(c.bob),
            c.srv.token(carol),
        );

        // Categories: administrators create and change them; alice is a creator.
        let body = json!({"name": "projects", "creators": [c.alice], "denied": [carol]});
        let created = http
            .call("POST", "/api/categories", &admin, Some(body.clone()))
            .await;
        expect(&created, 201, None, "admin creates a category");
        let projects = created.json["id"].as_i64().expect("id");
        assert_eq!(
            created.headers["location"],
            format!("/api/categories/{projects}").as_str()
        );
        assert_eq!(created.json["creators"], json!([c.alice]));
        let refused = http
            .call("POST", "/api/categories", &bob, Some(json!({"name": "x"})))
            .await;
        expect(&refused, 403, Some("forbidden"), "bob creates a category");
        let again = http
            .call("POST", "/api/categories", &admin, Some(body))
            .await;
        expect(&again, 409, Some("conflict"), "duplicate category");

        let mine: Categories = http.get("/api/categories", &alice).await.decode();
        let p = mine
            .categories
            .iter()
            .find(|x| x.id == projects)
            .expect("listed");
        assert!(p.may_create && p.creators.is_none(), "{p:?}");
        let walled: Categories = http.get("/api/categories", &carol_t).await.decode();
        assert!(
            walled.categories.iter().all(|x| x.id != projects),
            "behind the wall"
        );
        let one = http
            .get(&format!("/api/categories/{projects}"), &carol_t)
            .await;
        expect(&one, 404, Some("category_not_found"), "walled category");
        let one = http
            .get(&format!("/api/categories/{projects}"), &admin)
            .await;
        expect(&one, 200, None, "admin reads a category");
        assert_eq!(one.json["denied"], json!([carol]));

        let path = format!("/api/categories/{projects}");
        let patched = http
            .call("PATCH", &path, &admin, Some(json!({"history": false})))
            .await;
        expect(&patched, 200, None, "admin changes a category");
        assert_eq!(patched.json["history"], json!(false));
        let patched = http
            .call("PATCH", &path, &alice, Some(json!({"history": true})))
            .await;
        expect(&patched, 403, Some("forbidden"), "alice changes a category");
        let patched = http
            .call("PATCH", "/api/categories/9999", &admin, Some(json!({})))
            .await;
        expect(
            &patched,
            404,
            Some("category_not_found"),
            "unknown category",
        );

        // Rooms: creators create, and become manager and member.
        let spec = json!({"name": "web-secret", "category": projects, "privacy": "secret",
                          "description": "plans"});
        let made = http
            .call("POST", "/api/rooms", &alice, Some(spec.clone()))
            .await;
        expect(&made, 201, None, "alice creates a room");
        let room = made.json["id"].as_i64().expect("id");
        assert_eq!(
            made.headers["location"],
            format!("/api/rooms/{room}").as_str()
        );
        assert_eq!(made.json["privacy"], "secret");
        assert_eq!(made.json["roles"], json!(["member", "manager"]));
        let dup = http.call("POST", "/api/rooms", &alice, Some(spec)).await;
        expect(&dup, 409, Some("conflict"), "duplicate room name");
        let not_creator = json!({"name": "bobs", "category": projects});
        let r = http
            .call("POST", "/api/rooms", &bob, Some(not_creator))
            .await;
        expect(&r, 403, Some("forbidden"), "bob is no creator");
        let nowhere = json!({"name": "lost", "category": 9999});
        let r = http.call("POST", "/api/rooms", &admin, Some(nowhere)).await;
        expect(&r, 404, Some("category_not_found"), "unknown category");
        let blank = json!({"name": " ", "category": projects});
        let r = http.call("POST", "/api/rooms", &alice, Some(blank)).await;
        expect(&r, 400, Some("invalid_argument"), "blank name");

        // A secret room does not exist for outsiders, on every route.
        let room_path = format!("/api/rooms/{room}");
        for (method, path, body) in [
            ("GET", room_path.clone(), None),
            (
                "PATCH",
                room_path.clone(),
                Some(json!({"description": "mine now"})),
            ),
            ("DELETE", room_path.clone(), None),
            ("GET", format!("{room_path}/roles"), None),
            ("PUT", format!("{room_path}/members/bob@t"), None),
            ("PUT", format!("{room_path}/members/{}", c.bob), None),
            ("DELETE", format!("{room_path}/managers/{}", c.alice), None),
        ] {
            let r = http.call(method, &path, &bob, body).await;
            expect(
                &r,
                404,
                Some("room_not_found"),
                &format!("bob {method} {path}"),
            );
        }
        assert!(!ids(&http.get("/api/rooms", &bob).await).contains(&room));
        assert!(ids(&http.get("/api/rooms?name=SECRET", &alice).await).contains(&room));
        let q = format!("/api/rooms?category={projects}&mine=true&limit=5");
        assert_eq!(ids(&http.get(&q, &alice).await), vec![room]);
        assert!(
            ids(&http.get(&q, &admin).await).is_empty(),
            "admin holds no role"
        );

        // The manager adds bob as member, by name; then bob finds the room but may not
        // manage it.
        let r = http
            .call("PUT", &format!("{room_path}/members/bob@t"), &alice, None)
            .await;
        expect(&r, 204, None, "alice adds bob by name");
        let r = http
            .call("PUT", &format!("{room_path}/members/bob@t"), &alice, None)
            .await;
        expect(&r, 204, None, "adding again is idempotent");
        let seen = http.get(&room_path, &bob).await;
        expect(&seen, 200, None, "bob reads the room");
        assert_eq!(seen.json["roles"], json!(["member"]));
        assert_eq!(seen.json["description"], "plans");
        assert!(ids(&http.get("/api/rooms", &bob).await).contains(&room));
        let roles: RoomRoles = http.get(&format!("{room_path}/roles"), &bob).await.decode();
        assert_eq!(names(&roles.members), vec!["alice@t", "bob@t"]);
        assert_eq!(names(&roles.managers), vec!["alice@t"]);
        assert!(roles.presenters.is_empty());
        let r = http
            .call("PATCH", &room_path, &bob, Some(json!({"name": "bobs"})))
            .await;
        expect(&r, 403, Some("forbidden"), "member changes the room");
        let r = http
            .call(
                "PUT",
                &format!("{room_path}/presenters/{carol}"),
                &bob,
                None,
            )
            .await;
        expect(&r, 403, Some("forbidden"), "member grants a role");
        let r = http.call("DELETE", &room_path, &bob, None).await;
        expect(&r, 403, Some("forbidden"), "member deletes the room");
        let r = http.call("DELETE", &room_path, &alice, None).await;
        expect(&r, 403, Some("forbidden"), "manager deletes the room");

        // Bad list names and unknown users.
        let r = http
            .call(
                "PUT",
                &format!("{room_path}/owners/{}", c.bob),
                &alice,
                None,
            )
            .await;
        expect(&r, 400, Some("bad_request"), "unknown list");
        let r = http
            .call(
                "PUT",
                &format!("{room_path}/members/nobody@t"),
                &alice,
                None,
            )
            .await;
        expect(&r, 404, Some("user_not_found"), "unknown user name");
        let r = http
            .call("PUT", &format!("{room_path}/members/987654"), &alice, None)
            .await;
        expect(&r, 404, Some("user_not_found"), "unknown user id");

        // The manager changes the room; a PATCH answers with the room as it is now.
        let changes =
            json!({"description": "new plans", "privacy": "closed", "kind": "auditorium"});
        let r = http.call("PATCH", &room_path, &alice, Some(changes)).await;
        expect(&r, 200, None, "manager changes the room");
        assert_eq!(r.json["description"], "new plans");
        assert_eq!(r.json["kind"], "auditorium");
        // Closed now: carol (behind the category's wall) still may not find it; the
        // administrator may, and changes it too.
        let r = http.get(&room_path, &carol_t).await;
        expect(&r, 404, Some("room_not_found"), "walled user");
        let r = http
            .call(
                "PATCH",
                &room_path,
                &admin,
                Some(json!({"addin_url": "https://a.test/x"})),
            )
            .await;
        expect(&r, 200, None, "admin changes the room");
        assert_eq!(r.json["addin_url"], "https://a.test/x");

        // Managers grant managers and presenters; revoking takes the role away.
        let r = http
            .call(
                "PUT",
                &format!("{room_path}/managers/{}", c.bob),
                &alice,
                None,
            )
            .await;
        expect(&r, 204, None, "alice makes bob a manager");
        let r = http
            .call("PUT", &format!("{room_path}/presenters/bob@t"), &bob, None)
            .await;
        expect(&r, 204, None, "bob, now manager, makes himself presenter");
        let r = http
            .call(
                "PATCH",
                &room_path,
                &bob,
                Some(json!({"name": "web-closed"})),
            )
            .await;
        expect(&r, 200, None, "bob, now manager, renames the room");
        assert_eq!(r.json["roles"], json!(["member", "manager", "presenter"]));
        let roles: RoomRoles = http
            .get(&format!("{room_path}/roles"), &admin)
            .await
            .decode();
        assert_eq!(names(&roles.presenters), vec!["bob@t"]);
        for list in ["managers", "presenters", "members"] {
            let r = http
                .call(
                    "DELETE",
                    &format!("{room_path}/{list}/{}", c.bob),
                    &alice,
                    None,
                )
                .await;
            expect(&r, 204, None, &format!("alice takes bob off {list}"));
        }
        let r = http.get(&room_path, &bob).await;
        expect(&r, 200, None, "a closed room is still found");
        assert_eq!(r.json["roles"], json!([]));
        let r = http.get(&format!("{room_path}/roles"), &bob).await;
        expect(
            &r,
            403,
            Some("forbidden"),
            "outsider reads a closed room's lists",
        );

        // Users are found by name.
        let found: Users = http.get("/api/users?name=ALI&limit=5", &bob).await.decode();
        assert_eq!(names(&found.users), vec!["alice@t"]);

        // Only administrators delete; afterwards the room is gone for everyone.
        let r = http.call("DELETE", &room_path, &admin, None).await;
        expect(&r, 204, None, "admin deletes the room");
        let r = http.get(&room_path, &alice).await;
        expect(&r, 404, Some("room_not_found"), "deleted room");
        let r = http.call("DELETE", &room_path, &admin, None).await;
        expect(&r, 404, Some("room_not_found"), "deleted twice");
        c.stop().await;
    }
}

#[tokio::test]
async fn bad_tokens_and_bad_bodies_are_refused() {
    for backend in backends() {
        let c = Cast::new(backend).await;
        let http = Http::new(c.srv.running.http_addr);
        let good = c.srv.token(c.admin);
        let forged = good.replacen(&format!("v1.{}.", c.admin), &format!("v1.{}.", c.bob), 1);
        let foreign = chatcap_server::auth::TokenKey::new(b"another pool".to_vec())
            .issue(c.admin, chatcap_server::auth::unix_now() + 3600);
        let expired = c
            .srv
            .running
            .chat
            .as_ref()
            .expect("a chat server")
            .tokens
            .issue(c.admin, chatcap_server::auth::unix_now() - 1);
        for (auth, code) in [
            (None, "invalid_token"),
            (Some("Basic YWRtaW46YWRtaW4=".to_string()), "invalid_token"),
            (Some("Bearer garbage".to_string()), "invalid_token"),
            (Some(format!("Bearer {forged}")), "invalid_token"),
            (Some(format!("Bearer {foreign}")), "invalid_token"),
            (Some(format!("Bearer {expired}")), "token_expired"),
        ] {
            for (method, path) in [
                ("GET", "/api/rooms"),
                ("GET", "/api/rooms/1"),
                ("GET", "/api/categories"),
                ("DELETE", "/api/rooms/1"),
            ] {
                let r = http.raw(method, path, auth.as_deref(), None).await;
                expect(
                    &r,
                    401,
                    Some(code),
                    &format!("{method} {path} with {auth:?}"),
                );
                assert_eq!(r.headers["www-authenticate"], "Bearer");
            }
        }
        // Nothing was changed by a forged token.
        let r = http
            .raw(
                "POST",
                "/api/categories",
                Some(&format!("Bearer {forged}")),
                Some(("application/json", br#"{"name":"forged"}"#.to_vec())),
            )
            .await;
        expect(&r, 401, Some("invalid_token"), "forged create");
        let cats: Categories = http.get("/api/categories", &good).await.decode();
        assert!(cats.categories.iter().all(|x| x.name != "forged"));

        let auth = format!("Bearer {good}");
        let (auth, h) = (auth.as_str(), &http);
        let post = move |ct: &'static str, body: &'static str| {
            h.raw(
                "POST",
                "/api/rooms",
                Some(auth),
                Some((ct, body.as_bytes().to_vec())),
            )
        };
        let r = post("application/json", r#"{"name": "x", "category": "#).await;
        expect(&r, 400, Some("bad_request"), "truncated JSON");
        assert!(
            r.json["message"]
                .as_str()
                .unwrap_or("")
                .contains("malformed JSON"),
            "{}",
            r.text
        );
        let r = post("application/json", "").await;
        expect(&r, 400, Some("bad_request"), "empty body");
        let r = post(
            "application/json",
            r#"{"name": "x", "category": 1, "colour": "red"}"#,
        )
        .await;
        expect(&r, 400, Some("bad_request"), "unknown field");
        assert!(r.text.contains("unknown field `colour`"), "{}", r.text);
        let r = post("application/json", r#"{"name": "x", "category": "one"}"#).await;
        expect(&r, 400, Some("bad_request"), "wrong type");
        let r = post(
            "application/json",
            r#"{"name": "x", "category": 1, "privacy": "hidden"}"#,
        )
        .await;
        expect(&r, 400, Some("bad_request"), "unknown privacy");
        let r = post("application/json", r#"{"category": 1}"#).await;
        expect(&r, 400, Some("bad_request"), "missing name");
        let r = post("text/plain", r#"{"name": "x", "category": 1}"#).await;
        expect(&r, 415, Some("bad_request"), "not JSON");
        let r = http.raw("POST", "/api/rooms", Some(auth), None).await;
        expect(&r, 415, Some("bad_request"), "no content type");
        let r = http
            .call("PATCH", "/api/rooms/1", &good, Some(json!({"owner": 3})))
            .await;
        expect(&r, 400, Some("bad_request"), "unknown field in a patch");
        let r = http
            .call(
                "PATCH",
                "/api/categories/1",
                &good,
                Some(json!({"name": "n"})),
            )
            .await;
        expect(
            &r,
            400,
            Some("bad_request"),
            "a category's name cannot change",
        );
        let r = http.get("/api/rooms?colour=red", &good).await;
        expect(&r, 400, Some("bad_request"), "unknown query parameter");
        let r = http.get("/api/rooms?limit=many", &good).await;
        expect(&r, 400, Some("bad_request"), "malformed query parameter");
        let r = http.get("/api/rooms/seven", &good).await;
        expect(&r, 400, Some("bad_request"), "room id not a number");
        let r = http.get("/api/rooms/99999", &good).await;
        expect(&r, 404, Some("room_not_found"), "unknown room");
        // The server is unharmed.
        expect(
            &http.get("/api/rooms", &good).await,
            200,
            None,
            "still serving",
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn every_documented_route_is_served_and_guarded() {
    let c = Cast::new(Backend::Sqlite).await;
    let http = Http::new(c.srv.running.http_addr);
    let doc = http.raw("GET", "/api/openapi.json", None, None).await;
    expect(&doc, 200, None, "the document");
    assert!(doc.json["openapi"].as_str().unwrap_or("").starts_with("3."));
    assert_eq!(
        doc.json["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc.json["paths"].as_object().expect("paths");
    assert!(paths.len() >= 11, "{paths:?}");
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "1")
            .replace("{list}", "members")
            .replace("{user}", "1");
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            operations += 1;
            let name = format!("{} {path}", method.to_uppercase());
            assert!(
                op["responses"].is_object(),
                "{name} documents its responses"
            );
            let r = http
                .raw(&method.to_uppercase(), &concrete, None, None)
                .await;
            if path.starts_with("/api/") && path != "/api/openapi.json" {
                // Guarded: the route exists (not 404/405) and wants a token.
                expect(&r, 401, Some("invalid_token"), &name);
                assert!(op["security"].is_array(), "{name} documents its security");
                assert!(op["responses"]["401"].is_object(), "{name} documents 401");
            } else {
                expect(&r, 200, None, &name);
            }
        }
    }
    assert_eq!(operations, 17, "one operation per route the router serves");
    // And the router serves nothing under /api that the document does not list.
    for (method, path) in [
        ("GET", "/api/nothing"),
        ("POST", "/api/rooms/1"),
        ("PUT", "/api/rooms"),
    ] {
        let r = http.raw(method, path, None, None).await;
        assert!(
            r.status == 404 || r.status == 405,
            "{method} {path}: {}",
            r.status
        );
    }
    let page = http.raw("GET", "/rooms", None, None).await;
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(page.headers.contains_key("content-security-policy"));
    assert!(page.text.contains("/rooms/app.js"));
    c.stop().await;
}

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
