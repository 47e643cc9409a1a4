//! The chat room management web service over real HTTP: every route's happy path and its
//! rights (member, manager, administrator, outsider), 404 for secret rooms the caller may
//! not find, 401 for missing/forged/expired tokens, 400/415 for bad bodies, the OpenAPI
//! document against the routes served, and changes made through one front end seen
//! through another (over HTTP and as a `room_changed` push on a WebSocket).
//!
//! Layout: this file holds the HTTP client and assertion helpers; [`rights`] the routes'
//! rights and hidden rooms, [`guards`] tokens, bodies and the OpenAPI document, [`pool`]
//! the new protocol operations and two front ends on one chat server.

mod guards;
mod pool;
mod rights;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A small HTTP client for one server.
pub struct Http {
    base: String,
    client: HyperClient<HttpConnector, Full<Bytes>>,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: hyper::HeaderMap,
    /// The body as JSON (`Null` when empty or not JSON).
    pub json: Value,
    /// The body as text.
    pub text: String,
}

impl Answer {
    /// The error code of a JSON error body.
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }

    /// Decode the JSON body.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.json.clone()).expect("a body of the documented shape")
    }
}

impl Http {
    /// A client for the server at `addr`.
    pub fn new(addr: SocketAddr) -> Http {
        Http {
            base: format!("http://{addr}"),
            client: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Send a request with optional `Authorization: <auth>` and body (content type, bytes).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Answer {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let bytes = match body {
            Some((content_type, bytes)) => {
                req = req.header("content-type", content_type);
                bytes
            }
            None => Vec::new(),
        };
        let req = req.body(Full::new(Bytes::from(bytes))).expect("request");
        let res = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .expect("an answer within 30 s")
            .expect("HTTP exchange");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        Answer {
            status,
            headers,
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
            text,
        }
    }

    /// The status of a bodiless request, or `None` when nothing answers (yet).
    pub async fn try_raw(&self, method: &str, path: &str) -> Option<u16> {
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .body(Full::new(Bytes::new()))
            .ok()?;
        let res = tokio::time::timeout(Duration::from_secs(5), self.client.request(req))
            .await
            .ok()?
            .ok()?;
        Some(res.status().as_u16())
    }

    /// A request as the holder of `token`, with an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Answer {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.raw(method, path, Some(&auth), body).await
    }

    /// GET as the holder of `token`.
    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call("GET", path, token, None).await
    }
}

/// Assert a status (and, for errors, a code), naming the request.
pub fn expect(a: &Answer, status: u16, code: Option<&str>, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text);
    if let Some(code) = code {
        assert_eq!(a.code(), code, "{what}: {}", a.text);
    }
}

/// The room ids a listing shows.
pub fn ids(a: &Answer) -> Vec<i64> {
    a.json["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

/// The names of a list of users.
pub fn names(list: &[chatcap_server::protocol::UserInfo]) -> Vec<&str> {
    list.iter().map(|u| u.name.as_str()).collect()
}
