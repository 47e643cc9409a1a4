//! The file upload/download web service (docs/FILES.md), on the front end:
//!
//! - `POST /api/rooms/{room}/files` — `multipart/form-data` with one `file` part: the
//!   rights are checked (`file_begin`) before the body is read; the part is streamed to the
//!   file store chunk by chunk, counted, and cut off with 413 as soon as it passes
//!   MaxFileSizeKB; then fsynced, moved into place, and committed (`file_commit`), which
//!   announces it in the room. 201 with the file's metadata.
//! - `GET /api/rooms/{room}/files` — the room's files, newest first (`file_list`).
//! - `GET /api/rooms/{room}/files/{file}` — the bytes, streamed from the file store, for a
//!   user who may read the room (`file_info`, recorded as FILEDOWNLOAD).
//!
//! Every decision about rights is the chat server's, reached with [`FrontEnd::call`]; this
//! file moves bytes and maps refusals to HTTP (see [`super::api`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio_util::io::ReaderStream;

use super::api::{ApiError, Caller};
use super::file_store::{FileStore, WriteError};
use super::{CallError, FrontEnd};
use crate::protocol::files::{
    check_file_name, download_path, FileBegun, Files, StoredFile, StoredName,
};
use crate::protocol::{ErrorCode, Op};

/// Room for the multipart framing around the file (boundaries, part headers, small
/// fields) in the request body limit.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// The name of the form part that carries the file.
const FILE_PART: &str = "file";

/// The file service's routes (merged into the front end's router). Only the upload route
/// accepts a body above axum's 2 MB default: MaxFileSizeKB plus the multipart framing.
pub fn routes(fe: &FrontEnd) -> Router<Arc<FrontEnd>> {
    let body_limit =
        usize::try_from(max_bytes(fe).saturating_add(MULTIPART_OVERHEAD)).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/api/rooms/{room}/files",
            post(upload)
                .layer(DefaultBodyLimit::max(body_limit))
                .get(list),
        )
        .route("/api/rooms/{room}/files/{file}", get(download))
}

/// MaxFileSizeKB in bytes.
fn max_bytes(fe: &FrontEnd) -> u64 {
    fe.config.max_file_kb.saturating_mul(1024)
}

fn file_store(fe: &FrontEnd) -> Result<&FileStore, ApiError> {
    fe.file_store.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy,
            "this front end has no file store",
        )
    })
}

fn room_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("room id {raw:?} is not a number")))
}

fn too_large(fe: &FrontEnd) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::TooLarge,
        format!(
            "the file is larger than the limit of {} KB (MaxFileSizeKB)",
            fe.config.max_file_kb
        ),
    )
}

fn store_failed(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "file store failure");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "the file store is unavailable",
    )
}

/// A body that is not well-formed multipart is 400; one past the body limit is 413.
fn multipart_error(fe: &FrontEnd, e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(fe);
    }
    ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
}

/// Decode a web-service call's result.
fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| {
        tracing::error!(error = %e, "chat server answered in an unexpected shape");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::Internal,
            "unexpected answer from the chat server",
        )
    })
}

