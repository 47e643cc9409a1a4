//! Starting and stopping a server process in one of its roles (`config::Role`):
//! - **single** (the embedded default): chat server + front end in one process, each on
//!   its own listener, talking over a real session link, with SQLite (or PostgreSQL);
//! - **chat**: a chat server only — session links from front ends, `/metrics`, `/healthz`;
//! - **frontend**: a front end only — clients and web services, linked to chat servers.
//!
//! [`start`] binds every listener first (port 0 works: tests read the bound addresses
//! back), so the process is ready when it returns. [`Running::shutdown`] stops accepting,
//! commits what was queued, and closes the databases.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::TokenKey;
use crate::chat::Hub;
use crate::config::ServeConfig;
use crate::frontend::FrontEnd;
use crate::store::{Schema, Store, StoreError};
use crate::tls::LinkTrust;
use crate::topology::PoolKind;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A database could not be opened.
    #[error("cannot open database {url}: {source}")]
    Store {
        /// The URL.
        url: String,
        /// Why.
        source: StoreError,
    },
    /// The database belongs to another pool, or the pool cannot be what the topology says.
    #[error("{0}")]
    Pool(String),
    /// The compliance service could not start.
    #[error(transparent)]
    Compliance(#[from] crate::compliance::ComplianceStartError),
    /// A certificate or key could not be read, or TLS could not be set up with them.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The chat-server half of a running process.
pub struct ChatPart {
    /// Where front ends link (`Frame::Hello` …).
    pub addr: SocketAddr,
    /// The chat core (tests use its hooks).
    pub hub: Arc<Hub>,
    /// Token key (to issue tokens in tests and tools).
    pub tokens: TokenKey,
    /// The compliance database.
    pub compliance: Store,
    /// Its part in a multiple-server pool.
    pub pool: Option<Arc<crate::pool::Pool>>,
}

/// A running server process.
pub struct Running {
    /// Where HTTP is served: clients (`ws://<addr>/ws`), web services, `/metrics`
    /// (front end); `/metrics` and `/healthz` (chat role).
    pub http_addr: SocketAddr,
    /// The chat server, in the single and chat roles.
    pub chat: Option<ChatPart>,
    /// The front end, in the single and frontend roles.
    pub front: Option<Arc<FrontEnd>>,
    /// The client port speaks TLS (`wss://`, `https://`).
    pub client_tls: bool,
    /// The links speak mutual TLS.
    pub link_tls: bool,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Bind a listener that other processes may bind too (`SO_REUSEPORT`: the kernel spreads
/// new connections over the front ends sharing the port).
fn bind_shared(addr: SocketAddr) -> Result<TcpListener, StartError> {
    let bound = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        // Join storms open thousands of connections in a second.
        socket.listen(4096)
    };
    bound().map_err(|source| StartError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, asked: SocketAddr) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        addr: asked,
        source,
    })
}

/// Open a database, naming it in the error.
pub async fn open_store(url: &str, schema: Schema) -> Result<Store, StartError> {
    Store::open(url, schema)
        .await
        .map_err(|source| StartError::Store {
            url: url.to_string(),
            source,
        })
}

/// Serve `app` on `listener` until `shutdown`.
fn serve_http(
    tasks: &TaskTracker,
    listener: crate::tls::HttpListener,
    app: axum::Router,
    shutdown: CancellationToken,
) {
    tasks.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
}

/// Open the databases, load the chat core and listen for front ends.
async fn start_chat(
    cfg: &ServeConfig,
    trust: &LinkTrust,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<ChatPart, StartError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| StartError::DataDir {
        path: cfg.data_dir.display().to_string(),
        source,
    })?;
    let store_error = |source| StartError::Store {
        url: cfg.database_url(),
        source,
    };
    let content = open_store(&cfg.database_url(), Schema::Content).await?;
    let compliance = open_store(&cfg.compliance_url(), Schema::Compliance).await?;
    let tokens = TokenKey::load(&content).await.map_err(store_error)?;
    let shared = cfg
        .pool
        .as_ref()
        .is_some_and(|p| p.kind == PoolKind::Multiple);
    let hub = Hub::start(cfg.chat.clone(), content, shared)
        .await
        .map_err(store_error)?;
    crate::compliance::start(cfg, &hub, &compliance, shutdown, tasks)?;
    let pool = match &cfg.pool {
        Some(settings) => {
            crate::pool::claim(&hub.store, settings)
                .await
                .map_err(StartError::Pool)?;
            match settings.kind {
                PoolKind::Single => None,
                PoolKind::Multiple => {
                    let listener = bind(settings.listen).await?;
                    let leases = Store::open_side(&cfg.database_url(), 2)
                        .await
                        .map_err(store_error)?;
                    let pool = crate::pool::start(
                        hub.clone(),
                        leases,
                        settings.clone(),
                        listener,
                        trust.clone(),
                        tasks,
                        shutdown,
                    );
                    Some(pool)
                }
            }
        }
        None => None,
    };
    let listener = bind(cfg.chat_listen).await?;
    let addr = local_addr(&listener, cfg.chat_listen)?;
    tasks.spawn(crate::chat::link::serve(
        hub.clone(),
        listener,
        tokens.clone(),
        trust.clone(),
        shutdown.clone(),
    ));
    Ok(ChatPart {
        addr,
        hub,
        tokens,
        compliance,
        pool,
    })
}

