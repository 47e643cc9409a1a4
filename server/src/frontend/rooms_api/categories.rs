//! `/api/categories` (`list_categories`, `create_category`, `update_category`) and the user
//! directory `/api/users` (`find_users`), which the page uses to add members by name.

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
use crate::protocol::reply::{Categories, CategoryInfo, Created, Users};
use crate::protocol::{CategoryPatch, CategorySpec, ErrorCode, Op};

fn yes() -> bool {
    true
}

/// A new category (`POST /api/categories`, administrators).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCategory {
    /// Unique name (1–256 bytes, not blank).
    pub name: String,
    /// Every user is allowed in its rooms (default true).
    #[serde(default = "yes")]
    pub allow_everyone: bool,
    /// Users allowed besides `allow_everyone`.
    #[serde(default)]
    pub allowed: Vec<i64>,
    /// Users who can never join its rooms (ethical wall).
    #[serde(default)]
    pub denied: Vec<i64>,
    /// Users who may create rooms in it.
    #[serde(default)]
    pub creators: Vec<i64>,
    /// Members added to its rooms get invitations (default true).
    #[serde(default = "yes")]
    pub invitations: bool,
    /// Files may be posted to its rooms (default true).
    #[serde(default = "yes")]
    pub file_upload: bool,
    /// Messages are stored (default true).
    #[serde(default = "yes")]
    pub history: bool,
}

/// Changes to a category (`PATCH /api/categories/{id}`, administrators); absent fields
/// stay as they are, lists are replaced whole. The name cannot change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryChanges {
    /// Every user is allowed.
    pub allow_everyone: Option<bool>,
    /// Replaces the allowed list.
    pub allowed: Option<Vec<i64>>,
    /// Replaces the denied list.
    pub denied: Option<Vec<i64>>,
    /// Replaces the creators list.
    pub creators: Option<Vec<i64>>,
    /// Invitations switch.
    pub invitations: Option<bool>,
    /// File upload switch.
    pub file_upload: Option<bool>,
    /// Chat history switch.
    pub history: Option<bool>,
}

/// Parameters of `GET /api/users`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Part of the sign-in name (case-insensitive); exact matches come first.
    pub name: Option<String>,
    /// At most this many users (default 20, 1–100).
    pub limit: Option<u32>,
}

/// One category as the caller sees it.
async fn category(fe: &FrontEnd, user: i64, id: i64) -> Result<CategoryInfo, ApiError> {
    let all: Categories = call(fe, user, Op::ListCategories).await?;
    all.categories
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::CategoryNotFound,
                format!("category {id} not found"),
            )
        })
}

/// The categories the caller may see (administrators: all, with their lists).
#[utoipa::path(
    get,
    path = "/api/categories",
    tag = "categories",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Categories by id", body = Categories),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody)
    )
)]
pub async fn list_categories(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
) -> Result<Json<Categories>, ApiError> {
    Ok(Json(call(&fe, user, Op::ListCategories).await?))
}

/// Create a category (administrators).
#[utoipa::path(
    post,
    path = "/api/categories",
    tag = "categories",
    request_body = NewCategory,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; `Location` names it", body = CategoryInfo),
        (status = 400, description = "Malformed body, unknown field, or bad name", body = ErrorBody),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "A listed user does not exist", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    )
)]
pub async fn create_category(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    ApiJson(new): ApiJson<NewCategory>,
) -> Result<Response, ApiError> {
    let spec = CategorySpec {
        name: new.name,
        allow_everyone: new.allow_everyone,
        allowed: new.allowed,
        denied: new.denied,
        creators: new.creators,
        invitations: new.invitations,
        file_upload: new.file_upload,
        history: new.history,
    };
    let created: Created = call(&fe, user, Op::CreateCategory(spec)).await?;
    let info = category(&fe, user, created.id).await?;
    let location = format!("/api/categories/{}", info.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(info),
    )
        .into_response())
}

/// One category, if the caller may see it.
#[utoipa::path(
    get,
    path = "/api/categories/{id}",
    tag = "categories",
    params(("id" = i64, Path, description = "Category id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The category", body = CategoryInfo),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody),
        (status = 404, description = "No such category, or one that does not admit the caller", body = ErrorBody)
    )
)]
pub async fn get_category(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CategoryInfo>, ApiError> {
    Ok(Json(category(&fe, user, id).await?))
}

/// Change a category (administrators).
#[utoipa::path(
    patch,
    path = "/api/categories/{id}",
    tag = "categories",
    params(("id" = i64, Path, description = "Category id")),
    request_body = CategoryChanges,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The category after the change", body = CategoryInfo),
        (status = 400, description = "Malformed body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody),
        (status = 403, description = "Not an administrator", body = ErrorBody),
        (status = 404, description = "No such category, or a listed user does not exist", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    )
)]
pub async fn update_category(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(changes): ApiJson<CategoryChanges>,
) -> Result<Json<CategoryInfo>, ApiError> {
    let patch = CategoryPatch {
        allow_everyone: changes.allow_everyone,
        allowed: changes.allowed,
        denied: changes.denied,
        creators: changes.creators,
        invitations: changes.invitations,
        file_upload: changes.file_upload,
        history: changes.history,
    };
    run(
        &fe,
        user,
        Op::UpdateCategory {
            category: id,
            patch,
        },
    )
    .await?;
    Ok(Json(category(&fe, user, id).await?))
}

/// Find users by name (any signed-in user), to add them to a room's lists.
#[utoipa::path(
    get,
    path = "/api/users",
    tag = "categories",
    params(UserQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Users, exact name matches first, then by id", body = Users),
        (status = 400, description = "Unknown or malformed parameter", body = ErrorBody),
        (status = 401, description = "Missing, forged or expired token", body = ErrorBody)
    )
)]
pub async fn find_users(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<Users>, ApiError> {
    let op = Op::FindUsers {
        query: q.name.unwrap_or_default(),
        limit: q.limit,
    };
    Ok(Json(call(&fe, user, op).await?))
}
