//! Stage one: the topology file as written (serde types, `deny_unknown_fields`). Values a
//! rule could refuse are kept loose here (ports as plain integers, addresses as strings,
//! optional fields as `Option`) so that the validator can report every problem of a
//! file at once instead of stopping at the first. Nothing here checks a rule.

use serde::Deserialize;

/// A whole topology file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    /// Pool name; required (checked by the validator, so a missing name is one problem
    /// among the others).
    pub name: Option<String>,
    /// Single-server or multiple-server pool.
    #[serde(default)]
    pub kind: RawKind,
    /// Shared secret of front-end and pool links, inline.
    pub link_secret: Option<String>,
    /// The environment variable holding the shared secret.
    pub link_secret_env: Option<String>,
    /// A serve settings file (docs/CONFIG.md), relative to the topology file.
    pub settings: Option<String>,
    /// `[database]`.
    #[serde(default)]
    pub database: RawDatabase,
    /// `[compliance]`.
    #[serde(default)]
    pub compliance: RawCompliance,
    /// `[[chat_server]]` tables, in file order.
    #[serde(default)]
    pub chat_server: Vec<RawChatServer>,
    /// `[[front_end]]` tables, in file order.
    #[serde(default)]
    pub front_end: Vec<RawFrontEnd>,
}

/// `kind = "single" | "multiple"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawKind {
    /// One chat server, for good.
    Single,
    /// Up to 4 active and 4 standby chat servers on PostgreSQL.
    #[default]
    Multiple,
}

/// `[database]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    /// The content database: a postgres:// URL, `throwaway` or a sqlite: URL.
    pub content: Option<String>,
    /// The compliance database, same forms.
    pub compliance: Option<String>,
}

/// `[compliance]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompliance {
    /// Whether compliance events are recorded.
    #[serde(default)]
    pub enabled: bool,
    /// Seconds between export runs.
    pub run_interval_secs: Option<i64>,
}

/// One `[[chat_server]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChatServer {
    /// Server name.
    #[serde(default)]
    pub name: String,
    /// IP address it listens on.
    #[serde(default)]
    pub address: String,
    /// Active (true, the default) or standby.
    pub active: Option<bool>,
    /// Port of sessions from front ends.
    pub link_port: Option<i64>,
    /// Port of server-to-server links and administration.
    pub pool_port: Option<i64>,
    /// Port of `/metrics` and `/healthz`.
    pub metrics_port: Option<i64>,
}

/// One `[[front_end]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFrontEnd {
    /// Front-end name.
    #[serde(default)]
    pub name: String,
    /// IP address it listens on.
    #[serde(default)]
    pub address: String,
    /// Port of WebSocket clients (`/ws`), web services and `/metrics`.
    pub port: Option<i64>,
}
