//! A virtual user's file operations: uploads to and downloads from the file web service
//! (docs/FILES.md) on the front end its WebSocket goes to, over HTTP on the same address.
//!
//! Each request goes over hyper's HTTP/1.1 client ([`super::http`]) on a connection of its
//! own (`Connection: close`), from the virtual user's source address. Bodies are streamed:
//! an upload is generated a buffer at a time ([`UploadBody`], one shared buffer sliced)
//! and a download is counted, so neither is ever held whole in memory. Each operation is
//! bounded by the scenario's `request_timeout`.
//!
//! An operation runs in its own task ([`spawn`]) beside the virtual user's socket loop,
//! which it must not block, and records into the user's slot when it ends: service time
//! from the moment it is started, response time from its intended start.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chatcap_server::protocol::files::{download_path, Files};
use http_body_util::Empty;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderName};
use hyper::{Method, Request};
use rand::rngs::SmallRng;
use rand::Rng;
use tokio::time::Instant;

use chatcap_server::tls::connect::upgrade;
use chatcap_server::tls::Connector;

use super::file_error::{malformed, FileOpError};
use super::http::{exchange, Response, MAX_KEPT};
use super::{Shared, SimUser};
use crate::metrics::{micros, Metric};
use crate::scenario::plan::OpKind;

/// Upload buffer size.
const CHUNK: usize = 16 * 1024;
/// Files listed to pick a download from (the newest).
const LIST_LIMIT: u32 = 20;
/// The multipart boundary; generated content never contains it.
const BOUNDARY: &str = "chatcap-load-boundary-7d1e4f0b9a2c";

/// How one front end's web services are reached.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its address: the one the virtual user's WebSocket goes to.
    pub addr: SocketAddr,
    /// The address to connect from (see `net::source_for`), or the kernel's choice.
    pub source: Option<IpAddr>,
    /// The `Host` header.
    pub host: String,
    /// `wss://` targets: the web services are `https://`, trusted through this.
    pub tls: Option<Connector>,
    /// Bound on each operation, from connecting to the last byte.
    pub timeout: Duration,
}

/// Whether a target URL is `wss://` (its web services are then `https://`).
fn is_wss(url: &str) -> bool {
    crate::wss::WsUrl::parse(url).is_ok_and(|u| u.tls)
}

/// The `Host` of a WebSocket URL (its authority), or the address when it has none.
pub fn host_of(url: &str, addr: &SocketAddr) -> String {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .filter(|h| !h.is_empty())
        .map_or_else(|| addr.to_string(), str::to_string)
}

/// A generated file: `size` bytes of a line naming its uploader, repeated.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The name it is uploaded as: `load-<user>-<n>.bin`.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The line it repeats.
    line: Vec<u8>,
}

impl Upload {
    /// File number `n` of `user`, of `kib` KiB.
    pub fn generated(user: i64, n: u32, kib: u32) -> Self {
        Upload {
            name: format!("load-{user}-{n}.bin"),
            size: u64::from(kib) * 1024,
            line: format!("chatcap load test file {n} of user {user}\n").into_bytes(),
        }
    }

    /// One write buffer of the content: whole lines, so that consecutive buffers continue
    /// the pattern.
    fn chunk(&self) -> Vec<u8> {
        let lines = (CHUNK / self.line.len()).max(1);
        self.line.repeat(lines)
    }

    /// The multipart form around the content: what comes before it, and after.
    fn framing(&self) -> (String, String) {
        // The name is ours (`load-…`), so it needs no quoting.
        let before = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n",
            self.name
        );
        (before, format!("\r\n--{BOUNDARY}--\r\n"))
    }
}

