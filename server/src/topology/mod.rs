//! Pool topology files: what the Lync 2013 Topology Builder described, as TOML — the pool's
//! chat servers (active and standby), front ends, databases, compliance and link secret.
//! Read in two stages like scenarios: the file as written ([`raw::RawTopology`]), then the
//! validated [`Topology`] the pool launcher, `chatcap serve --topology` and the load
//! generator use. Every problem names file, line and field, and all problems of a file are
//! reported together. The format is documented in `docs/TOPOLOGY.md`.
//!
//! This module only reads and checks: it opens no database and starts nothing, and it
//! cannot know the pool's history (a pool that already ran with other servers); that is
//! checked where the pool starts.
//!
//! # Layout
//! - [`raw`]: serde types mirroring the file.
//! - `validate` (private): the rules, raw → [`Topology`].
//! - `summary` (private): the table `chatcap topology check` prints.
//! - `roles` (private): [`Topology::serve_config`], what one process of the pool runs.

pub mod raw;
mod roles;
mod summary;
mod validate;

#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

pub use roles::RoleError;

use crate::toml_spans::Source;

/// Default port of front-end links on a chat server.
pub const DEFAULT_LINK_PORT: u16 = 5041;
/// Default port of pool links (server to server, administration) on a chat server.
pub const DEFAULT_POOL_PORT: u16 = 8011;
/// Default port of `/metrics` and `/healthz` on a chat server.
pub const DEFAULT_METRICS_PORT: u16 = 9100;
/// Default port of a front end (WebSocket clients, web services, `/metrics`).
pub const DEFAULT_FRONT_END_PORT: u16 = 8080;
/// Default seconds between compliance export runs (as the serve settings).
pub const DEFAULT_COMPLIANCE_INTERVAL_SECS: u64 = 900;
/// Active chat servers a pool may have (Lync 2013).
pub const MAX_ACTIVE: usize = 4;
/// Chat servers a pool may have in all, active and standby (Lync 2013).
pub const MAX_SERVERS: usize = 8;

/// A validated pool topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The file it was read from.
    pub file: PathBuf,
    /// Pool name (shown in status).
    pub name: String,
    /// Single-server or multiple-server pool.
    pub kind: PoolKind,
    /// Shared secret of front-end and pool links, resolved from the environment when the
    /// file names a variable; `None`: links are trusted.
    pub link_secret: Option<String>,
    /// The serve settings file every process of the pool uses, relative paths resolved
    /// against the topology file's folder.
    pub settings: Option<PathBuf>,
    /// The pool's content database.
    pub content: Database,
    /// The compliance database, when given.
    pub compliance_db: Option<Database>,
    /// Whether compliance events are recorded (then `compliance_db` is set).
    pub compliance_enabled: bool,
    /// Seconds between compliance export runs.
    pub compliance_interval_secs: u64,
    /// Chat servers, in file order.
    pub chat_servers: Vec<ChatServerSpec>,
    /// Front ends, in file order.
    pub front_ends: Vec<FrontEndSpec>,
}

/// What kind of pool this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// One chat server, which may use SQLite; it can never gain servers.
    Single,
    /// Up to 4 active and 4 standby chat servers sharing one PostgreSQL database.
    Multiple,
}

impl PoolKind {
    /// The word used in the file (`single`, `multiple`).
    pub fn as_str(self) -> &'static str {
        match self {
            PoolKind::Single => "single",
            PoolKind::Multiple => "multiple",
        }
    }
}

impl fmt::Display for PoolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A database of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A `postgres://`, `postgresql://` or `sqlite:` URL, as written.
    Url(String),
    /// A throwaway PostgreSQL cluster the pool launcher starts (and removes).
    Throwaway,
}

impl Database {
    /// The form, for display: `postgres`, `sqlite` or `throwaway`.
    pub fn form(&self) -> &'static str {
        match self {
            Database::Throwaway => "throwaway",
            Database::Url(u) if u.starts_with("sqlite:") => "sqlite",
            Database::Url(_) => "postgres",
        }
    }

    /// The database for display, with any password in a URL replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Database::Throwaway => "throwaway".to_string(),
            Database::Url(u) => redact_password(u),
        }
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`; anything else unchanged.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// One chat server of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatServerSpec {
    /// Server name, unique in the pool.
    pub name: String,
    /// The address all its listeners bind.
    pub address: IpAddr,
    /// Active (serves rooms) or standby (takes over when an active one fails).
    pub active: bool,
    /// Port of sessions from front ends.
    pub link_port: u16,
    /// Port of server-to-server links and administration.
    pub pool_port: u16,
    /// Port of `/metrics` and `/healthz`.
    pub metrics_port: u16,
}

impl ChatServerSpec {
    /// Where front ends link to it.
    pub fn link_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.link_port)
    }

    /// Where the other chat servers and administration reach it.
    pub fn pool_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.pool_port)
    }

    /// Where its `/metrics` and `/healthz` are served.
    pub fn metrics_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.metrics_port)
    }
}

/// One front end of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontEndSpec {
    /// Front-end name, unique in the pool (among chat servers too).
    pub name: String,
    /// The address it listens on.
    pub address: IpAddr,
    /// Its port: WebSocket clients, web services, `/metrics`.
    pub port: u16,
}

impl FrontEndSpec {
    /// Its listening address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// The clients' WebSocket URL, `ws://addr/ws` (IPv6 addresses in brackets).
    pub fn ws_url(&self) -> String {
        // SocketAddr's Display already brackets IPv6 addresses.
        format!("ws://{}/ws", self.addr())
    }
}

impl Topology {
    /// Reads and validates a topology file. `link_secret_env` is looked up in this
    /// process's environment.
    pub fn load(path: impl AsRef<Path>) -> Result<Topology, TopologyError> {
        let path = path.as_ref();
        let text = crate::toml_spans::read("topology", path)?;
        Self::from_str(&text, path)
    }

    /// Validates topology `text`, as if read from `path` (named in problems; relative
    /// paths in the file are resolved against its folder).
    pub fn from_str(text: &str, path: impl AsRef<Path>) -> Result<Topology, TopologyError> {
        Self::parse_with_env(text, path.as_ref(), &|var| std::env::var(var).ok())
    }

    /// [`Topology::from_str`] with the environment given as a lookup (tests).
    pub(crate) fn parse_with_env(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Topology, TopologyError> {
        let src = Source::new(path, text);
        let raw: raw::RawTopology =
            toml::from_str(text).map_err(|e| TopologyError::Syntax(src.syntax_problem(&e)))?;
        validate::validate(&raw, &src, env).map_err(TopologyError::Invalid)
    }

    /// The chat server called `name`.
    pub fn server(&self, name: &str) -> Option<&ChatServerSpec> {
        self.chat_servers.iter().find(|s| s.name == name)
    }

    /// The active chat servers, in file order.
    pub fn actives(&self) -> impl Iterator<Item = &ChatServerSpec> {
        self.chat_servers.iter().filter(|s| s.active)
    }

    /// The standby chat servers, in file order.
    pub fn standbys(&self) -> impl Iterator<Item = &ChatServerSpec> {
        self.chat_servers.iter().filter(|s| !s.active)
    }

    /// The front end called `name`.
    pub fn front_end(&self, name: &str) -> Option<&FrontEndSpec> {
        self.front_ends.iter().find(|f| f.name == name)
    }
}

/// Why a topology file could not be used: the error every TOML file of ours has.
pub type TopologyError = crate::toml_spans::FileError;
