//! Starting and stopping a single box: chat server + front end in one process, each on its
//! own listener, talking over a real session link, with SQLite (or PostgreSQL) storage.
//!
//! [`start`] binds every listener first (port 0 works: tests read the bound addresses
//! back), so the server is ready when it returns. [`Running::shutdown`] stops accepting,
//! commits what was queued, and closes the databases.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::TokenKey;
use crate::chat::Hub;
use crate::config::ServeConfig;
use crate::frontend::FrontEnd;
use crate::store::{Schema, Store, StoreError};

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
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running single box.
pub struct Running {
    /// Where clients connect (`ws://<addr>/ws`) and `/metrics` is served.
    pub http_addr: SocketAddr,
    /// Where front ends link to the chat server.
    pub chat_addr: SocketAddr,
    /// The chat core (tests use its hooks).
    pub hub: Arc<Hub>,
    /// The front end.
    pub front: Arc<FrontEnd>,
    /// Token key (to issue tokens in tests and tools).
    pub tokens: TokenKey,
    compliance: Store,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
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

/// Start a single box as configured.
pub async fn start(cfg: ServeConfig) -> Result<Running, StartError> {
    cfg.validate().map_err(StartError::Config)?;
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| StartError::DataDir {
        path: cfg.data_dir.display().to_string(),
        source,
    })?;
    let content = open_store(&cfg.database_url(), Schema::Content).await?;
    let compliance = open_store(&cfg.compliance_url(), Schema::Compliance).await?;
    let tokens = TokenKey::load(&content)
        .await
        .map_err(|source| StartError::Store {
            url: cfg.database_url(),
            source,
        })?;
    let hub = Hub::start(cfg.chat.clone(), content)
        .await
        .map_err(|source| StartError::Store {
            url: cfg.database_url(),
            source,
        })?;

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let chat_listener = bind(cfg.chat_listen).await?;
    let chat_addr = chat_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: cfg.chat_listen,
            source,
        })?;
    tasks.spawn(crate::chat::link::serve(
        hub.clone(),
        chat_listener,
        shutdown.clone(),
    ));

    let front = Arc::new(FrontEnd::new(
        format!("fe@{}", cfg.listen),
        cfg.front.clone(),
        tokens.clone(),
    ));
    tasks.spawn(crate::frontend::link::supervise(
        front.clone(),
        chat_addr,
        shutdown.clone(),
    ));
    let http_listener = bind(cfg.listen).await?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let app = crate::frontend::http::router(front.clone());
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let served = axum::serve(http_listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    // Ready means the front end can reach the chat server.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !front.is_linked() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Running {
        http_addr,
        chat_addr,
        hub,
        front,
        tokens,
        compliance,
        shutdown,
        tasks,
    })
}

impl Running {
    /// A token for `user`, valid for `ttl`.
    pub fn token(&self, user: i64, ttl: Duration) -> String {
        self.tokens
            .issue(user, crate::auth::unix_now() + ttl.as_secs() as i64)
    }

    /// Stop: close listeners and connections, commit what is queued, close the databases.
    pub async fn shutdown(self) {
        self.front.link_lost_shutdown();
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within 10 s");
        }
        self.hub.flush().await;
        self.hub.store.close().await;
        self.compliance.close().await;
    }

    /// A token that resolves when the server is asked to stop.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}