/// Upload `file` to `room` as the holder of `token` (201 expected).
pub async fn upload(
    at: &Endpoint,
    token: &str,
    room: i64,
    file: &Upload,
) -> Result<(), FileOpError> {
    let path = format!("/api/rooms/{room}/files");
    let body = UploadBody::new(file);
    let headers = [
        (
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        ),
        (header::CONTENT_LENGTH, body.left().to_string()),
    ];
    // A refusal may come (and the connection close) before the body is all sent: hyper
    // then returns the response, which says more than the failed write.
    bounded(at, async {
        request(at, Method::POST, &path, token, &headers, body)
            .await?
            .success()
            .map(|_| ())
    })
    .await
}

/// List `room`'s newest files, download the one `pick` chooses, and return its length;
/// `None` when the room has no file yet.
pub async fn download(
    at: &Endpoint,
    token: &str,
    room: i64,
    pick: u32,
) -> Result<Option<u64>, FileOpError> {
    bounded(at, async {
        let listed = get(
            at,
            &format!("/api/rooms/{room}/files?limit={LIST_LIMIT}"),
            token,
        )
        .await?;
        if listed.len > listed.body.len() as u64 {
            return Err(malformed("the file list is larger than expected"));
        }
        let files: Files = serde_json::from_slice(&listed.body)
            .map_err(|e| malformed(format!("file list: {e}")))?;
        if files.files.is_empty() {
            return Ok(None);
        }
        let file = &files.files[pick as usize % files.files.len()];
        let got = get(at, &download_path(room, &file.file), token).await?;
        if got.len != file.size {
            return Err(FileOpError::SizeMismatch {
                got: got.len,
                want: file.size,
            });
        }
        Ok(Some(got.len))
    })
    .await
}

async fn bounded<T>(
    at: &Endpoint,
    op: impl std::future::Future<Output = Result<T, FileOpError>>,
) -> Result<T, FileOpError> {
    tokio::time::timeout(at.timeout, op)
        .await
        .unwrap_or(Err(FileOpError::Timeout))
}

/// A GET, its response successful.
async fn get(at: &Endpoint, path: &str, token: &str) -> Result<Response, FileOpError> {
    request(at, Method::GET, path, token, &[], Empty::<Bytes>::new())
        .await?
        .success()
}

/// Connect and exchange one request (`extra`: more headers) with `body`.
async fn request<B>(
    at: &Endpoint,
    method: Method,
    path: &str,
    token: &str,
    extra: &[(HeaderName, String)],
    body: B,
) -> Result<Response, FileOpError>
where
    B: Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    // A token with a line break would smuggle headers: never send one.
    if token.chars().any(|c| c.is_ascii_control()) {
        return Err(malformed("the user's token has a control character"));
    }
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, &at.host)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONNECTION, "close");
    for (name, value) in extra {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(body)
        .map_err(|e| malformed(format!("request: {e}")))?;
    let tcp = super::net::connect(at.addr, at.source)
        .await
        .map_err(FileOpError::Connect)?;
    let stream = upgrade(at.tls.as_ref(), tcp)
        .await
        .map_err(FileOpError::Tls)?;
    exchange(stream, request, MAX_KEPT).await
}

/// An upload's multipart body, yielded a buffer at a time: the framing before the content,
/// the content (one generated buffer, sliced without copying), the framing after.
pub struct UploadBody {
    before: Option<Bytes>,
    chunk: Bytes,
    left: u64,
    after: Option<Bytes>,
}

impl UploadBody {
    /// The body of `file`.
    pub fn new(file: &Upload) -> Self {
        let (before, after) = file.framing();
        UploadBody {
            before: Some(Bytes::from(before)),
            chunk: Bytes::from(file.chunk()),
            left: file.size,
            after: Some(Bytes::from(after)),
        }
    }

    /// Bytes not yielded yet (all of them before the first frame: the `Content-Length`).
    pub fn left(&self) -> u64 {
        let framing = |b: &Option<Bytes>| b.as_ref().map_or(0, |b| b.len() as u64);
        framing(&self.before) + self.left + framing(&self.after)
    }
}

