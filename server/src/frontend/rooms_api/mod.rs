//! The chat room management web service: a JSON API on the front end to list, search,
//! create and change rooms and categories and to manage a room's members, managers and
//! presenters, plus a small web page (`/rooms`) built on it. Documented in `docs/WEB.md`;
//! the OpenAPI document (`/api/openapi.json`) is generated from these handlers.
//!
//! Every handler acts through [`FrontEnd::call`]: it runs one chat-protocol operation as
//! the caller on the caller's chat server, so the web service has exactly the protocol's
//! rights and answers (a secret room the caller may not find is a 404, as `room_not_found`
//! is). It never touches a database.
//!
//! # Layout
//! - this file: the router, the OpenAPI document, the one helper that calls the chat server;
//! - [`extract`]: strict JSON body, query and path extractors (JSON errors);
//! - [`rooms`]: `/api/rooms`, `/api/rooms/{id}`;
//! - [`roles`]: `/api/rooms/{id}/roles`, `/api/rooms/{id}/{list}/{user}`;
//! - [`categories`]: `/api/categories…`, `/api/users`;
//! - [`page`]: the page and its script and style (`web/`, embedded in the binary).
//!
//! Every route is registered through `utoipa_axum::routes!`, which takes the path and the
//! methods from the handler's `#[utoipa::path]`: a route cannot exist without being in the
//! document.

pub mod categories;
pub mod extract;
pub mod page;
pub mod roles;
pub mod rooms;

use std::sync::{Arc, OnceLock};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::ApiError;
use super::FrontEnd;
use crate::protocol::{ErrorCode, Op};

/// An error reply, as every failing route returns it.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ErrorBody {
    /// A protocol error code (`room_not_found`, `forbidden`, `invalid_token`, …).
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chatcap room management",
        description = "Chat room management web service of the chatcap front end. Every \
            /api route except /api/openapi.json needs `Authorization: Bearer <token>` (the \
            sign-in token of the chat protocol) and has exactly the chat protocol's rights. \
            Errors are JSON {code, message}; a room the caller may not find (a secret room \
            of which the caller is not a member) is 404, never 403.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&BearerAuth),
    // A schema used only by a path parameter is not collected from the handlers.
    components(schemas(ErrorBody, roles::RoleList)),
    tags(
        (name = "rooms", description = "Rooms: list, search, create, change, delete"),
        (name = "roles", description = "A room's members, managers and presenters"),
        (name = "categories", description = "Categories and the user directory"),
        (name = "page", description = "The room-management web page and this document")
    )
)]
struct ApiDoc;

/// The routes and the document, from one list.
fn parts() -> (Router<Arc<FrontEnd>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(rooms::list_rooms, rooms::create_room))
        .routes(routes!(
            rooms::get_room,
            rooms::update_room,
            rooms::delete_room
        ))
        .routes(routes!(roles::get_roles))
        .routes(routes!(roles::grant_role, roles::revoke_role))
        .routes(routes!(
            categories::list_categories,
            categories::create_category
        ))
        .routes(routes!(
            categories::get_category,
            categories::update_category
        ))
        .routes(routes!(categories::find_users))
        .routes(routes!(openapi_json))
        .routes(routes!(page::page))
        .routes(routes!(page::script))
        .routes(routes!(page::style))
        .split_for_parts()
}

/// The web service's routes, to merge into the front end's router.
pub fn routes() -> Router<Arc<FrontEnd>> {
    parts().0
}

/// The OpenAPI document of every route [`routes`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// The OpenAPI document (3.1) of this web service.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "page",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| openapi().to_pretty_json().unwrap_or_default());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        doc.as_str(),
    )
        .into_response()
}

/// Run `op` as `user` and decode its result.
pub(crate) async fn call<T: DeserializeOwned>(
    fe: &FrontEnd,
    user: i64,
    op: Op,
) -> Result<T, ApiError> {
    let name = op.name();
    let value = fe.call(user, op).await?;
    serde_json::from_value(value).map_err(|e| {
        tracing::error!(op = name, error = %e, "unexpected reply from the chat server");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "unexpected reply from the chat server",
        )
    })
}

/// Run `op` as `user`, ignoring its result.
pub(crate) async fn run(fe: &FrontEnd, user: i64, op: Op) -> Result<(), ApiError> {
    fe.call(user, op).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_route_with_its_methods() {
        let doc = openapi();
        let mut paths: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            vec![
                "/api/categories",
                "/api/categories/{id}",
                "/api/openapi.json",
                "/api/rooms",
                "/api/rooms/{id}",
                "/api/rooms/{id}/roles",
                "/api/rooms/{id}/{list}/{user}",
                "/api/users",
                "/rooms",
                "/rooms/app.css",
                "/rooms/app.js",
            ]
        );
        let room = &doc.paths.paths["/api/rooms/{id}"];
        assert!(room.get.is_some() && room.patch.is_some() && room.delete.is_some());
        let json = doc.to_json().expect("serialises");
        for schema in [
            "RoomInfo",
            "NewRoom",
            "RoomChanges",
            "RoomRoles",
            "CategoryInfo",
        ] {
            assert!(
                json.contains(&format!("\"{schema}\"")),
                "schema {schema} missing"
            );
        }
    }

    /// Every `$ref` in `value`.
    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match v.as_str() {
                        Some(target) if k == "$ref" => out.push(target.to_string()),
                        _ => refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_schema_the_document_names_is_in_it() {
        let doc = serde_json::to_value(openapi()).expect("serialises");
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {target}"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{target} is referenced but not defined"
            );
        }
    }
}
