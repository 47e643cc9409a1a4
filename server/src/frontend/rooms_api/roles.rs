//! A room's member lists: `GET /api/rooms/{id}/roles` (`room_roles`) and
//! `PUT`/`DELETE /api/rooms/{id}/{list}/{user}` (`set_role`), where `list` is `members`,
//! `managers` or `presenters` and `user` a user id or a sign-in name (looked up with
//! `find_users`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::ApiPath;
use super::{call, run, ErrorBody};
use crate::frontend::api::{ApiError, Caller};
use crate::frontend::FrontEnd;
use crate::protocol::reply::{RoomRoles, Users};
use crate::protocol::{ErrorCode, Op, RoleName};

/// One of a room's lists.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleList {
    /// Members: join, read and post (outside auditoriums).
    Members,
    /// Managers: change the room and its lists.
    Managers,
    /// Presenters: post in auditoriums.
    Presenters,
}

impl RoleList {
    fn role(self) -> RoleName {
        match self {
            RoleList::Members => RoleName::Member,
            RoleList::Managers => RoleName::Manager,
            RoleList::Presenters => RoleName::Presenter,
        }
    }
}

/// A user named in a path: an id, or else a sign-in name.
async fn user_id(fe: &FrontEnd, caller: i64, user: &str) -> Result<i64, ApiError> {
    if let Ok(id) = user.parse::<i64>() {
        return Ok(id);
    }
    let op = Op::FindUsers {
        query: user.to_string(),
        // Exact matches come first; names differing only in case match alike.
        limit: Some(10),
    };
    let found: Users = call(fe, caller, op).await?;
    found
        .users
        .into_iter()
        .find(|u| u.name == user)
        .map(|u| u.id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::UserNotFound,
                format!("no user named {user:?}"),
            )
        })
}

/// Who holds each role in a room (whoever may read the room, its managers, administrators).
#[utoipa::path(
    get,
    path = "/api/rooms/{id}/roles",
    tag = "roles",
    params(("id" = i64, Path, description = "Room id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The three lists, by user id", body = RoomRoles),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody),
        (status = 403, description = "A closed room the caller may not read, or a disabled one", body = ErrorBody),
        (status = 404, description = "No such room, or one the caller may not find", body = ErrorBody)
    )
)]
pub async fn get_roles(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    ApiPath(room): ApiPath<i64>,
) -> Result<Json<RoomRoles>, ApiError> {
    Ok(Json(call(&fe, user, Op::RoomRoles { room }).await?))
}

async fn set_role(
    fe: &FrontEnd,
    caller: i64,
    (room, list, user): (i64, RoleList, String),
    grant: bool,
) -> Result<StatusCode, ApiError> {
    let target = user_id(fe, caller, &user).await?;
    let op = Op::SetRole {
        room,
        user: target,
        role: list.role(),
        grant,
    };
    run(fe, caller, op).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Put a user on one of a room's lists (its managers and administrators). Idempotent.
#[utoipa::path(
    put,
    path = "/api/rooms/{id}/{list}/{user}",
    tag = "roles",
    params(
        ("id" = i64, Path, description = "Room id"),
        ("list" = RoleList, Path, description = "`members`, `managers` or `presenters`"),
        ("user" = String, Path, description = "User id, or sign-in name")
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The user is on the list"),
        (status = 400, description = "Bad room id or list name", body = ErrorBody),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody),
        (status = 403, description = "Not a manager of the room", body = ErrorBody),
        (status = 404, description = "No such room (or one the caller may not find), or no such user", body = ErrorBody)
    )
)]
pub async fn grant_role(
    State(fe): State<Arc<FrontEnd>>,
    Caller(caller): Caller,
    ApiPath(path): ApiPath<(i64, RoleList, String)>,
) -> Result<StatusCode, ApiError> {
    set_role(&fe, caller, path, true).await
}

/// Take a user off one of a room's lists (its managers and administrators). Idempotent.
#[utoipa::path(
    delete,
    path = "/api/rooms/{id}/{list}/{user}",
    tag = "roles",
    params(
        ("id" = i64, Path, description = "Room id"),
        ("list" = RoleList, Path, description = "`members`, `managers` or `presenters`"),
        ("user" = String, Path, description = "User id, or sign-in name")
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The user is not on the list"),
        (status = 400, description = "Bad room id or list name", body = ErrorBody),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody),
        (status = 403, description = "Not a manager of the room", body = ErrorBody),
        (status = 404, description = "No such room (or one the caller may not find), or no such user", body = ErrorBody)
    )
)]
pub async fn revoke_role(
    State(fe): State<Arc<FrontEnd>>,
    Caller(caller): Caller,
    ApiPath(path): ApiPath<(i64, RoleList, String)>,
) -> Result<StatusCode, ApiError> {
    set_role(&fe, caller, path, false).await
}
