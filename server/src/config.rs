//! Server settings, with the product's defaults. Read from a TOML file (`--config`) and
//! overridden by flags; every field has a default so an empty file is valid.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Settings of the chat core.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// DefaultChatHistory: messages returned on join and kept in memory per room (1–500).
    pub history: u32,
    /// Largest post, in bytes of UTF-8 text.
    pub max_post_bytes: usize,
    /// ParticipantUpdateLimit: roster changes are pushed only in rooms with at most this
    /// many participants.
    pub participant_update_limit: usize,
    /// Client message ids remembered per room for recognising retries.
    pub dedupe_window: usize,
    /// Posts waiting for commit above which new posts are refused `busy`.
    pub max_pending_posts: usize,
    /// Database-bound requests in progress above which new ones are refused `busy`.
    pub max_in_flight: usize,
    /// Frames queued toward one front end before its link counts as stalled and is
    /// dropped (its sessions end with `link_lost`). Large: when thousands of sessions close
    /// at once, each close may push roster changes to several rooms (18,000 sessions
    /// closing overflowed 65,536).
    pub link_queue: usize,
    /// Test hook: drop every Nth delivery on purpose (0 = never; never set in production).
    pub test_drop_every: usize,
    /// Test hook: the process uses this many times the CPU it would (1 = off; never set in
    /// production); see `slowdown`.
    pub test_slowdown: f64,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            history: 30,
            max_post_bytes: 16 * 1024,
            participant_update_limit: 75,
            dedupe_window: 64,
            max_pending_posts: 200_000,
            max_in_flight: 4096,
            link_queue: 1 << 20,
            test_drop_every: 0,
            test_slowdown: 1.0,
        }
    }
}

/// Settings of a front end.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrontConfig {
    /// Frames queued toward one client before it counts as a slow consumer and is dropped.
    pub session_queue: usize,
    /// Largest WebSocket message accepted from a client; larger closes the connection
    /// (close code 1009).
    pub max_message_bytes: usize,
    /// Requests per second a session may send on average.
    pub rate_per_sec: f64,
    /// Requests a session may send in a burst.
    pub rate_burst: f64,
    /// Seconds a new connection has to sign in.
    pub sign_in_timeout_secs: u64,
    /// Read and write buffer of each WebSocket, in bytes (tungstenite's default of
    /// 128 KiB would cost gigabytes at 20,000 connections).
    pub socket_buffer_bytes: usize,
    /// Client connections held at most; beyond, new ones are refused with HTTP 503
    /// "server too busy" (a process here may hold 20,000 open files in all).
    pub max_connections: usize,
    /// MaxFileSizeKB: largest file uploaded through the file web service, in KB of 1,024
    /// bytes (the original's default is 20,000 KB).
    pub max_file_kb: u64,
}

impl Default for FrontConfig {
    fn default() -> Self {
        Self {
            session_queue: 1024,
            max_message_bytes: 1 << 20,
            rate_per_sec: 200.0,
            rate_burst: 400.0,
            sign_in_timeout_secs: 30,
            socket_buffer_bytes: 4096,
            max_connections: 19_000,
            max_file_kb: 20_000,
        }
    }
}

/// What one `chatcap serve` process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Chat server and front end in one process (Standard Edition; the default).
    #[default]
    Single,
    /// A chat server only: session links from front ends on `chat_listen`, `/metrics`
    /// and `/healthz` on `listen`.
    Chat,
    /// A front end only: clients and web services on `listen` (shareable with other
    /// front-end processes: `SO_REUSEPORT`), linked to the chat servers `chat_servers`.
    Frontend,
}

impl Role {
    /// Runs a chat server.
    pub fn has_chat(self) -> bool {
        matches!(self, Role::Single | Role::Chat)
    }

    /// Runs a front end.
    pub fn has_front(self) -> bool {
        matches!(self, Role::Single | Role::Frontend)
    }
}

/// Settings of the compliance service (recording and the XML adapter; docs/COMPLIANCE.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceConfig {
    /// Record JOIN, PART, CHAT, BACKCHAT, FILEUPLOAD and FILEDOWNLOAD events and export them.
    pub enabled: bool,
    /// RunInterval: seconds between export runs (the original's default is 15 minutes).
    pub run_interval_secs: u64,
    /// AdapterOutputDirectory; default `<data_dir>/compliance`.
    pub output_dir: Option<PathBuf>,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            run_interval_secs: 900,
            output_dir: None,
        }
    }
}

