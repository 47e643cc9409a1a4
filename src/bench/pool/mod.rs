//! `chatcap bench pool TOPOLOGY`: what a pool of chat servers does on this machine —
//! acked posts/s with 1 and with N active chat servers side by side, and how much longer a
//! message takes from one user to another when they are on two chat servers instead of one.
//!
//! The pool is the topology's, started here (every address on loopback) by the pool
//! launcher, over a fresh PostgreSQL database holding the bench's users and rooms. This is
//! a benchmark, not a test: it prints figures and never fails on them. Bad options or a bad
//! topology exit with code 2; a phase that could not run exits with code 1 after the
//! figures measured so far are printed. Ctrl-C stops the measurement, prints what was
//! measured, and stops every process the bench started.
//!
//! # Layout
//! - this file: the options (raw flags → a validated [`Plan`]), [`run`], and the order of
//!   things: database, pool, phases, teardown.
//! - [`setup`]: the PostgreSQL server and database, the topology copy, the pool's processes.
//! - [`control`]: set-active and session counts over the pool port.
//! - [`placement`]: which server and front end each client gets, and which user ids do it.
//! - [`connect`]: connecting a phase's clients and checking where they landed.
//! - [`throughput`]: acked posts/s with k active servers (the load of
//!   [`crate::bench::posts`]).
//! - [`delivery`]: same-server and cross-server delivery latency of pairs of users.
//! - [`cpu`]: CPU time of the processes, PostgreSQL's process tree included.
//! - [`figures`]: the figures, as tables and as JSON.

pub mod connect;
pub mod control;
pub mod cpu;
pub mod delivery;
pub mod figures;
pub mod placement;
pub mod setup;
pub mod throughput;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chatcap_server::topology::Topology;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::frontend::probe::load_average;
use super::posts::PostPlan;
use super::report::Machine;
use crate::pool::launch::{self, Launched};
use crate::usage::UsageError;
use delivery::PairPlan;
use figures::{PoolReport, ProcessInfo};

/// Options of `bench pool`, as written on the command line.
#[derive(Debug, Args)]
pub struct PoolBenchArgs {
    /// The pool's topology file (docs/TOPOLOGY.md); every address must be on loopback. Its
    /// database is replaced by a fresh one, and its settings get the rate limit lifted.
    pub topology: PathBuf,
    /// PostgreSQL server URL (e.g. postgres://postgres@127.0.0.1:5432); a fresh database is
    /// created on it and dropped afterwards. Without it, a throwaway cluster is started.
    #[arg(long, env = "CHATCAP_TEST_PG")]
    pub database: Option<String>,
    /// Numbers of active chat servers to measure throughput with, in order (default: 1 and
    /// all the topology's active servers).
    #[arg(long, value_delimiter = ',')]
    pub actives: Vec<usize>,
    /// Posting WebSocket clients of the throughput phase, each in its own room (0 skips it).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Posts each client keeps outstanding (sent, not yet acknowledged).
    #[arg(long, default_value_t = 32)]
    pub window: usize,
    /// Bytes of text per post.
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
    /// Seconds of posting before each measurement starts.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Seconds of each measurement.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Pairs of users of the delivery phase, half on one chat server, half on two (0
    /// skips it).
    #[arg(long, default_value_t = 50)]
    pub pairs: usize,
    /// Posts per second each pair's poster sends (open loop).
    #[arg(long, default_value_t = 5.0)]
    pub pair_rate: f64,
    /// Write the figures as JSON to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The validated plan of one `bench pool` run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The topology as given.
    pub topology: Topology,
    /// PostgreSQL server URL (`None`: a throwaway cluster).
    pub database: Option<String>,
    /// Numbers of active servers for the throughput phase, in order (empty: skipped).
    pub actives: Vec<usize>,
    /// The throughput load (one room per client).
    pub posts: PostPlan,
    /// The delivery load (`None`: skipped).
    pub pairs: Option<PairPlan>,
    /// JSON output file.
    pub json: Option<PathBuf>,
}

/// Most of anything the bench will create, so that a typo cannot exhaust the machine.
const MAX_CLIENTS: usize = 4096;
const MAX_WINDOW: usize = 4096;
const MAX_PAIRS: usize = 2048;
const MAX_PAIR_RATE: f64 = 1000.0;
const MAX_SECS: u64 = 3600;

