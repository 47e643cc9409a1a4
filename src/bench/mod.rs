//! `chatcap bench server`: how fast one chat server stores and acknowledges posts, and how
//! much memory it spends per signed-in idle session, on SQLite and on PostgreSQL.
//!
//! This is a benchmark, not a test: it prints figures and never fails on them.
//!
//! # Layout
//! - this file: the options (raw flags → a validated [`Plan`]) and [`run`], which runs one
//!   backend after the other and hands the figures to [`report`].
//! - [`target`]: the server under test — a fresh database with the bench's users and rooms,
//!   then `chatcap serve` as a *child process* on free loopback ports, so that its RSS and
//!   CPU are its own and not the load generator's.
//! - [`memory`]: per-session memory, over one session-protocol link (port 5041) carrying
//!   thousands of sessions, so no socket per session is needed.
//! - [`posts`]: acked posts per second and post→ack latency, from pipelining WebSocket
//!   clients.
//! - [`report`]: the figures, as a table and as JSON.
//! - [`reply_head`]: the part of a server message every bench parses.
//!
//! Every load loop is bounded in count and in time, and talks to loopback only.
//!
//! `chatcap bench frontend` ([`frontend`]) measures the front end alone, as its own process.
//! `chatcap bench pool` ([`pool`]) measures a whole pool started from a topology file.

pub mod frontend;
pub mod memory;
pub mod pool;
pub mod posts;
pub mod reply_head;
pub mod report;
pub mod target;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use crate::usage::UsageError;
use report::{BackendReport, BenchReport};

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Measure one chat server: acked posts/s, post→ack latency, memory per idle session.
    Server(ServerBenchArgs),
    /// Measure the front end as its own process: memory per idle WebSocket connection,
    /// CPU per 1,000 forwarded messages.
    Frontend(frontend::FrontendBenchArgs),
    /// Measure a pool started from a topology file: acked posts/s with 1 and with all
    /// active chat servers, same-server and cross-server delivery latency.
    Pool(pool::PoolBenchArgs),
}

/// Which database(s) to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// The embedded default.
    Sqlite,
    /// PostgreSQL (needs `--database` or `CHATCAP_TEST_PG`).
    Postgres,
    /// SQLite, then PostgreSQL (skipped with a note when no PostgreSQL URL is given).
    Both,
}

/// Options of `bench server`, as written on the command line.
#[derive(Debug, Args)]
pub struct ServerBenchArgs {
    /// Database(s) to measure.
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    pub backend: BackendChoice,
    /// PostgreSQL server URL (e.g. postgres://postgres@127.0.0.1:5432); a fresh database
    /// is created on it for each run and dropped afterwards.
    #[arg(long, env = "CHATCAP_TEST_PG")]
    pub database: Option<String>,
    /// Seconds of measured posting (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of posting before the measurement starts.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Posting WebSocket clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Posts each client keeps outstanding (sent, not yet acknowledged).
    #[arg(long, default_value_t = 32)]
    pub window: usize,
    /// Rooms the clients post to (client i joins room i mod rooms). Default: one room per
    /// client, so a post is acknowledged but delivered to nobody else; fewer rooms add
    /// fan-out to the other clients in the room.
    #[arg(long)]
    pub rooms: Option<usize>,
    /// Bytes of text per post.
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
    /// Signed-in idle sessions opened to measure memory per session (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    pub idle_sessions: usize,
    /// Do not also measure idle sessions that have joined one room.
    #[arg(long)]
    pub skip_join: bool,
    /// Write the figures as JSON to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The validated plan of one `bench server` run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Backends in the order they run (with the PostgreSQL server URL where needed).
    pub backends: Vec<target::Backend>,
    /// Backends asked for but not measurable, with why.
    pub skipped: Vec<String>,
    /// Posting load.
    pub posts: posts::PostPlan,
    /// Idle sessions for the memory figure (0 = skip).
    pub idle_sessions: usize,
    /// Also measure idle sessions joined to one room.
    pub join_idle: bool,
    /// JSON output file.
    pub json: Option<PathBuf>,
}

/// Most of anything the bench will create, so that a typo cannot exhaust the machine.
const MAX_CLIENTS: usize = 4096;
const MAX_WINDOW: usize = 4096;
const MAX_IDLE: usize = 200_000;
const MAX_SECS: u64 = 3600;