/// TLS settings (docs/TLS.md). With none set every port is plaintext, which the ready
/// line says; that is for loopback benchmarks and private networks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Client port (`wss://`, `https://`): the certificate chain, PEM.
    pub cert: Option<PathBuf>,
    /// Client port: the certificate's private key, PEM.
    pub key: Option<PathBuf>,
    /// Client port: a self-signed certificate made for this box on first start and kept in
    /// `<data_dir>/tls/` (clients trust that file).
    pub self_signed: bool,
    /// Mutual TLS on the links (front end ↔ chat server on 5041, the pool on 8011): the
    /// certificate authority every party's certificate must be signed by, PEM.
    pub link_ca: Option<PathBuf>,
    /// Links: this process's certificate chain (presented both when it dials and when it
    /// is dialled), PEM.
    pub link_cert: Option<PathBuf>,
    /// Links: that certificate's private key, PEM.
    pub link_key: Option<PathBuf>,
}

impl TlsConfig {
    /// The client port speaks TLS.
    pub fn client_port(&self) -> bool {
        self.self_signed || self.cert.is_some()
    }

    /// The settings of the process called `name`: `{name}` in a file path becomes the name,
    /// so that one settings file shared by a pool gives each process its own certificate
    /// (`link_cert = "certs/{name}.pem"`).
    pub fn for_process(&self, name: &str) -> TlsConfig {
        let mut out = self.clone();
        for path in out.paths_mut() {
            let text = path.to_string_lossy();
            if text.contains("{name}") {
                *path = PathBuf::from(text.replace("{name}", name));
            }
        }
        out
    }

    fn paths_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        [
            &mut self.cert,
            &mut self.key,
            &mut self.link_ca,
            &mut self.link_cert,
            &mut self.link_key,
        ]
        .into_iter()
        .flatten()
    }

    /// Make relative file paths relative to `base` (the settings file's folder).
    pub fn resolve(&mut self, base: &std::path::Path) {
        for path in self.paths_mut() {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Check that the files come in complete sets; the message names the fields.
    pub fn validate(&self) -> Result<(), String> {
        if self.cert.is_some() != self.key.is_some() {
            return Err("tls.cert and tls.key go together: set both or neither".into());
        }
        if self.self_signed && self.cert.is_some() {
            return Err(
                "tls.self_signed makes its own certificate: drop tls.cert and tls.key, or it"
                    .into(),
            );
        }
        let link = [&self.link_ca, &self.link_cert, &self.link_key];
        if link.iter().any(|f| f.is_some()) && !link.iter().all(|f| f.is_some()) {
            return Err(
                "tls.link_ca, tls.link_cert and tls.link_key go together: set all three or none"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Everything `chatcap serve` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// What this process runs.
    pub role: Role,
    /// Front-end role: the chat servers to link to (port 5041 of each).
    pub chat_servers: Vec<SocketAddr>,
    /// A secret shared by the pool's chat servers and front ends: a chat server then hands
    /// its token key only to front ends that prove it (`Challenge`/`Proof`). Unset: links
    /// are trusted (loopback, a private network).
    pub link_secret: Option<String>,
    /// Folder for the SQLite files and exports.
    pub data_dir: PathBuf,
    /// Front end: clients (WebSocket `/ws`), web services, `/metrics`.
    pub listen: SocketAddr,
    /// Chat server: session links from front ends.
    pub chat_listen: SocketAddr,
    /// Content database URL; default `sqlite:<data_dir>/content.db`.
    pub database: Option<String>,
    /// Compliance database URL; default `sqlite:<data_dir>/compliance.db`, or the content
    /// database when that is PostgreSQL.
    pub compliance_database: Option<String>,
    /// Chat core settings.
    pub chat: ChatConfig,
    /// Front-end settings.
    pub front: FrontConfig,
    /// Compliance service settings.
    pub compliance: ComplianceConfig,
    /// TLS on the client port and the links.
    pub tls: TlsConfig,
    /// This chat server's place in a pool (from `--topology`); `None` on a single box.
    /// Not a settings-file field.
    #[serde(skip)]
    pub pool: Option<PoolSettings>,
    /// The file store: the folder, shared by every front end of the pool (a network share
    /// when they run on several hosts), that keeps uploaded files; default
    /// `<data_dir>/files`.
    pub file_store: Option<PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            role: Role::Single,
            chat_servers: Vec::new(),
            link_secret: None,
            data_dir: PathBuf::from("data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            chat_listen: SocketAddr::from(([127, 0, 0, 1], 5041)),
            database: None,
            compliance_database: None,
            chat: ChatConfig::default(),
            front: FrontConfig::default(),
            compliance: ComplianceConfig::default(),
            tls: TlsConfig::default(),
            file_store: None,
            pool: None,
        }
    }
}

/// A chat server's place in a pool (docs/POOL.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// The pool's name.
    pub pool: String,
    /// Single-server (no pool links, no leases: always active) or multiple-server.
    pub kind: crate::topology::PoolKind,
    /// This server's name.
    pub name: String,
    /// Where the other chat servers and `chatcap pool` reach this one (port 8011).
    pub listen: SocketAddr,
    /// Every other chat server of the pool: (name, pool address).
    pub peers: Vec<(String, SocketAddr)>,
    /// The active servers when the pool is first started (`pool set-active` changes it).
    pub initial_active: Vec<String>,
    /// Lease timing.
    pub lease: LeaseTiming,
}

/// How active servers hold their place (docs/POOL.md, "Leases").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a lease lasts after each renewal (database clock).
    pub ttl: std::time::Duration,
    /// How often a holder renews, and how often a standby looks for a free place.
    pub renew: std::time::Duration,
    /// How much before its lease ends, on its own clock, a holder that could not renew
    /// stops serving (covers clock-rate differences and scheduling delays).
    pub margin: std::time::Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self {
            ttl: std::time::Duration::from_millis(3000),
            renew: std::time::Duration::from_millis(500),
            margin: std::time::Duration::from_millis(1000),
        }
    }
}