impl PoolBenchArgs {
    /// Check ranges, read the topology, resolve the numbers of active servers.
    pub fn plan(&self) -> Result<Plan, UsageError> {
        let bad = |m: String| Err(UsageError(m));
        if self.clients > MAX_CLIENTS {
            return bad(format!("--clients must be at most {MAX_CLIENTS}"));
        }
        if self.window == 0 || self.window > MAX_WINDOW {
            return bad(format!("--window must be 1–{MAX_WINDOW}"));
        }
        if self.pairs > MAX_PAIRS {
            return bad(format!("--pairs must be at most {MAX_PAIRS}"));
        }
        if self.clients == 0 && self.pairs == 0 {
            return bad("--clients 0 and --pairs 0 leave nothing to measure".into());
        }
        if !(self.pair_rate > 0.0 && self.pair_rate <= MAX_PAIR_RATE) {
            return bad(format!(
                "--pair-rate must be above 0 and at most {MAX_PAIR_RATE}"
            ));
        }
        if self.duration == 0 || self.duration > MAX_SECS || self.warmup > MAX_SECS {
            return bad(format!(
                "--duration must be 1–{MAX_SECS} s and --warmup at most {MAX_SECS} s"
            ));
        }
        if self.text_bytes == 0 || self.text_bytes > 16 * 1024 {
            return bad("--text-bytes must be 1–16384 (the server's default limit)".into());
        }
        if let Some(url) = &self.database {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return bad(format!("--database {url:?} is not a postgres:// URL"));
            }
        }
        let topology = Topology::load(&self.topology).map_err(|e| UsageError(e.to_string()))?;
        launch::check_loopback(&topology).map_err(|e| UsageError(e.to_string()))?;
        let n = topology.actives().count();
        let actives = if self.clients == 0 {
            Vec::new()
        } else if self.actives.is_empty() {
            let mut a = vec![1, n];
            a.dedup();
            a
        } else {
            if let Some(k) = self.actives.iter().find(|&&k| k == 0 || k > n) {
                return bad(format!(
                    "--actives {k}: the topology has {n} active chat servers (1–{n})"
                ));
            }
            self.actives.clone()
        };
        let (warmup, duration) = (
            Duration::from_secs(self.warmup),
            Duration::from_secs(self.duration),
        );
        Ok(Plan {
            topology,
            database: self.database.clone(),
            actives,
            posts: PostPlan {
                clients: self.clients,
                window: self.window,
                rooms: self.clients,
                text_bytes: self.text_bytes,
                warmup,
                duration,
            },
            pairs: (self.pairs > 0).then_some(PairPlan {
                pairs: self.pairs,
                rate: self.pair_rate,
                text_bytes: self.text_bytes,
                warmup,
                duration,
            }),
            json: self.json.clone(),
        })
    }
}

/// Run `bench pool`: print the tables, write the JSON if asked.
pub async fn run(args: PoolBenchArgs) -> anyhow::Result<()> {
    let plan = args.plan()?;
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    let signal = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("bench pool: Ctrl-C — stopping");
            on_signal.cancel();
        }
    });
    let mut report = PoolReport {
        machine: Machine::detect(),
        load_average_start: load_average(),
        load_average_end: String::new(),
        topology: plan.topology.file.display().to_string(),
        pool: plan.topology.name.clone(),
        database: String::new(),
        processes: Vec::new(),
        throughput: Vec::new(),
        delivery: None,
        notes: Vec::new(),
    };
    let outcome = run_plan(&plan, &stop, &mut report).await;
    signal.abort();
    report.load_average_end = load_average();
    if stop.is_cancelled() {
        report
            .notes
            .push("interrupted by Ctrl-C: the figures are those measured before".into());
    }
    if let Err(e) = &outcome {
        report.notes.push(format!("failed: {e:#}"));
    }
    print!("{}", report.table());
    if let Some(path) = &plan.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    outcome
}

/// Database, users, pool, phases; then everything started is stopped, whatever happened.
async fn run_plan(
    plan: &Plan,
    stop: &CancellationToken,
    report: &mut PoolReport,
) -> anyhow::Result<()> {
    let load_average_start = &report.load_average_start;
    eprintln!("bench pool: preparing the database (load average {load_average_start})");
    // Setup steps that create something outside this process run to completion even on
    // Ctrl-C, so that what they created is known and removed.
    let server = setup::PgServer::start(plan.database.as_deref()).await?;
    let (users, rooms) = throughput::population_size(plan.posts.clients, plan.pairs_count());
    let prepared = match setup::provision(&server, users, rooms).await {
        Ok(p) => p,
        Err(e) => {
            server.stop().await;
            return Err(e);
        }
    };
    report.database = format!("fresh database on a {}", server.kind());
    let outcome = if stop.is_cancelled() {
        Ok(())
    } else {
        with_pool(plan, &prepared, &server.url, stop, report).await
    };
    prepared.cleanup().await;
    server.stop().await;
    outcome
}

impl Plan {
    fn pairs_count(&self) -> usize {
        self.pairs.as_ref().map_or(0, |p| p.pairs)
    }
}

