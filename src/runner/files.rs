//! A virtual user's file operations: uploads to and downloads from the file web service
//! (docs/FILES.md) on the front end its WebSocket goes to, over HTTP on the same address.
//!
//! A minimal HTTP/1.1 client over a [`TcpStream`]: one request per connection
//! (`Connection: close`), the response's status line and headers read within a bound, its
//! body delimited by `Content-Length`, chunked transfer coding, or the end of the
//! connection. Bodies are streamed: an upload is generated chunk by chunk and a download
//! is counted, so neither is ever held whole in memory; only small bodies (file lists,
//! error replies) are kept. Each operation is bounded by the scenario's `request_timeout`.
//!
//! An operation runs in its own task ([`spawn`]) beside the virtual user's socket loop,
//! which it must not block, and records into the user's slot when it ends: service time
//! from the moment it is started, response time from its intended start.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chatcap_server::protocol::files::{download_path, Files};
use rand::rngs::SmallRng;
use rand::Rng;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::vu::micros;
use super::{Shared, SimUser};
use crate::metrics::Metric;
use crate::scenario::plan::OpKind;

/// Most bytes of a response head (status line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Most bytes of one chunk-size or trailer line of a chunked body.
const MAX_LINE: usize = 4 * 1024;
/// Most bytes of a response body kept (file lists, error replies); the rest is counted.
const MAX_KEPT: usize = 1 << 20;
/// Read and write buffer size.
const CHUNK: usize = 16 * 1024;
/// Files listed to pick a download from (the newest).
const LIST_LIMIT: u32 = 20;
/// The multipart boundary; generated content never contains it.
const BOUNDARY: &str = "chatcap-load-boundary-7d1e4f0b9a2c";

/// Why a file operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FileOpError {
    /// No TCP connection to the front end.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The connection failed during the exchange.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// No complete answer within the request timeout.
    #[error("no complete answer within the request timeout")]
    Timeout,
    /// The response ended before it was complete.
    #[error("the response ended early")]
    Truncated,
    /// The response is not well-formed HTTP/1.1 or not what the service answers.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The service refused: the HTTP status and the `code` of the JSON error body.
    #[error("HTTP {status} ({code})")]
    Refused {
        /// The status.
        status: u16,
        /// The error code (docs/PROTOCOL.md §5), empty when the body has none.
        code: String,
    },
    /// A download's length differs from the size the file list gives.
    #[error("downloaded {got} bytes of a {want}-byte file")]
    SizeMismatch {
        /// Bytes received.
        got: u64,
        /// The file's size.
        want: u64,
    },
}

impl FileOpError {
    /// The kind counted in the report's errors by kind: the service's error code when it
    /// gave one (`forbidden`, `busy`, `too_large`…), the connection's failure otherwise.
    pub fn kind(&self) -> Cow<'_, str> {
        match self {
            FileOpError::Connect(_) => "connect_failed".into(),
            FileOpError::Io(_) => "disconnect".into(),
            FileOpError::Timeout => "timeout".into(),
            FileOpError::Truncated => "truncated_reply".into(),
            FileOpError::Malformed(_) => "unparsable_reply".into(),
            FileOpError::Refused { code, .. } if !code.is_empty() => code.as_str().into(),
            FileOpError::Refused { status, .. } => format!("http_{status}").into(),
            FileOpError::SizeMismatch { .. } => "size_mismatch".into(),
        }
    }
}

fn malformed(what: impl Into<String>) -> FileOpError {
    FileOpError::Malformed(what.into())
}

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

/// A response: its status, its body's length, and the body's first [`MAX_KEPT`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Body bytes received.
    pub len: u64,
    /// The start of the body (all of it when small).
    pub body: Vec<u8>,
}

impl Response {
    /// Self when the status is 2xx; otherwise the refusal, with the error body's `code`.
    fn success(self) -> Result<Self, FileOpError> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            code: String,
        }
        let code = serde_json::from_slice::<ErrorBody>(&self.body)
            .map(|e| e.code)
            .unwrap_or_default();
        Err(FileOpError::Refused {
            status: self.status,
            code,
        })
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

/// Where a body goes: counted, and its first `keep` bytes kept.
struct Sink {
    kept: Vec<u8>,
    keep: usize,
    len: u64,
}

impl Sink {
    fn take(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        let room = self.keep.saturating_sub(self.kept.len()).min(bytes.len());
        self.kept.extend_from_slice(&bytes[..room]);
    }
}

/// Read one response from `reader`, keeping at most `keep` bytes of its body.
pub async fn read_response<R: AsyncRead + Unpin>(
    reader: R,
    keep: usize,
) -> Result<Response, FileOpError> {
    let mut r = BufReader::with_capacity(CHUNK, reader);
    let mut budget = MAX_HEAD;
    let status = parse_status(&read_line(&mut r, &mut budget).await?)?;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut coded = false;
    loop {
        let line = read_line(&mut r, &mut budget).await?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("header line without a colon: {line:?}")))?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| malformed(format!("Content-Length {value:?}")))?;
            if length.is_some_and(|l| l != n) {
                return Err(malformed("two different Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // RFC 9112 §6.3: chunked when it is the last coding; any other coding runs
            // to the end of the connection. Either way Content-Length is ignored.
            coded = true;
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    let mut sink = Sink {
        kept: Vec::new(),
        keep,
        len: 0,
    };
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    match length {
        _ if bodiless => {}
        _ if chunked => read_chunked(&mut r, &mut sink).await?,
        Some(n) if !coded => copy_exact(&mut r, n, &mut sink).await?,
        _ => copy_to_end(&mut r, &mut sink).await?,
    }
    Ok(Response {
        status,
        len: sink.len,
        body: sink.kept,
    })
}

/// `HTTP/1.x NNN reason` → NNN.
fn parse_status(line: &str) -> Result<u16, FileOpError> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(malformed(format!("status line {line:?}")));
    }
    code.parse::<u16>()
        .ok()
        .filter(|c| (100..600).contains(c))
        .ok_or_else(|| malformed(format!("status line {line:?}")))
}

