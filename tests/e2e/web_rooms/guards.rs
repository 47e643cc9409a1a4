//! What guards the routes: tokens (missing, forged, foreign, expired), strict bodies and
//! parameters, and the OpenAPI document against the routes actually served.

use chatcap_server::protocol::reply::Categories;
use serde_json::json;

use super::{expect, Http};
use crate::common::{backends, Backend, Cast};

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
