//! One HTTP/1.1 exchange for the load generator's file operations and `/metrics` scrapes,
//! over hyper's client connection (`hyper::client::conn::http1`): one request on a TCP
//! connection the caller opened (`Connection: close`), the request body streamed as the
//! caller's [`Body`] yields it, and the response body counted frame by frame with only its
//! first bytes kept, so a download is never held whole in memory. hyper parses the head,
//! `Content-Length`, chunked coding and bodiless statuses; this module maps its failures
//! onto [`FileOpError`]'s kinds (a cut-off body is `Truncated`, a parse error `Malformed`).
//!
//! Not hyper-util's pooled `Client`: every operation connects from its virtual user's own
//! source address (`net::source_for`) and is measured from connecting to the last byte,
//! as before; the connection future is driven here, beside the exchange, so that a
//! timeout dropping the exchange drops the connection too (no task left behind).
//!
//! Measured against the hand-written client it replaces (docs/BENCHMARKS.md, "File
//! operations: hyper's client"): the generator spends about 0.2 ms more CPU per file
//! operation (0.83–0.91 against 0.67–0.69 ms for a list + 100 KiB download or a 100 KiB
//! upload), a cost that does not matter: the Lync 2013 model has no file operations, and
//! even `scenarios/file-heavy.toml` asks for a few per second.

use std::error::Error as StdError;
use std::io::ErrorKind;

use bytes::Bytes;
use chatcap_server::tls::Stream;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::Request;
use hyper_util::rt::TokioIo;

use super::file_error::{malformed, FileOpError};

/// Most bytes of a response body kept (file lists, error replies); the rest is counted.
pub const MAX_KEPT: usize = 1 << 20;

/// A response: its status, its body's length, and the body's first bytes (up to the
/// `keep` given to [`exchange`]).
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
    pub fn success(self) -> Result<Self, FileOpError> {
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

/// Send `request` on `stream` and read the response, keeping at most `keep` bytes of its
/// body. The caller sets every header (`Host`, `Connection: close`…): hyper's connection
/// adds none but the body's framing.
pub async fn exchange<B>(
    stream: Stream,
    request: Request<B>,
    keep: usize,
) -> Result<Response, FileOpError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failure)?;
    let exchange = async {
        let response = sender.send_request(request).await.map_err(failure)?;
        let status = response.status().as_u16();
        let len_and_body = count(response.into_body(), keep).await?;
        Ok(Response {
            status,
            len: len_and_body.0,
            body: len_and_body.1,
        })
    };
    let mut exchange = std::pin::pin!(exchange);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        biased;
        done = &mut exchange => return done,
        // The connection ended first (closed, or failed): what it delivered, or its
        // failure, reaches the exchange through hyper's channels.
        _ = &mut conn => {}
    }
    exchange.await
}

/// The body's length, and its first `keep` bytes.
async fn count(mut body: Incoming, keep: usize) -> Result<(u64, Vec<u8>), FileOpError> {
    let mut kept = Vec::new();
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(failure)?;
        if let Some(data) = frame.data_ref() {
            len += data.len() as u64;
            let room = keep.saturating_sub(kept.len()).min(data.len());
            kept.extend_from_slice(&data[..room]);
        }
    }
    Ok((len, kept))
}

/// A hyper failure as the kind the report counts: the connection cut off before the
/// message was complete is `Truncated`, a response hyper cannot parse (head or chunked
/// coding) `Malformed`, any other I/O failure `Io`.
fn failure(e: hyper::Error) -> FileOpError {
    if e.is_incomplete_message() {
        return FileOpError::Truncated;
    }
    if e.is_parse() || e.is_parse_status() {
        return malformed(e.to_string());
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                ErrorKind::UnexpectedEof => FileOpError::Truncated,
                // How hyper's body decoder says a chunk or its size is not well-formed.
                ErrorKind::InvalidData | ErrorKind::InvalidInput => malformed(e.to_string()),
                kind => FileOpError::Io(std::io::Error::new(kind, e.to_string())),
            };
        }
        source = s.source();
    }
    FileOpError::Io(std::io::Error::other(e))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use http_body_util::Empty;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A one-shot HTTP server answering one connection with `reply`, then closing it.
    async fn serve(reply: Vec<u8>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(&reply).await;
            }
        });
        addr
    }

    async fn parse(reply: &[u8], keep: usize) -> Result<Response, FileOpError> {
        let addr = serve(reply.to_vec()).await;
        let stream = Stream::Plain(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        let request = Request::get("/x")
            .header("host", addr.to_string())
            .header("connection", "close")
            .body(Empty::<Bytes>::new())
            .expect("request");
        exchange(stream, request, keep).await
    }

    #[tokio::test]
    async fn a_body_is_delimited_by_content_length() {
        let r = parse(
            b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\nX: y\r\n\r\nhelloEXTRA",
            64,
        )
        .await
        .expect("parsed");
        assert_eq!(
            (r.status, r.len, r.body.as_slice()),
            (201, 5, b"hello".as_slice())
        );
    }

    #[tokio::test]
    async fn a_large_body_is_counted_not_kept() {
        let mut text = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 100_000));
        let r = parse(&text, 64).await.expect("parsed");
        assert_eq!((r.status, r.len, r.body.len()), (200, 100_000, 64));
    }

    #[tokio::test]
    async fn a_chunked_body_or_one_to_the_end_is_read_whole() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: x\r\n\r\n",
            64,
        )
        .await
        .expect("parsed");
        assert_eq!((r.len, r.body.as_slice()), (6, b"hello!".as_slice()));
        let r = parse(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nall of it", 64)
            .await
            .expect("parsed");
        assert_eq!((r.len, r.body.as_slice()), (9, b"all of it".as_slice()));
        let r = parse(b"HTTP/1.1 204 No Content\r\n\r\n", 64)
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
            let e = parse(text, 64).await.expect_err("truncated");
            assert!(matches!(e, FileOpError::Truncated), "{text:?}: {e:?}");
            assert_eq!(e.kind(), "truncated_reply");
        }
    }

    #[tokio::test]
    async fn malformed_responses_are_refused() {
        for text in [
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
        ] {
            let e = parse(text.as_bytes(), 64).await.expect_err(text);
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
        let e = parse(text.as_bytes(), MAX_KEPT)
            .await
            .expect("parsed")
            .success()
            .expect_err("a refusal");
        assert!(matches!(e, FileOpError::Refused { status: 403, .. }));
        assert_eq!(e.kind(), "forbidden");
        let e = parse(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 2\r\n\r\nno",
            64,
        )
        .await
        .expect("parsed")
        .success()
        .expect_err("a refusal");
        assert_eq!(e.kind(), "http_502");
    }
}