/// A front end linked to `chat_servers`.
fn start_front(
    cfg: &ServeConfig,
    trust: &LinkTrust,
    chat_servers: &[SocketAddr],
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Arc<FrontEnd> {
    let front = Arc::new(
        FrontEnd::new(
            format!("fe@{}", cfg.listen),
            cfg.front.clone(),
            chat_servers.len(),
        )
        .with_file_store(cfg.file_store_dir())
        .with_link_trust(trust.clone()),
    );
    for (index, addr) in chat_servers.iter().enumerate() {
        tasks.spawn(crate::frontend::link::supervise(
            front.clone(),
            index,
            *addr,
            shutdown.clone(),
        ));
    }
    front
}

/// Start a server process as configured.
pub async fn start(cfg: ServeConfig) -> Result<Running, StartError> {
    cfg.validate().map_err(StartError::Config)?;
    // Before anything counts: metrics emitted while starting (e.g. `chatcap_accepting`)
    // reach the recorder, and a scrape before any load shows every family.
    crate::telemetry::install(cfg.role.has_chat(), cfg.role.has_front());
    let trust = LinkTrust::from_config(&cfg)?;
    let client_tls = match cfg.role.has_front() {
        true => {
            // A certificate for "0.0.0.0" helps no client: name only a real address.
            let ip = cfg.listen.ip();
            let names: Vec<String> = match ip.is_unspecified() {
                true => Vec::new(),
                false => vec![ip.to_string()],
            };
            if ip.is_unspecified() && cfg.tls.self_signed {
                tracing::warn!("client port: the self-signed certificate names only localhost and 127.0.0.1 (listening on {ip}); give remote clients a certificate with --tls-cert");
            }
            crate::tls::client_port(&cfg.tls, &cfg.data_dir, &names)?
        }
        false => {
            if cfg.tls.client_port() {
                tracing::warn!("tls.cert / tls.self_signed apply to a front end's client port: this chat server serves /metrics and /healthz in plaintext");
            }
            None
        }
    };
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let chat = if cfg.role.has_chat() {
        crate::slowdown::start(cfg.chat.test_slowdown, shutdown.clone());
        Some(start_chat(&cfg, &trust, &tasks, &shutdown).await?)
    } else {
        None
    };
    let front = if cfg.role.has_front() {
        let servers = match &chat {
            Some(c) => vec![c.addr],
            None => cfg.chat_servers.clone(),
        };
        Some(start_front(&cfg, &trust, &servers, &tasks, &shutdown))
    } else {
        None
    };
    let (listener, app) = match (&front, &chat) {
        (Some(fe), _) => (
            bind_shared(cfg.listen)?,
            crate::frontend::http::router(fe.clone()),
        ),
        (None, Some(c)) => (
            bind(cfg.listen).await?,
            crate::chat::status::router(c.hub.clone()),
        ),
        (None, None) => unreachable!("every role runs a chat server or a front end"),
    };
    let http_addr = local_addr(&listener, cfg.listen)?;
    let tls_on = client_tls.is_some();
    let listener =
        crate::tls::HttpListener::new(listener, client_tls).map_err(|source| StartError::Bind {
            addr: cfg.listen,
            source,
        })?;
    serve_http(&tasks, listener, app, shutdown.clone());
    if let Some(fe) = &front {
        // Ready means a chat server takes its sessions (a front end started before its
        // chat servers keeps trying in the background and answers 503 meanwhile).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !fe.is_linked() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(Running {
        http_addr,
        chat,
        front,
        client_tls: tls_on,
        link_tls: trust.acceptor().is_some(),
        shutdown,
        tasks,
    })
}

impl Running {
    /// The chat core (single and chat roles).
    pub fn hub(&self) -> Option<&Arc<Hub>> {
        self.chat.as_ref().map(|c| &c.hub)
    }

    /// Where front ends link (single and chat roles).
    pub fn chat_addr(&self) -> Option<SocketAddr> {
        self.chat.as_ref().map(|c| c.addr)
    }

    /// A token for `user`, valid for `ttl` (single and chat roles, which hold the key).
    pub fn token(&self, user: i64, ttl: Duration) -> Option<String> {
        let c = self.chat.as_ref()?;
        Some(
            c.tokens
                .issue(user, crate::auth::unix_now() + ttl.as_secs() as i64),
        )
    }

    /// Stop: close listeners and connections, commit what is queued, close the databases.
    pub async fn shutdown(self) {
        if let Some(fe) = &self.front {
            fe.link_lost_shutdown();
        }
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within 10 s");
        }
        if let Some(c) = self.chat {
            // Links end on the shutdown token; each ends its sessions (and records their
            // PARTs) before compliance stops.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while c.hub.link_count() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            c.hub.flush().await;
            crate::compliance::stop(&c.hub).await;
            c.hub.store.close().await;
            c.compliance.close().await;
        }
    }

    /// A token that resolves when the server is asked to stop.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}