/// One line without its CRLF (or LF), taking its length from `budget`.
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    budget: &mut usize,
) -> Result<String, FileOpError> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Err(FileOpError::Truncated);
        }
        let (n, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if n > *budget {
            return Err(malformed("a response line or head is too long"));
        }
        *budget -= n;
        line.extend_from_slice(&buf[..n]);
        r.consume(n);
        if done {
            break;
        }
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Exactly `n` body bytes.
async fn copy_exact<R: AsyncBufRead + Unpin>(
    r: &mut R,
    mut n: u64,
    sink: &mut Sink,
) -> Result<(), FileOpError> {
    while n > 0 {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Err(FileOpError::Truncated);
        }
        let take = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
        sink.take(&buf[..take]);
        r.consume(take);
        n -= take as u64;
    }
    Ok(())
}

/// Body bytes up to the end of the connection.
async fn copy_to_end<R: AsyncBufRead + Unpin>(
    r: &mut R,
    sink: &mut Sink,
) -> Result<(), FileOpError> {
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(());
        }
        let n = buf.len();
        sink.take(buf);
        r.consume(n);
    }
}

/// A chunk-size or trailer line.
async fn chunk_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<String, FileOpError> {
    let mut budget = MAX_LINE;
    read_line(r, &mut budget).await
}

/// A chunked body (RFC 9112 §7.1): sized chunks, a zero chunk, trailers, an empty line.
async fn read_chunked<R: AsyncBufRead + Unpin>(
    r: &mut R,
    sink: &mut Sink,
) -> Result<(), FileOpError> {
    loop {
        let line = chunk_line(r).await?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size =
            u64::from_str_radix(hex, 16).map_err(|_| malformed(format!("chunk size {hex:?}")))?;
        if size == 0 {
            while !chunk_line(r).await?.is_empty() {}
            return Ok(());
        }
        copy_exact(r, size, sink).await?;
        if !chunk_line(r).await?.is_empty() {
            return Err(malformed("a chunk is longer than its size"));
        }
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

    async fn parse(text: &[u8]) -> Result<Response, FileOpError> {
        read_response(text, 64).await
    }

    #[tokio::test]
    async fn a_body_is_delimited_by_content_length() {
        let r = parse(b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\nX: y\r\n\r\nhelloEXTRA")
            .await
            .expect("parsed");
        assert_eq!(
            r,
            Response {
                status: 201,
                len: 5,
                body: b"hello".to_vec()
            }
        );
    }

    #[tokio::test]
    async fn a_large_body_is_counted_not_kept() {
        let mut text = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 100_000));
        let r = parse(&text).await.expect("parsed");
        assert_eq!((r.status, r.len, r.body.len()), (200, 100_000, 64));
    }

    #[tokio::test]
    async fn a_chunked_body_is_decoded_with_extensions_and_trailers() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 1\r\n\r\n\
              5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: x\r\n\r\n",
        )
        .await
        .expect("parsed");
        assert_eq!((r.len, r.body.as_slice()), (6, b"hello!".as_slice()));
    }

    #[tokio::test]
    async fn without_a_length_the_body_runs_to_the_end() {
        let r = parse(b"HTTP/1.0 200 OK\nServer: x\n\nall of it")
            .await
            .expect("parsed");
        assert_eq!((r.len, r.body.as_slice()), (9, b"all of it".as_slice()));
        let r = parse(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .expect("parsed");
        assert_eq!(r.len, 0);
    }

    #[tokio::test]
    async fn a_short_body_or_head_is_truncated() {
        for text in [
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort".as_slice(),
            b"HTTP/1.1 200 OK\r\nContent-Le".as_slice(),
            b"".as_slice(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel".as_slice(),
        ] {
            let e = parse(text).await.expect_err("truncated");
            assert!(matches!(e, FileOpError::Truncated), "{e:?}");
        }
    }

    #[tokio::test]
    async fn malformed_responses_are_refused() {
        let big_header = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        for text in [
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 999 Nope\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
            big_header.as_str(),
        ] {
            let e = parse(text.as_bytes()).await.expect_err(text);
            assert!(matches!(e, FileOpError::Malformed(_)), "{text:?}: {e:?}");
            assert_eq!(e.kind(), "unparsable_reply");
        }
    }

    #[tokio::test]
    async fn a_refusal_carries_the_status_and_code() {
        let body = r#"{"code":"forbidden","message":"no"}"#;
        let text = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let e = read_response(text.as_bytes(), MAX_KEPT)
            .await
            .expect("parsed")
            .success()
            .expect_err("a refusal");
        assert!(matches!(e, FileOpError::Refused { status: 403, .. }));
        assert_eq!(e.kind(), "forbidden");
        let e = parse(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 2\r\n\r\nno")
            .await
            .expect("parsed")
            .success()
            .expect_err("a refusal");
        assert_eq!(e.kind(), "http_502");
    }

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
