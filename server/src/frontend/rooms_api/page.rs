//! The room-management web page: plain HTML, one script and one style sheet from
//! `frontend/web/`, embedded in the binary (no build step). The page asks for a token,
//! keeps it in the tab's `sessionStorage`, and does everything through `/api/…`.
//!
//! The page is public (it holds no data); the API behind it checks the token. A strict
//! Content-Security-Policy allows only this origin's script and style: the script builds
//! the page with DOM calls and `textContent`, never by pasting user text into HTML.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const HTML: &str = include_str!("../web/rooms.html");
const SCRIPT: &str = include_str!("../web/rooms.js");
const STYLE: &str = include_str!("../web/rooms.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; form-action 'none'; \
                   frame-ancestors 'none'; base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The room-management page.
#[utoipa::path(
    get,
    path = "/rooms",
    tag = "page",
    responses((status = 200, description = "The page", content_type = "text/html"))
)]
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", HTML)
}

/// The page's script.
#[utoipa::path(
    get,
    path = "/rooms/app.js",
    tag = "page",
    responses((status = 200, description = "The script", content_type = "text/javascript"))
)]
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The page's style sheet.
#[utoipa::path(
    get,
    path = "/rooms/app.css",
    tag = "page",
    responses((status = 200, description = "The style sheet", content_type = "text/css"))
)]
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