impl ServerBenchArgs {
    /// Check ranges and resolve the backends.
    pub fn plan(&self) -> Result<Plan, UsageError> {
        let bad = |m: String| Err(UsageError(m));
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            return bad(format!("--clients must be 1–{MAX_CLIENTS}"));
        }
        if self.window == 0 || self.window > MAX_WINDOW {
            return bad(format!("--window must be 1–{MAX_WINDOW}"));
        }
        let rooms = self.rooms.unwrap_or(self.clients);
        if rooms == 0 || rooms > self.clients {
            return bad("--rooms must be 1–clients".into());
        }
        if self.duration == 0 || self.duration > MAX_SECS || self.warmup > MAX_SECS {
            return bad(format!(
                "--duration must be 1–{MAX_SECS} s and --warmup at most {MAX_SECS} s"
            ));
        }
        if self.idle_sessions > MAX_IDLE {
            return bad(format!("--idle-sessions must be at most {MAX_IDLE}"));
        }
        if self.text_bytes == 0 || self.text_bytes > 16 * 1024 {
            return bad("--text-bytes must be 1–16384 (the server's default limit)".into());
        }
        let mut backends = Vec::new();
        let mut skipped = Vec::new();
        if matches!(self.backend, BackendChoice::Sqlite | BackendChoice::Both) {
            backends.push(target::Backend::Sqlite);
        }
        if matches!(self.backend, BackendChoice::Postgres | BackendChoice::Both) {
            match &self.database {
                Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                    backends.push(target::Backend::Postgres {
                        server_url: url.clone(),
                    })
                }
                Some(url) => return bad(format!("--database {url:?} is not a postgres:// URL")),
                None if self.backend == BackendChoice::Postgres => {
                    return bad("--backend postgres needs --database URL or CHATCAP_TEST_PG".into())
                }
                None => skipped.push(
                    "postgres: skipped (give --database postgres://… or set CHATCAP_TEST_PG)"
                        .to_string(),
                ),
            }
        }
        Ok(Plan {
            backends,
            skipped,
            posts: posts::PostPlan {
                clients: self.clients,
                window: self.window,
                rooms,
                text_bytes: self.text_bytes,
                warmup: Duration::from_secs(self.warmup),
                duration: Duration::from_secs(self.duration),
            },
            idle_sessions: self.idle_sessions,
            join_idle: !self.skip_join,
            json: self.json.clone(),
        })
    }
}

/// Run a `bench` subcommand.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Server(args) => {
            let plan = args.plan()?;
            let report = run_plan(&plan).await?;
            print!("{}", report.table());
            if let Some(path) = &plan.json {
                let text = serde_json::to_string_pretty(&report)?;
                std::fs::write(path, text + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("figures written to {}", path.display());
            }
            Ok(())
        }
        BenchCommand::Frontend(args) => frontend::run(args).await,
        BenchCommand::Pool(args) => pool::run(args).await,
    }
}

/// Measure every backend of the plan, one after the other.
pub async fn run_plan(plan: &Plan) -> anyhow::Result<BenchReport> {
    let mut report = BenchReport::new(plan);
    for backend in &plan.backends {
        eprintln!("bench: {} — preparing", backend.name());
        let result = run_backend(plan, backend).await;
        match result {
            Ok(r) => report.backends.push(r),
            Err(e) => {
                eprintln!("bench: {} failed: {e:#}", backend.name());
                report
                    .notes
                    .push(format!("{}: failed: {e:#}", backend.name()));
            }
        }
    }
    Ok(report)
}

async fn run_backend(plan: &Plan, backend: &target::Backend) -> anyhow::Result<BackendReport> {
    let setup = target::Setup {
        posters: plan.posts.clients,
        rooms: plan.posts.rooms,
        idle: plan.idle_sessions,
    };
    let prepared = target::prepare(backend, &setup).await?;
    let outcome = measure(plan, &prepared).await;
    prepared.cleanup().await;
    outcome
}

async fn measure(plan: &Plan, prepared: &target::Prepared) -> anyhow::Result<BackendReport> {
    let server = target::ServerProcess::spawn(prepared).await?;
    let memory = if plan.idle_sessions > 0 {
        eprintln!(
            "bench: {} — memory: {} idle sessions over one session link",
            prepared.backend.name(),
            plan.idle_sessions
        );
        let join_room = plan.join_idle.then_some(prepared.idle_room);
        Some(memory::measure(&server, &prepared.idle, join_room).await?)
    } else {
        None
    };
    eprintln!(
        "bench: {} — posts: {} clients × {} outstanding, {} rooms, {} s warm-up + {} s",
        prepared.backend.name(),
        plan.posts.clients,
        plan.posts.window,
        plan.posts.rooms,
        plan.posts.warmup.as_secs(),
        plan.posts.duration.as_secs()
    );
    let posts = posts::run(&plan.posts, &server, &prepared.posters).await;
    server.stop().await;
    Ok(BackendReport {
        backend: prepared.backend.name().to_string(),
        posts: posts?,
        memory,
    })
}
