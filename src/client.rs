//! A WebSocket client of the chat protocol, used by tests, benchmarks and the load
//! generator: one request at a time with its reply, pushes queued until asked for.

use std::collections::VecDeque;
use std::time::Duration;

use chatcap_server::protocol::reply::ServerMsg;
use chatcap_server::protocol::{ErrorCode, Op, Push, Request};
use chatcap_server::tls::Connector;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::wss::Ws;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or the socket failed.
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The connection could not be opened (TCP, TLS or the WebSocket handshake).
    #[error(transparent)]
    Open(#[from] crate::wss::OpenError),
    /// The server sent something that is not protocol JSON.
    #[error("unparsable server message {text:?}: {source}")]
    Parse {
        /// The text.
        text: String,
        /// Why.
        source: serde_json::Error,
    },
    /// No reply in time.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
}

/// A protocol error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The code.
    pub code: ErrorCode,
    /// The message.
    pub message: String,
}

/// One client connection.
pub struct Client {
    ws: Ws,
    next_id: u64,
    pushes: VecDeque<Push>,
    /// How long to wait for a reply.
    pub timeout: Duration,
}

impl Client {
    /// Connect to a `ws://` URL.
    pub async fn connect(url: &str) -> Result<Client, ClientError> {
        Self::connect_with(url, None).await
    }

    /// Connect to a `ws://` or `wss://` URL, trusting `trust` for `wss://`.
    pub async fn connect_with(url: &str, trust: Option<&Connector>) -> Result<Client, ClientError> {
        let ws = crate::wss::open(url, trust, crate::wss::config(1 << 22))
            .await?
            .ws;
        Ok(Client {
            ws,
            next_id: 1,
            pushes: VecDeque::new(),
            timeout: Duration::from_secs(30),
        })
    }

    /// Send raw text (bad-input tests).
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        self.ws.send(WsMessage::Text(text.into().into())).await?;
        Ok(())
    }

    /// Send raw binary (bad-input tests).
    pub async fn send_binary(&mut self, data: Vec<u8>) -> Result<(), ClientError> {
        self.ws.send(WsMessage::Binary(data.into())).await?;
        Ok(())
    }

    /// The next protocol message of any kind.
    pub async fn recv(&mut self) -> Result<ServerMsg, ClientError> {
        loop {
            let msg = tokio::time::timeout(self.timeout, self.ws.next())
                .await
                .map_err(|_| ClientError::Timeout)?;
            match msg {
                Some(Ok(WsMessage::Text(t))) => {
                    return ServerMsg::parse(t.as_str()).map_err(|source| ClientError::Parse {
                        text: t.as_str().to_string(),
                        source,
                    })
                }
                Some(Ok(WsMessage::Close(_))) | None => return Err(ClientError::Closed),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Send a request and wait for its reply, queueing pushes that arrive meanwhile.
    pub async fn call(
        &mut self,
        op: Op,
    ) -> Result<Result<serde_json::Value, Refusal>, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let text = serde_json::to_string(&Request { id, op }).unwrap_or_default();
        self.send_text(text).await?;
        self.reply_to(id).await
    }

    /// Wait for the reply to request `id`.
    pub async fn reply_to(
        &mut self,
        id: u64,
    ) -> Result<Result<serde_json::Value, Refusal>, ClientError> {
        loop {
            match self.recv().await? {
                ServerMsg::Reply { id: got, result } if got == id => return Ok(Ok(result)),
                ServerMsg::Error {
                    id: got,
                    code,
                    message,
                } if got == Some(id) || got.is_none() => return Ok(Err(Refusal { code, message })),
                ServerMsg::Push(p) => self.pushes.push_back(p),
                _ => {}
            }
        }
    }

    /// Send a request and decode its result as `T`.
    pub async fn call_as<T: serde::de::DeserializeOwned>(
        &mut self,
        op: Op,
    ) -> Result<Result<T, Refusal>, ClientError> {
        Ok(match self.call(op).await? {
            Ok(v) => {
                Ok(
                    serde_json::from_value(v.clone()).map_err(|source| ClientError::Parse {
                        text: v.to_string(),
                        source,
                    })?,
                )
            }
            Err(r) => Err(r),
        })
    }

    /// The next push (queued, or waiting up to the timeout).
    pub async fn next_push(&mut self) -> Result<Push, ClientError> {
        if let Some(p) = self.pushes.pop_front() {
            return Ok(p);
        }
        loop {
            if let ServerMsg::Push(p) = self.recv().await? {
                return Ok(p);
            }
        }
    }

    /// Pushes received so far, without waiting.
    pub fn queued_pushes(&mut self) -> Vec<Push> {
        self.pushes.drain(..).collect()
    }

    /// The WebSocket itself, for callers that pipeline requests (benchmarks). Pushes
    /// queued so far are dropped.
    pub fn into_stream(self) -> Ws {
        self.ws
    }

    /// Close the connection politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
