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

/// Which port an acceptor serves, for its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The client port (`wss://`, `https://`).
    Client,
    /// The session link (5041).
    SessionLink,
    /// The pool port (8011).
    Pool,
}

/// Runs server-side handshakes for one port.
#[derive(Clone)]
pub struct Acceptor {
    inner: TlsAcceptor,
    port: Port,
}

/// Client-port handshake failures are logged at most this often (any client on the network
/// may fail one; the counter has them all).
const CLIENT_LOG_EVERY: Duration = Duration::from_secs(60);

impl Acceptor {
    /// An acceptor with `config`, for `port`.
    pub fn new(config: Arc<ServerConfig>, port: Port) -> Acceptor {
        Acceptor {
            inner: TlsAcceptor::from(config),
            port,
        }
    }

    /// Run the handshake on `tcp` from `peer`. `None` when it failed; the reason is counted
    /// and logged: a warning each time on the links, where it means a misconfigured or
    /// foreign party; on the client port one warning a minute with the count since.
    pub async fn accept(&self, tcp: TcpStream, peer: SocketAddr) -> Option<Stream> {
        let reason = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.inner.accept(tcp)).await {
            Ok(Ok(tls)) => return Some(Stream::Tls(Box::new(tls.into()))),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
        };
        metrics::counter!(catalog::TLS_REFUSED.name).increment(1);
        match self.port {
            Port::SessionLink => {
                tracing::warn!(%peer, "link refused: TLS handshake failed: {reason}")
            }
            Port::Pool => {
                tracing::warn!(%peer, "pool connection refused: TLS handshake failed: {reason}")
            }
            Port::Client => client_failure(peer, &reason),
        }
        None
    }
}

/// Log a client-port handshake failure, at most once per [`CLIENT_LOG_EVERY`].
fn client_failure(peer: SocketAddr, reason: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    static SINCE: AtomicU64 = AtomicU64::new(0);
    static LAST: Mutex<Option<std::time::Instant>> = Mutex::new(None);
    let failed = SINCE.fetch_add(1, Ordering::Relaxed) + 1;
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|t| t.elapsed() < CLIENT_LOG_EVERY) {
        return;
    }
    *last = Some(std::time::Instant::now());
    SINCE.store(0, Ordering::Relaxed);
    tracing::warn!(%peer, "client TLS handshake failed: {reason} ({failed} failed since the last such line; chatcap_tls_refused_total counts them all)");
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

/// Handshakes run at once on the client port; beyond, accepting waits (each one holds a
/// descriptor for up to [`HANDSHAKE_TIMEOUT`]).
const MAX_HANDSHAKES: usize = 1024;

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
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let accepted = async {
            let slot = slots.clone().acquire_owned().await.ok()?;
            Some((accept_tcp(&listener).await, slot))
        };
        let ((tcp, peer), slot) = tokio::select! {
            _ = ready.closed() => return,
            accepted = accepted => match accepted {
                Some(a) => a,
                None => return,
            },
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        // Ends by itself: the handshake has HANDSHAKE_TIMEOUT, and a send to a listener
        // that is gone fails at once.
        tokio::spawn(async move {
            let stream = acceptor.accept(tcp, peer).await;
            drop(slot);
            if let Some(stream) = stream {
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