async fn upload(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    Path(room): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let store = file_store(&fe)?;
    let room = room_id(&room)?;
    // Rights and the category's switch before a byte of the body is read.
    let begun: FileBegun = decode(fe.call(user, Op::FileBegin { room }).await?)?;
    let max = max_bytes(&fe);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(too_large(&fe));
    }
    let mut multipart = Multipart::from_request(request, &fe)
        .await
        .map_err(|r| ApiError::bad_request(r.body_text()))?;
    let mut field = loop {
        match multipart.next_field().await {
            Ok(Some(f)) if f.name() == Some(FILE_PART) => break f,
            // Other form fields are skipped (read and dropped, within the body limit).
            Ok(Some(_)) => continue,
            Ok(None) => {
                return Err(ApiError::bad_request(
                    "the form has no `file` part (multipart/form-data, name=\"file\")",
                ))
            }
            Err(e) => return Err(multipart_error(&fe, e)),
        }
    };
    let name = field
        .file_name()
        .ok_or_else(|| ApiError::bad_request("the `file` part has no filename"))?
        .to_string();
    check_file_name(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let stored = StoredName::new(&begun.file_id, &name).ok_or_else(|| {
        tracing::error!(id = %begun.file_id, "chat server handed out a malformed file id");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::Internal,
            "unexpected answer from the chat server",
        )
    })?;
    // Streamed: one chunk in memory at a time; dropping `incoming` on any early return
    // (too large, broken body, client gone) deletes the partial file.
    let mut incoming = store
        .incoming(&begun.file_id, max)
        .await
        .map_err(store_failed)?;
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => match incoming.write(&chunk).await {
                Ok(()) => {}
                Err(WriteError::TooLarge { .. }) => return Err(too_large(&fe)),
                Err(WriteError::Io(e)) => return Err(store_failed(e)),
            },
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&fe, e)),
        }
    }
    drop(field);
    // The body must end properly: a truncated or over-full form is refused whole.
    match multipart.next_field().await {
        Ok(None) => {}
        Ok(Some(_)) => {
            return Err(ApiError::bad_request(
                "one `file` part per request, and it must be the last part",
            ))
        }
        Err(e) => return Err(multipart_error(&fe, e)),
    }
    let written = incoming
        .finish(store, &stored)
        .await
        .map_err(store_failed)?;
    let commit = Op::FileCommit {
        room,
        file: stored.to_string(),
        name,
        size: written.size,
        sha256: written.sha256,
    };
    let committed: StoredFile = match fe.call(user, commit).await {
        Ok(v) => decode(v)?,
        Err(CallError::Refused(e)) => {
            // Refused for sure (rights changed during the upload…): nothing refers to it.
            store.remove(&stored).await;
            return Err(e.into());
        }
        // The commit may or may not have happened: the file is kept (docs/FILES.md).
        Err(e) => return Err(e.into()),
    };
    let location =
        HeaderValue::from_str(&download_path(room, stored.as_str())).map_err(store_failed)?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(committed),
    )
        .into_response())
}

/// `GET /api/rooms/{room}/files?limit=N`.
#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<u32>,
}

async fn list(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    Path(room): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Files>, ApiError> {
    let room = room_id(&room)?;
    let Query(q) = query.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let files = decode(
        fe.call(
            user,
            Op::FileList {
                room,
                limit: q.limit,
            },
        )
        .await?,
    )?;
    Ok(Json(files))
}

async fn download(
    State(fe): State<Arc<FrontEnd>>,
    Caller(user): Caller,
    Path((room, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = file_store(&fe)?;
    let room = room_id(&room)?;
    let stored = StoredName::parse(&file).ok_or_else(|| {
        ApiError::bad_request(format!("{file:?} is not a file name of this service"))
    })?;
    let info: StoredFile = decode(
        fe.call(
            user,
            Op::FileInfo {
                room,
                file: stored.to_string(),
            },
        )
        .await?,
    )?;
    let (reader, len) = match store.open(&stored).await {
        Ok(opened) => opened,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::error!(file = %stored, room, "file known to the chat server but not in the file store");
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::FileNotFound,
                format!("file {stored} is missing from the file store"),
            ));
        }
        Err(e) => return Err(store_failed(e)),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&info.name)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", info.sha256)) {
        headers.insert(header::ETAG, v);
    }
    let body = Body::from_stream(ReaderStream::new(reader));
    Ok((StatusCode::OK, headers, body).into_response())
}

/// `attachment` with the original name twice (RFC 6266): an ASCII `filename` fallback
/// (anything else, quotes and backslashes become `_`) and the exact UTF-8 name in
/// `filename*`, percent-encoded (RFC 8187).
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        let attr_char = b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b);
        if attr_char {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_quotes_safely() {
        assert_eq!(
            content_disposition("a b.txt"),
            "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt"
        );
        assert_eq!(
            content_disposition("r\"é;.pdf"),
            "attachment; filename=\"r__;.pdf\"; filename*=UTF-8''r%22%C3%A9%3B.pdf"
        );
    }
}
