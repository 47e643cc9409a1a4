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
        }
    }
}

/// Everything `chatcap serve` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
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
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            chat_listen: SocketAddr::from(([127, 0, 0, 1], 5041)),
            database: None,
            compliance_database: None,
            chat: ChatConfig::default(),
            front: FrontConfig::default(),
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
        if self.chat.link_queue == 0 {
            return Err("chat.link_queue must be above 0".into());
        }
        if self.front.session_queue == 0 {
            return Err("front.session_queue must be above 0".into());
        }
        if self.front.rate_per_sec <= 0.0 || self.front.rate_burst < 1.0 {
            return Err(
                "front.rate_per_sec must be above 0 and front.rate_burst at least 1".into(),
            );
        }
        Ok(())
    }
}
