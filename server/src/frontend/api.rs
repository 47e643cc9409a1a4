//! What every web service of the front end shares: who is calling (a bearer token,
//! checked like a sign-in), and how a refusal becomes an HTTP reply.
//!
//! Each user's calls are rate-limited like a WebSocket session's (`front.rate_per_sec`,
//! `front.rate_burst`, per user across their calls): beyond, 429 `rate_limited`.
//!
//! Errors are JSON `{"code": "...", "message": "..."}` with the protocol's error codes, so
//! a web client and a chat client read the same vocabulary. Status codes: 400 bad input,
//! 401 bad or expired token, 403 no right (on a room the caller may see), 404 unknown —
//! and also a secret room the caller may not see, so that its existence does not leak —,
//! 409 conflict, 413 too large, 429 rate limited, 503 busy or no chat server.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{CallError, FrontEnd, VerifyError};
use crate::auth::TokenError;
use crate::protocol::{ErrorCode, WireError};
use crate::telemetry::catalog;

/// An error reply of a web service.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The protocol's code and a human message.
    pub error: WireError,
}

impl ApiError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            error: WireError::new(code, message),
        }
    }

    /// 400 with `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }
}

/// The HTTP status a protocol error reads as.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::UnknownType | ErrorCode::InvalidArgument => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::NotSignedIn | ErrorCode::InvalidToken | ErrorCode::TokenExpired => {
            StatusCode::UNAUTHORIZED
        }
        ErrorCode::Forbidden | ErrorCode::RoomDisabled | ErrorCode::NotJoined => {
            StatusCode::FORBIDDEN
        }
        ErrorCode::RoomNotFound
        | ErrorCode::CategoryNotFound
        | ErrorCode::UserNotFound
        | ErrorCode::MessageNotFound
        | ErrorCode::FileNotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadySignedIn | ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<WireError> for ApiError {
    fn from(error: WireError) -> Self {
        Self {
            status: status_of(error.code),
            error,
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        e.wire().into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({
            "code": self.error.code,
            "message": self.error.message,
        }));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
        }
        response
    }
}

/// The authenticated caller of a web service: `Authorization: Bearer <token>`, the same
/// token a client signs in with.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub i64);

impl FromRequestParts<Arc<FrontEnd>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        fe: &Arc<FrontEnd>,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized =
            |code, m: &str| ApiError::new(StatusCode::UNAUTHORIZED, code, m.to_string());
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            unauthorized(
                ErrorCode::InvalidToken,
                "missing Authorization: Bearer <token>",
            )
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                unauthorized(
                    ErrorCode::InvalidToken,
                    "Authorization must be: Bearer <token>",
                )
            })?;
        match fe.verify(token.trim()) {
            Ok(user) if !fe.web_call_allowed(user) => {
                metrics::counter!(catalog::ERRORS.name, "code" => "rate_limited").increment(1);
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::RateLimited,
                    "too many requests; slow down",
                ))
            }
            Ok(user) => Ok(Caller(user)),
            Err(VerifyError::NotReady) => Err(CallError::Unavailable.into()),
            Err(VerifyError::Token(TokenError::Expired)) => Err(unauthorized(
                ErrorCode::TokenExpired,
                "the token has expired",
            )),
            Err(VerifyError::Token(TokenError::Invalid)) => Err(unauthorized(
                ErrorCode::InvalidToken,
                "the token is malformed or forged",
            )),
        }
    }
}
