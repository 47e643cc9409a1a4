//! How a run is asked for ([`RunOptions`], from the command line or a parent process) and
//! why one could not be done ([`RunError`]). Only the types, shared by the run, its local
//! shards and sweeps: nothing here starts or writes anything.

use std::path::PathBuf;

use super::shard::ShardId;
use super::target_error::TargetError;
use crate::profile::Profile;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The scenario file (for the report).
    pub scenario_file: PathBuf,
    /// Results folder; default `reports/<time>-<scenario>/`.
    pub out: Option<PathBuf>,
    /// The `chatcap` binary that serves the embedded target.
    pub server_binary: PathBuf,
    /// No progress output.
    pub quiet: bool,
    /// Run as this shard of a split run (with `attach` and `population`).
    pub shard: Option<ShardId>,
    /// Start the load at this time (ms since the epoch), so that shards start together.
    pub start_at_ms: Option<u64>,
    /// The target's WebSocket URL, for shards (instead of the scenario's target).
    pub attach: Vec<String>,
    /// The CA to trust toward `wss://` attach URLs, for shards.
    pub attach_ca: Option<PathBuf>,
    /// The simulated users file, for shards.
    pub population: Option<PathBuf>,
    /// A `chatcap serve --config` file for the embedded server (settings, test hooks).
    pub server_config: Option<PathBuf>,
    /// Split into this many local shard processes (default: as many as the descriptor
    /// limit requires).
    pub shards: Option<usize>,
    /// The hardware profile the servers this run starts are limited to.
    pub profile: Option<Profile>,
}

/// Why a run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plan asks for something this build cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// The target could not be made ready.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The results folder could not be written.
    #[error("cannot write results to {path}: {source}")]
    Write {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}
