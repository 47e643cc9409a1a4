//! Reading an HTTP/1.1 response for the load generator's file operations: the status
//! line and headers within a bound, the body delimited by `Content-Length`, chunked
//! transfer coding, or the end of the connection — counted, and only its first bytes
//! kept, so a download is never held whole in memory.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};

use super::file_error::{malformed, FileOpError};

/// Read buffer size (and the file operations' write buffer size).
pub const CHUNK: usize = 16 * 1024;
/// Most bytes of a response head (status line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Most bytes of one chunk-size or trailer line of a chunked body.
const MAX_LINE: usize = 4 * 1024;
/// Most bytes of a response body kept (file lists, error replies); the rest is counted.
pub const MAX_KEPT: usize = 1 << 20;
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
}
