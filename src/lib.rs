//! chatcap: the load generator and capacity harness for a Persistent Chat pool, and the
//! command line of the whole project (the server lives in the `chatcap-server` crate).
//!
//! # Layout
//! - [`cli`]: the command line (`serve`, `user`, `provision`, `bench`, …) and `run(cli)`.
//! - [`settings`], [`stop_signal`], [`usage`]: what the commands share below `cli`: the
//!   settings file, waiting for Ctrl-C or SIGTERM, the usage error (exit code 2).
//! - [`client`]: a WebSocket client of the chat protocol; [`wss`]: opening its socket
//!   (`ws://` or `wss://`), shared with the load generator.
//! - [`compliance_cmd`]: `chatcap compliance export` (one run of the compliance XML adapter).
//! - [`gate`]: `chatcap gate`, the CI regression gate (thresholds, baseline, JUnit XML).
//! - [`report_cmd`]: `chatcap report` and `chatcap compare`.
//! - [`capacity`]: `chatcap capacity` (supported users, the capacity model) and `chatcap plan`.
//! - [`bench`]: `chatcap bench server`, the server benchmark (posts/s, latency, memory).
//! - [`pool`]: `chatcap pool up|status|drain|undrain|set-active` (a pool from a topology).
//! - [`provision`]: `chatcap provision` (flags, progress bar, summary).
//! - [`scenario`]: scenario files, read into a validated run plan.
//! - [`runner`]: the load generator: target, virtual users, load shape, reconciliation.
//! - [`metrics`]: histograms, counters, timeline, resource samples.
//! - [`profile`]: hardware profiles: limits on the system under test (cgroups, affinity).
//! - [`report`]: the summary model and its renderings (results folder, console).
//! - [`tls_cmd`]: `serve`'s TLS flags and `chatcap tls issue` (a CA and its certificates).
//! - [`xmpp`]: an XMPP client (sign-in, multi-user chat, archive) and ejabberd provisioning,
//!   for driving third-party servers (issue 10; not yet a `chatcap run` driver).
//! - [`decoders`]: every decoder of outside input behind one entry per kind of input, for
//!   the fuzz targets and the property tests.

pub mod bench;
pub mod capacity;
pub mod cli;
pub mod client;
pub mod compliance_cmd;
pub mod decoders;
pub mod gate;
pub mod metrics;
pub mod pool;
pub mod profile;
pub mod provision;
pub mod report;
pub mod report_cmd;
pub mod runner;
pub mod scenario;
pub mod serve_process;
pub mod settings;
pub mod stop_signal;
pub mod tls_cmd;
pub mod usage;
pub mod wss;
pub mod xmpp;
