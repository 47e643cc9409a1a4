//! Every room and category route's success and rights: member, manager, administrator,
//! outsider, and a user behind the category's ethical wall; hidden rooms are 404 everywhere.

use chatcap_server::protocol::reply::{Categories, RoomRoles, Users};
use serde_json::json;

use super::{expect, ids, names, Http};
use crate::common::{backends, Cast};

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
