//! The server side of TLS: [`Acceptor`] runs one handshake with a time limit and says in
//! one log line why a peer was refused (expired certificate, unknown issuer, no client
//! certificate…); [`HttpListener`] is the client port for axum, plaintext or TLS, with
//! handshakes run side by side so that one slow client holds up no one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use super::Stream;
use crate::telemetry::catalog;

/// How long a peer has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs server-side handshakes for one kind of port.
#[derive(Clone)]
pub struct Acceptor {
    inner: TlsAcceptor,
    /// `client` or `link`: named in log lines.
    port: &'static str,
}

impl Acceptor {
    /// An acceptor with `config`, for the `port` kind (`client`, `link`).
    pub fn new(config: Arc<ServerConfig>, port: &'static str) -> Acceptor {
        Acceptor {
            inner: TlsAcceptor::from(config),
            port,
        }
    }

    /// Run the handshake on `tcp` from `peer`. `None` when it failed; the reason is logged
    /// (a warning on links, where it means a misconfigured or foreign party; debug on the
    /// client port, where any client on the network may fail) and counted.
    pub async fn accept(&self, tcp: TcpStream, peer: SocketAddr) -> Option<Stream> {
        let reason = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.inner.accept(tcp)).await {
            Ok(Ok(tls)) => return Some(Stream::Tls(Box::new(tls.into()))),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
        };
        metrics::counter!(catalog::TLS_REFUSED.name).increment(1);
        if self.port == "link" {
            tracing::warn!(%peer, "link refused: TLS handshake failed: {reason}");
        } else {
            tracing::debug!(%peer, "client TLS handshake failed: {reason}");
        }
        None
    }
}

/// Accept one TCP connection on `listener`. Accept errors (out of descriptors…) are
/// logged and retried after a short pause rather than spun on. (Links set `TCP_NODELAY`
/// themselves; client connections keep the kernel's default, as axum's listener does.)
pub async fn accept_tcp(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// `tcp` from `peer` through `tls` when given, as it is otherwise. `None` when the TLS
/// handshake failed (logged and counted by [`Acceptor::accept`]).
pub async fn upgrade(tls: Option<&Acceptor>, tcp: TcpStream, peer: SocketAddr) -> Option<Stream> {
    match tls {
        None => Some(Stream::Plain(tcp)),
        Some(acceptor) => acceptor.accept(tcp, peer).await,
    }
}

/// The client port as an axum listener.
pub struct HttpListener {
    addr: SocketAddr,
    inner: Inner,
}

enum Inner {
    Plain(TcpListener),
    /// Connections whose handshake completed, from the task that runs them.
    Tls(mpsc::Receiver<(Stream, SocketAddr)>),
}

/// Completed handshakes waiting for axum to take them.
const READY_QUEUE: usize = 1024;

impl HttpListener {
    /// Serve `listener`, through `tls` when given. With TLS a task accepts connections and
    /// runs each handshake in a task of its own; it stops when this listener is dropped.
    pub fn new(listener: TcpListener, tls: Option<Acceptor>) -> std::io::Result<HttpListener> {
        let addr = listener.local_addr()?;
        let inner = match tls {
            None => Inner::Plain(listener),
            Some(acceptor) => {
                let (tx, rx) = mpsc::channel(READY_QUEUE);
                tokio::spawn(handshakes(listener, acceptor, tx));
                Inner::Tls(rx)
            }
        };
        Ok(HttpListener { addr, inner })
    }
}

async fn handshakes(
    listener: TcpListener,
    acceptor: Acceptor,
    ready: mpsc::Sender<(Stream, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = ready.closed() => return,
            accepted = accept_tcp(&listener) => accepted,
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            if let Some(stream) = acceptor.accept(tcp, peer).await {
                let _ = ready.send((stream, peer)).await;
            }
        });
    }
}

impl axum::serve::Listener for HttpListener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Stream, SocketAddr) {
        match &mut self.inner {
            Inner::Plain(listener) => {
                let (tcp, peer) = accept_tcp(listener).await;
                (Stream::Plain(tcp), peer)
            }
            Inner::Tls(rx) => match rx.recv().await {
                Some(accepted) => accepted,
                // The handshake task ended: only when the runtime shuts down.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