/// Start the pool, measure (until done or Ctrl-C), stop the pool.
async fn with_pool(
    plan: &Plan,
    prepared: &super::target::Prepared,
    server_url: &str,
    stop: &CancellationToken,
    report: &mut PoolReport,
) -> anyhow::Result<()> {
    eprintln!(
        "bench pool: starting pool {} ({} chat servers, {} front ends)",
        plan.topology.name,
        plan.topology.chat_servers.len(),
        plan.topology.front_ends.len()
    );
    // A start cut short by Ctrl-C kills the processes it started (they are killed on drop).
    let mut pool = tokio::select! {
        p = setup::launch(&plan.topology, prepared) => p?,
        _ = stop.cancelled() => return Ok(()),
    };
    let postmaster = cpu::find_postmaster(server_url);
    report.processes = processes(&pool, postmaster);
    let outcome = tokio::select! {
        r = measure(plan, prepared, &pool, postmaster, report) => r,
        _ = stop.cancelled() => Ok(()),
    };
    eprintln!("bench pool: stopping the pool");
    pool.stop().await;
    outcome
}

/// The pool's processes, chat servers then front ends, and PostgreSQL's postmaster.
fn processes(pool: &Launched, postmaster: Option<u32>) -> Vec<ProcessInfo> {
    let mut list: Vec<ProcessInfo> = pool
        .members
        .iter()
        .map(|m| ProcessInfo {
            name: m.name.clone(),
            role: m.role.to_string(),
            pid: m.process.pid,
        })
        .collect();
    if let Some(pid) = postmaster {
        list.push(ProcessInfo {
            name: "postgres".into(),
            role: "postgres".into(),
            pid,
        });
    }
    list
}

/// The phases, in order; each one's figures go into `report` as soon as they exist.
async fn measure(
    plan: &Plan,
    prepared: &super::target::Prepared,
    pool: &Launched,
    postmaster: Option<u32>,
    report: &mut PoolReport,
) -> anyhow::Result<()> {
    let users = &prepared.posters;
    // User i is tagged with room i mod rooms, so the first `rooms` users name every room.
    let rooms: Vec<i64> = users
        .iter()
        .take(plan.posts.clients + plan.pairs_count())
        .map(|u| u.room)
        .collect();
    let (throughput_rooms, pair_rooms) = rooms.split_at(plan.posts.clients.min(rooms.len()));
    let population = throughput::Population {
        users,
        rooms: throughput_rooms,
    };
    for &k in &plan.actives {
        eprintln!(
            "bench pool: throughput with {k} active — {} clients × {} outstanding, {} s warm-up + {} s",
            plan.posts.clients,
            plan.posts.window,
            plan.posts.warmup.as_secs(),
            plan.posts.duration.as_secs()
        );
        let (figures, notes) =
            throughput::measure(&plan.posts, pool, k, &population, postmaster).await?;
        report.throughput.push(figures);
        report.notes.extend(notes);
    }
    if let Some(pairs) = &plan.pairs {
        eprintln!(
            "bench pool: delivery — {} pairs at {} posts/s each, {} s warm-up + {} s",
            pairs.pairs,
            pairs.rate,
            pairs.warmup.as_secs(),
            pairs.duration.as_secs()
        );
        let (figures, notes) = delivery::measure(pairs, pool, users, pair_rooms).await?;
        report.delivery = Some(figures);
        report.notes.extend(notes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: PoolBenchArgs,
    }

    fn topology() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/topologies/pool-3.toml")
    }

    fn plan(args: &[&str]) -> Result<Plan, UsageError> {
        let file = topology();
        let file = file.to_str().expect("utf-8 path");
        let all = ["bench", file].into_iter().chain(args.iter().copied());
        let cli = Cli::try_parse_from(all).expect("flags parse");
        cli.args.plan()
    }

    #[test]
    fn defaults_measure_one_and_all_actives() {
        let p = plan(&[]).expect("defaults are valid");
        assert_eq!(p.actives, vec![1, 3]);
        assert_eq!(
            (p.posts.clients, p.posts.window, p.posts.rooms),
            (64, 32, 64)
        );
        let pairs = p.pairs.expect("pairs");
        assert_eq!((pairs.pairs, pairs.rate), (50, 5.0));
        assert_eq!(p.posts.duration, Duration::from_secs(10));
        let p = plan(&["--actives", "2,3,1"]).expect("valid");
        assert_eq!(p.actives, vec![2, 3, 1]);
    }

    #[test]
    fn parts_can_be_skipped() {
        let p = plan(&["--clients", "0"]).expect("delivery only");
        assert!(p.actives.is_empty());
        let p = plan(&["--pairs", "0"]).expect("throughput only");
        assert!(p.pairs.is_none());
    }

    #[test]
    fn bad_options_are_refused() {
        for args in [
            &["--actives", "0"][..],
            &["--actives", "4"],
            &["--clients", "5000"],
            &["--window", "0"],
            &["--pairs", "3000"],
            &["--clients", "0", "--pairs", "0"],
            &["--pair-rate", "0"],
            &["--pair-rate", "NaN"],
            &["--duration", "0"],
            &["--warmup", "4000"],
            &["--text-bytes", "0"],
            &["--database", "mysql://x"],
        ] {
            assert!(plan(args).is_err(), "{args:?} should be refused");
        }
        let cli = Cli::try_parse_from(["bench", "/nonexistent/topology.toml"]).expect("parse");
        assert!(cli.args.plan().is_err());
    }
}
