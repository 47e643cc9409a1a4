//! Opening a client WebSocket toward `ws://` or `wss://` URLs, one way for the test
//! client, the load generator and the benchmarks: TCP (from a chosen source address),
//! TLS when the URL says `wss://` (checked against the CA the caller trusts), then the
//! WebSocket handshake with small buffers. Each step's time is returned so that the
//! generator can record the TLS handshake apart from the rest.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chatcap_server::tls::{Connector, Stream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// A client WebSocket, plaintext or TLS.
pub type Ws = WebSocketStream<Stream>;

/// A parsed `ws://HOST:PORT/PATH` or `wss://…` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// The whole URL, as given.
    pub url: String,
    /// `wss://`.
    pub tls: bool,
    /// The host as written (a name or an IP address; brackets kept for IPv6).
    pub host: String,
    /// The port (80 or 443 when not written).
    pub port: u16,
}

impl WsUrl {
    /// Parse `url`; the message says what is wrong.
    pub fn parse(url: &str) -> Result<WsUrl, String> {
        let (tls, rest) = match (url.strip_prefix("wss://"), url.strip_prefix("ws://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            _ => return Err(format!("{url:?} is not a ws:// or wss:// URL")),
        };
        let hostport = rest.split('/').next().unwrap_or(rest);
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => {
                let port = p
                    .parse()
                    .map_err(|_| format!("{url:?}: {p:?} is not a port"))?;
                (h.to_string(), port)
            }
            _ => (hostport.to_string(), default_port),
        };
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        Ok(WsUrl {
            url: url.to_string(),
            tls,
            host,
            port,
        })
    }

    /// The socket address, when the host is an IP address.
    pub fn addr(&self) -> Option<SocketAddr> {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

/// The socket buffer each client connection uses (tungstenite's default is 128 KiB).
pub const SOCKET_BUFFER: usize = 4096;

/// The WebSocket settings of every client connection: a small read buffer (tungstenite's
/// default of 128 KiB would cost gigabytes at 20,000 connections), writes sent at once.
pub fn config(max_write_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(max_write_buffer)
}

/// Why a WebSocket could not be opened: which step failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL is not a `ws://` or `wss://` URL.
    #[error("{0}")]
    Url(String),
    /// TCP connect failed.
    #[error("connect failed: {0}")]
    Connect(std::io::Error),
    /// The URL is `wss://` and nothing to trust was given.
    #[error("{0} is wss:// but no CA to trust was given (--ca / target.ca)")]
    NoTrust(String),
    /// The TLS handshake failed (untrusted or wrong certificate, not TLS…).
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    /// The WebSocket handshake failed.
    #[error("websocket handshake failed: {0}")]
    Handshake(#[from] tokio_tungstenite::tungstenite::Error),
}

/// A WebSocket, and how long TLS took (zero on `ws://`).
pub struct Opened {
    /// The socket.
    pub ws: Ws,
    /// The TLS handshake's share of the time.
    pub tls: Duration,
}

/// Open `url` over `tcp` (connected by the caller, e.g. from a spread source address):
/// TLS through `trust` when the URL is `wss://`, then the WebSocket handshake.
pub async fn open_on(
    url: &WsUrl,
    tcp: tokio::net::TcpStream,
    trust: Option<&Connector>,
    config: WebSocketConfig,
) -> Result<Opened, OpenError> {
    let started = Instant::now();
    let stream = match (url.tls, trust) {
        (false, _) => Stream::Plain(tcp),
        (true, None) => return Err(OpenError::NoTrust(url.url.clone())),
        (true, Some(connector)) => connector
            .connect(&url.host, tcp)
            .await
            .map_err(OpenError::Tls)?,
    };
    let tls = if url.tls {
        started.elapsed()
    } else {
        Duration::ZERO
    };
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(url.url.as_str(), stream, Some(config)).await?;
    Ok(Opened { ws, tls })
}

/// Connect to `url` (any source address) and open it.
pub async fn open(
    url: &str,
    trust: Option<&Connector>,
    config: WebSocketConfig,
) -> Result<Opened, OpenError> {
    let parsed = WsUrl::parse(url).map_err(OpenError::Url)?;
    let bare = parsed.host.trim_start_matches('[').trim_end_matches(']');
    let tcp = tokio::net::TcpStream::connect((bare, parsed.port))
        .await
        .map_err(OpenError::Connect)?;
    let _ = tcp.set_nodelay(true);
    open_on(&parsed, tcp, trust, config).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let u = WsUrl::parse("wss://127.0.0.1:8443/ws").expect("wss");
        assert!(u.tls);
        assert_eq!(u.addr(), Some("127.0.0.1:8443".parse().expect("addr")));
        let u = WsUrl::parse("ws://chat.example/ws").expect("name");
        assert_eq!(
            (u.host.as_str(), u.port, u.addr()),
            ("chat.example", 80, None)
        );
        let u = WsUrl::parse("wss://[::1]:9/ws").expect("v6");
        assert_eq!(u.addr(), Some("[::1]:9".parse().expect("addr")));
        assert_eq!(WsUrl::parse("wss://[::1]/ws").expect("v6").port, 443);
        assert!(WsUrl::parse("http://x/ws").is_err());
        assert!(WsUrl::parse("ws://h:port/ws").is_err());
        assert!(WsUrl::parse("ws:///ws").is_err());
    }
}
