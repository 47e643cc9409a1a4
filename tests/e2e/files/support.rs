//! What the file tests share: an HTTP client for the file routes, multipart forms, test
//! content, and a look into the file store.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use chatcap_server::protocol::files::StoredFile;
use chatcap_server::serve::Running;
use http_body_util::{BodyExt, Full};
use hyper::{header, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use rand::{Rng, SeedableRng};
pub const BOUNDARY: &str = "chatcap-test-boundary-7f3a";

/// SHA-256 of `abc` (FIPS 180-2 test vector).
pub const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// An HTTP answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The error code of a JSON error reply.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }

    pub fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// Assert the status and the error code.
    pub fn refused(&self, status: StatusCode, code: &str) {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.code(),
            code,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
    }
}

/// A plain HTTP/1 client for one front end.
pub struct Http {
    pub client: HttpClient<HttpConnector, Full<Bytes>>,
    pub base: String,
}

impl Http {
    pub fn new(addr: std::net::SocketAddr) -> Http {
        Http {
            client: HttpClient::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}"),
        }
    }

    pub fn of(running: &Running) -> Http {
        Http::new(running.http_addr)
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Answer {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(Full::new(body)).expect("request");
        let resp = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .expect("an answer in time")
            .expect("HTTP exchange");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Upload `bytes` as `name` into `room`.
    pub async fn upload(&self, token: &str, room: i64, name: &str, bytes: &[u8]) -> Answer {
        self.send(
            "POST",
            &format!("/api/rooms/{room}/files"),
            Some(token),
            Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
            form(name, bytes),
        )
        .await
    }

    /// Upload and expect 201; the file's metadata.
    pub async fn uploaded(&self, token: &str, room: i64, name: &str, bytes: &[u8]) -> StoredFile {
        let a = self.upload(token, room, name, bytes).await;
        assert_eq!(
            a.status,
            StatusCode::CREATED,
            "upload refused: {}",
            String::from_utf8_lossy(&a.body)
        );
        serde_json::from_value(a.json()).expect("a StoredFile")
    }

    pub async fn download(&self, token: &str, room: i64, file: &str) -> Answer {
        let path = format!("/api/rooms/{room}/files/{file}");
        self.send("GET", &path, Some(token), None, Bytes::new())
            .await
    }

    pub async fn list(&self, token: &str, room: i64) -> Answer {
        let path = format!("/api/rooms/{room}/files");
        self.send("GET", &path, Some(token), None, Bytes::new())
            .await
    }
}

/// A multipart form with one `file` part.
pub fn form(name: &str, bytes: &[u8]) -> Bytes {
    let mut body = Vec::with_capacity(bytes.len() + 256);
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    Bytes::from(body)
}

pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

/// Every file under `dir`, recursively (the file store's committed and partial files).
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