impl Body for UploadBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let next = if let Some(before) = this.before.take() {
            Some(before)
        } else if this.left > 0 {
            let n = usize::try_from(this.left)
                .unwrap_or(usize::MAX)
                .min(this.chunk.len());
            this.left -= n as u64;
            Some(this.chunk.slice(..n))
        } else {
            this.after.take()
        };
        Poll::Ready(next.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.left() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left())
    }
}

/// Start a file operation of connection `index` (of `user`) on `room`, in its own task
/// beside the connection's socket loop; it records into the connection's slot when it
/// ends. Nothing happens without a room (the user has none fit for the operation), and a
/// download from a room without files records nothing.
pub(super) fn spawn(
    shared: &Arc<Shared>,
    index: usize,
    user: &SimUser,
    op: OpKind,
    room: Option<i64>,
    intended: Instant,
    rng: &mut SmallRng,
) {
    let metric = match op {
        OpKind::FileUpload => Metric::FileUpload,
        OpKind::FileDownload => Metric::FileDownload,
        _ => return,
    };
    let Some(room) = room else {
        return;
    };
    let (addr, url) = shared.target(index);
    let at = Endpoint {
        addr: *addr,
        source: super::net::source_for(addr, index, shared.spread),
        host: host_of(url, addr),
        timeout: shared.plan.request_timeout,
        tls: shared.tls.clone().filter(|_| is_wss(url)),
    };
    let n: u32 = rng.gen();
    let file =
        (metric == Metric::FileUpload).then(|| Upload::generated(user.id, n, shared.plan.file_kb));
    let token = user.token.clone();
    let shared = Arc::clone(shared);
    let sent = Instant::now();
    tokio::spawn(async move {
        let done = match &file {
            Some(file) => upload(&at, &token, room, file).await.map(|()| true),
            None => download(&at, &token, room, n)
                .await
                .map(|got| got.is_some()),
        };
        let now = Instant::now();
        let mut rec = shared.recorders.slot(index);
        match done {
            Ok(true) => rec.ok(metric, micros(now - sent), micros(now - intended)),
            Ok(false) => {}
            Err(FileOpError::Timeout) => rec.timeout(metric),
            Err(e) => {
                tracing::debug!(error = %e, room, op = metric.name(), "file operation failed");
                rec.error(metric, &e.kind());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_the_urls_authority() {
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        assert_eq!(
            host_of("ws://chat.example:8080/ws", &addr),
            "chat.example:8080"
        );
        assert_eq!(host_of("ws://[::1]:80", &addr), "[::1]:80");
        assert_eq!(host_of("nonsense", &addr), "127.0.0.1:9");
    }

    #[test]
    fn generated_content_repeats_whole_lines_and_avoids_the_boundary() {
        let f = Upload::generated(42, 7, 3);
        assert_eq!((f.name.as_str(), f.size), ("load-42-7.bin", 3072));
        let chunk = f.chunk();
        assert!(chunk.len() <= CHUNK && chunk.len() % f.line.len() == 0);
        assert!(!String::from_utf8_lossy(&chunk).contains(BOUNDARY));
        let (before, after) = f.framing();
        assert!(before.contains("filename=\"load-42-7.bin\""));
        assert!(after.ends_with(&format!("--{BOUNDARY}--\r\n")));
    }

    #[tokio::test]
    async fn an_upload_body_is_the_framing_around_the_content() {
        use http_body_util::BodyExt;
        let f = Upload::generated(42, 7, 40);
        let body = UploadBody::new(&f);
        let length = body.left();
        let (before, after) = f.framing();
        assert_eq!(length, (before.len() + after.len()) as u64 + f.size);
        assert_eq!(body.size_hint().exact(), Some(length));
        let all = body.collect().await.expect("infallible").to_bytes();
        assert_eq!(all.len() as u64, length);
        assert!(all.starts_with(before.as_bytes()) && all.ends_with(after.as_bytes()));
        let content = &all[before.len()..all.len() - after.len()];
        assert_eq!(content.len() as u64, f.size);
        assert!(content.starts_with(&f.line));
    }
}
