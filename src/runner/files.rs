//! A virtual user's file operations: uploads to and downloads from the file web service
//! (docs/FILES.md) on the front end its WebSocket goes to, over HTTP on the same address.
//!
//! A minimal HTTP/1.1 client over a [`TcpStream`]: one request per connection
//! (`Connection: close`); the response is read by [`super::http_reply`]. Bodies are
//! streamed: an upload is generated chunk by chunk and a download is counted, so neither
//! is ever held whole in memory. Each operation is bounded by the scenario's
//! `request_timeout`.
//!
//! An operation runs in its own task ([`spawn`]) beside the virtual user's socket loop,
//! which it must not block, and records into the user's slot when it ends: service time
//! from the moment it is started, response time from its intended start.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chatcap_server::protocol::files::{download_path, Files};
use rand::rngs::SmallRng;
use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::file_error::{malformed, FileOpError};
use super::http_reply::{read_response, Response, CHUNK, MAX_KEPT};
use super::{Shared, SimUser};
use crate::metrics::{micros, Metric};
use crate::scenario::plan::OpKind;

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
    /// Bound on each operation, from connecting to the last byte.
    pub timeout: Duration,
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
    let (before, after) = file.framing();
    let length = before.len() as u64 + file.size + after.len() as u64;
    let head = format!(
        "Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n"
    );
    bounded(at, async {
        let mut stream = request(at, "POST", &path, token, &head).await?;
        // A refusal may come (and the connection close) before the body is all sent: the
        // response, when there is one, says more than the failed write.
        let sent = write_upload(&mut stream, file, &before, &after).await;
        match read_response(&mut stream, MAX_KEPT).await {
            Ok(r) => r.success().map(|_| ()),
            Err(e) => Err(sent.err().map_or(e, FileOpError::Io)),
        }
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
    let mut stream = request(at, "GET", path, token, "").await?;
    read_response(&mut stream, MAX_KEPT).await?.success()
}

/// Connect and send a request head (`extra`: more header lines, each ending in CRLF).
async fn request(
    at: &Endpoint,
    method: &str,
    path: &str,
    token: &str,
    extra: &str,
) -> Result<TcpStream, FileOpError> {
    // A token with a line break would smuggle headers: never send one.
    if token.chars().any(|c| c.is_ascii_control()) {
        return Err(malformed("the user's token has a control character"));
    }
    let mut stream = super::net::connect(at.addr, at.source)
        .await
        .map_err(FileOpError::Connect)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n{extra}\r\n",
        at.host
    );
    stream.write_all(head.as_bytes()).await?;
    Ok(stream)
}

/// The multipart body: framing, then the content a buffer at a time.
async fn write_upload(
    stream: &mut TcpStream,
    file: &Upload,
    before: &str,
    after: &str,
) -> std::io::Result<()> {
    stream.write_all(before.as_bytes()).await?;
    let chunk = file.chunk();
    let mut left = file.size;
    while left > 0 {
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
        stream.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    stream.write_all(after.as_bytes()).await?;
    stream.flush().await
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
}
