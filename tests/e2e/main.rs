//! End-to-end tests: real servers on port 0, real WebSocket clients, real databases
//! (a SQLite file per test; PostgreSQL when `CHATCAP_TEST_PG` names a server, as
//! `scripts/test` arranges).

mod admin_ops;
mod bad_input;
mod browser;
mod chat_ops;
mod common;
mod compliance;
mod discovery;
mod durability;
mod files;
mod metrics;
mod outage;
mod overload;
mod pool;
mod pool_failover;
mod presence;
mod provision;
mod rights;
mod roles;
mod run;
mod smoke;
mod social;
mod tls;
mod topology;
mod web_rooms;
mod xmpp;
