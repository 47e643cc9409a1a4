//! chatcap's reference Persistent Chat server, modelled on Lync Server 2013 Persistent Chat.
//!
//! # Layout
//! - [`protocol`]: the client protocol (JSON over WebSocket) and the session protocol
//!   (binary frames between front ends and chat servers). Shared with the load generator.
//! - [`model`]: plain domain data (users, categories, rooms, roles, the directory).
//! - [`store`]: SQLite / PostgreSQL storage and the group committer; the only SQL.
//! - [`chat`]: the chat core (hub, rooms, rights, operations, fan-out) and its link listener.
//! - [`frontend`]: the front end: WebSockets, sign-in, rate limits.
//! - [`telemetry`]: the Prometheus recorder, `/metrics`, and the catalog of every metric.
//! - [`auth`]: HMAC bearer tokens.
//! - [`compliance`]: recording JOIN/PART/CHAT/BACKCHAT/FILE* events and the XML export.
//! - [`provision`]: users, categories, rooms and memberships from a population spec,
//!   including the Lync 2013 capacity model.
//! - [`pool`]: a chat server's part in a multiple-server pool: links to the other servers
//!   (port 8011), leases on active places, `chatcap pool` administration.
//! - [`config`] and [`serve`]: settings, and starting/stopping a single box.
//! - [`topology`]: pool topology files (chat servers, front ends, databases), validated.
//! - [`toml_spans`] and [`schema_probe`]: file:line: field locations for TOML files, and the
//!   probe that keeps JSON Schemas in step with the serde types.

pub mod auth;
pub mod chat;
pub mod compliance;
pub mod config;
pub mod frontend;
pub mod model;
pub mod pool;
pub mod protocol;
pub mod provision;
pub mod schema_probe;
pub mod serve;
pub mod slowdown;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod toml_spans;
pub mod topology;
