//! `/api/rooms` and `/api/rooms/{id}`: list and search rooms, create, read, change and
//! delete one. Each maps to one chat-protocol operation (`list_rooms`, `create_room`,
//! `room_info`, `update_room`, `delete_room`); a change answers with the room as it is
//! afterwards (a second call, `room_info`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{call, run, ErrorBody};
use crate::frontend::api::{ApiError, Caller};
use crate::frontend::FrontEnd;
use crate::protocol::reply::Rooms;
use crate::protocol::{Op, Privacy, RoomInfo, RoomKind, RoomPatch, RoomSpec};

/// Search parameters of `GET /api/rooms`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RoomQuery {
    /// Part of the room's name (case-insensitive).
    pub name: Option<String>,
    /// Only rooms of this category.
    pub category: Option<i64>,
    /// Only rooms where the caller holds a role (member, manager or presenter).
    pub mine: Option<bool>,
    /// At most this many rooms (default 100, 1–1000).
    pub limit: Option<u32>,
}

fn yes() -> bool {
    true
}

/// A new room (`POST /api/rooms`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoom {
    /// Unique name in the pool (1–256 bytes, not blank).
    pub name: String,
    /// Category id; the caller must be one of its creators, or an administrator.
    pub category: i64,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// `normal` (default) or `auditorium` (only presenters post).
    #[serde(default)]
    pub kind: RoomKind,
    /// `open`, `closed` (default) or `secret`.
    #[serde(default)]
    pub privacy: Privacy,
    /// An add-in URL.
    #[serde(default)]
    pub addin_url: Option<String>,
    /// Invitations inherit the category's switch (true, default) or are off.
    #[serde(default = "yes")]
    pub invitations: bool,
}

/// Changes to a room (`PATCH /api/rooms/{id}`); absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomChanges {
    /// New unique name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New type.
    pub kind: Option<RoomKind>,
    /// New privacy.
    pub privacy: Option<Privacy>,
    /// Disable (joined members are disconnected, the room is hidden) or enable.
    pub disabled: Option<bool>,
    /// New add-in URL; `""` removes it.
    pub addin_url: Option<String>,
    /// Invitations inherit (true) or off (false).
    pub invitations: Option<bool>,
}

/// List or search the rooms the caller may find (secret rooms only for their members).
#[utoipa::path(
    get,
    path = "/api/rooms",
    tag = "rooms",
    params(RoomQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rooms by id", body = Rooms),
        (status = 400, description = "Unknown or malformed parameter", body = ErrorBody),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody)
    )
)]
pub async fn list_rooms(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<RoomQuery>,
) -> Result<Json<Rooms>, ApiError> {
    let op = Op::ListRooms {
        query: q.name,
        category: q.category,
        mine: q.mine,
        limit: q.limit,
    };
    Ok(Json(call(&fe, user, op).await?))
}

/// Create a room; the caller becomes its manager and member.
#[utoipa::path(
    post,
    path = "/api/rooms",
    tag = "rooms",
    request_body = NewRoom,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; `Location` names it", body = RoomInfo),
        (status = 400, description = "Malformed body, unknown field, or bad name", body = ErrorBody),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody),
        (status = 403, description = "Not a creator in the category", body = ErrorBody),
        (status = 404, description = "No such category", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    )
)]
pub async fn create_room(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    ApiJson(new): ApiJson<NewRoom>,
) -> Result<Response, ApiError> {
    let spec = RoomSpec {
        name: new.name,
        category: new.category,
        description: new.description,
        kind: new.kind,
        privacy: new.privacy,
        addin_url: new.addin_url,
        invitations: new.invitations,
    };
    let created: crate::protocol::reply::Created = call(&fe, user, Op::CreateRoom(spec)).await?;
    let info: RoomInfo = call(&fe, user, Op::RoomInfo { room: created.id }).await?;
    let location = format!("/api/rooms/{}", info.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(info),
    )
        .into_response())
}

/// A room's settings and the caller's roles in it.
#[utoipa::path(
    get,
    path = "/api/rooms/{id}",
    tag = "rooms",
    params(("id" = i64, Path, description = "Room id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The room", body = RoomInfo),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody),
        (status = 404, description = "No such room, or one the caller may not find", body = ErrorBody)
    )
)]
pub async fn get_room(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    ApiPath(room): ApiPath<i64>,
) -> Result<Json<RoomInfo>, ApiError> {
    Ok(Json(call(&fe, user, Op::RoomInfo { room }).await?))
}

/// Change a room (its managers and administrators).
#[utoipa::path(
    patch,
    path = "/api/rooms/{id}",
    tag = "rooms",
    params(("id" = i64, Path, description = "Room id")),
    request_body = RoomChanges,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The room after the change", body = RoomInfo),
        (status = 400, description = "Malformed body, unknown field, or bad name", body = ErrorBody),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody),
        (status = 403, description = "Not a manager of the room", body = ErrorBody),
        (status = 404, description = "No such room, or one the caller may not find", body = ErrorBody),
        (status = 409, description = "The new name is taken", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    )
)]
pub async fn update_room(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    ApiPath(room): ApiPath<i64>,
    ApiJson(changes): ApiJson<RoomChanges>,
) -> Result<Json<RoomInfo>, ApiError> {
    let patch = RoomPatch {
        name: changes.name,
        description: changes.description,
        kind: changes.kind,
        privacy: changes.privacy,
        disabled: changes.disabled,
        addin_url: changes.addin_url,
        invitations: changes.invitations,
    };
    run(&fe, user, Op::UpdateRoom { room, patch }).await?;
    Ok(Json(call(&fe, user, Op::RoomInfo { room }).await?))
}

/// Delete a room and its history (administrators).
#[utoipa::path(
    delete,
    path = "/api/rooms/{id}",
    tag = "rooms",
    params(("id" = i64, Path, description = "Room id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "No such room, or one the caller may not find", body = ErrorBody)
    )
)]
pub async fn delete_room(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    ApiPath(room): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    // `delete_room` refuses non-administrators before looking the room up; asking for the
    // room first makes a room the caller may not find a 404 here too, as on every route.
    run(&fe, user, Op::RoomInfo { room }).await?;
    run(&fe, user, Op::DeleteRoom { room }).await?;
    Ok(StatusCode::NO_CONTENT)
}