impl ServeConfig {
    /// The content database URL in effect.
    pub fn database_url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("content.db").display()))
    }

    /// The file store folder in effect.
    pub fn file_store_dir(&self) -> PathBuf {
        self.file_store
            .clone()
            .unwrap_or_else(|| self.data_dir.join("files"))
    }

    /// The compliance database URL in effect.
    pub fn compliance_url(&self) -> String {
        if let Some(url) = &self.compliance_database {
            return url.clone();
        }
        match &self.database {
            Some(url) if url.starts_with("postgres") => url.clone(),
            _ => format!("sqlite:{}", self.data_dir.join("compliance.db").display()),
        }
    }

    /// Check ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=500).contains(&self.chat.history) {
            return Err(format!(
                "chat.history must be 1–500, not {}",
                self.chat.history
            ));
        }
        if self.chat.max_post_bytes == 0 {
            return Err("chat.max_post_bytes must be above 0".into());
        }
        if !(1.0..=100.0).contains(&self.chat.test_slowdown) {
            return Err(format!(
                "chat.test_slowdown must be 1–100, not {}",
                self.chat.test_slowdown
            ));
        }
        if self.chat.link_queue == 0 {
            return Err("chat.link_queue must be above 0".into());
        }
        if self.role == Role::Frontend && self.chat_servers.is_empty() {
            return Err("a front end needs at least one chat server (--chat ADDR)".into());
        }
        if self.role != Role::Frontend && !self.chat_servers.is_empty() {
            return Err("chat_servers is a front-end setting (--role frontend)".into());
        }
        if self.front.max_file_kb == 0 {
            return Err("front.max_file_kb must be above 0".into());
        }
        if self.link_secret.as_deref().is_some_and(str::is_empty) {
            return Err("link_secret must not be empty".into());
        }
        if self.front.max_connections == 0 {
            return Err("front.max_connections must be above 0".into());
        }
        if self.compliance.run_interval_secs == 0 {
            return Err("compliance.run_interval_secs must be at least 1".into());
        }
        if self.front.session_queue == 0 {
            return Err("front.session_queue must be above 0".into());
        }
        self.tls.validate()?;
        if self.front.rate_per_sec <= 0.0 || self.front.rate_burst < 1.0 {
            return Err(
                "front.rate_per_sec must be above 0 and front.rate_burst at least 1".into(),
            );
        }
        Ok(())
    }
}
