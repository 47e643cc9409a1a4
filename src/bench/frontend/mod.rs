//! `chatcap bench frontend`: what the front end alone costs — user-space memory per idle
//! signed-in WebSocket connection, and CPU per 1,000 messages it forwards — over plaintext
//! WebSockets, over TLS (`wss://`), or both one after the other (`--transport both`: what
//! a TLS session adds, measured side by side: memory per session and CPU per handshake on
//! both ends, handshake times).
//!
//! The chat server (`serve --role chat`) and the front end (`serve --role frontend --chat
//! ADDR`) run as two child processes of this binary on free loopback ports, over a fresh
//! SQLite database with the bench's users and rooms, so that `/proc/<pid>` of the front end
//! gives figures that are its own, not the chat server's nor the load generator's. This is
//! a benchmark, not a test: it prints figures and never fails on them.
//!
//! # Layout
//! - this file: the options (raw flags → a validated [`Plan`]), the two processes, and
//!   [`run`].
//! - [`idle`]: memory per idle connection, as a slope over steps of connections.
//! - [`forward`]: front-end CPU per 1,000 forwarded frames under a fixed posting rate.
//! - [`probe`]: reading memory, CPU and `/metrics` of the processes; the arithmetic.
//! - [`figures`]: the figures, as a table and as JSON.

pub mod figures;
pub mod forward;
pub mod idle;
pub mod probe;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chatcap_server::config::FrontConfig;
use clap::Args;

use super::report::Machine;
use super::target::{self, Prepared};
use crate::serve_process::ServeProcess;
use crate::usage::UsageError;
use figures::{FrontendReport, TransportRun};
use forward::ForwardPlan;

/// Options of `bench frontend`, as written on the command line.
#[derive(Debug, Args)]
pub struct FrontendBenchArgs {
    /// Idle signed-in WebSocket connections opened to measure memory per connection
    /// (0 skips it). One process may hold 20,000 open files, so at most ≈ 19,900.
    #[arg(long, default_value_t = 10_000)]
    pub idle: usize,
    /// Steps the idle connections are opened in; memory is read at 0 and after each.
    #[arg(long, default_value_t = 2)]
    pub steps: usize,
    /// WebSocket clients of the forwarding measurement, each signed in and in one room
    /// (0 skips it).
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Rooms the clients are in (client i joins room i mod rooms).
    #[arg(long, default_value_t = 4)]
    pub rooms: usize,
    /// Clients that post (the first ones); every other client in a room receives each post.
    #[arg(long, default_value_t = 20)]
    pub posters: usize,
    /// Posts per second, all posters together.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Bytes of text per post.
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
    /// Seconds of measured forwarding (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of posting before the measurement starts.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Write the figures as JSON to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// How clients connect: `plaintext` (ws://), `tls` (wss://, a self-signed certificate
    /// made for the run), or `both`, plaintext first, each with processes of its own.
    #[arg(long, value_enum, default_value_t = Transport::Plaintext)]
    pub transport: Transport,
}

/// How the bench's clients reach the front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// `ws://`.
    Plaintext,
    /// `wss://`.
    Tls,
    /// Plaintext, then TLS.
    Both,
}

impl Transport {
    /// The runs it asks for: false = plaintext, true = TLS.
    fn runs(self) -> Vec<bool> {
        match self {
            Transport::Plaintext => vec![false],
            Transport::Tls => vec![true],
            Transport::Both => vec![false, true],
        }
    }
}

/// The validated plan of one `bench frontend` run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Idle connections (0 = skip).
    pub idle: usize,
    /// Steps to open them in.
    pub steps: usize,
    /// The forwarding load (`None` = skip).
    pub forward: Option<ForwardPlan>,
    /// JSON output file.
    pub json: Option<PathBuf>,
    /// Plaintext, TLS or both.
    pub transport: Transport,
}

/// Most of anything the bench will create, so that a typo cannot exhaust the machine.
const MAX_IDLE: usize = 100_000;
const MAX_STEPS: usize = 10;
const MAX_CLIENTS: usize = 4096;
const MAX_RATE: f64 = 100_000.0;
const MAX_SECS: u64 = 3600;

/// Open files kept free beside the connections (listeners, links, logs, `/proc` reads).
const FD_MARGIN: usize = 64;

impl FrontendBenchArgs {
    /// Check ranges.
    pub fn plan(&self) -> Result<Plan, UsageError> {
        let bad = |m: String| Err(UsageError(m));
        if self.idle > MAX_IDLE {
            return bad(format!("--idle must be at most {MAX_IDLE}"));
        }
        if self.steps == 0 || self.steps > MAX_STEPS {
            return bad(format!("--steps must be 1–{MAX_STEPS}"));
        }
        if self.idle > 0 && self.steps > self.idle {
            return bad("--steps must not exceed --idle".into());
        }
        if self.clients > MAX_CLIENTS {
            return bad(format!("--clients must be at most {MAX_CLIENTS}"));
        }
        if self.idle == 0 && self.clients == 0 {
            return bad("--idle 0 and --clients 0 leave nothing to measure".into());
        }
        let forward = if self.clients == 0 {
            None
        } else {
            if self.rooms == 0 || self.rooms > self.clients {
                return bad("--rooms must be 1–clients".into());
            }
            if self.posters == 0 || self.posters > self.clients {
                return bad("--posters must be 1–clients".into());
            }
            if !(self.rate > 0.0 && self.rate <= MAX_RATE) {
                return bad(format!("--rate must be above 0 and at most {MAX_RATE}"));
            }
            if self.duration == 0 || self.duration > MAX_SECS || self.warmup > MAX_SECS {
                return bad(format!(
                    "--duration must be 1–{MAX_SECS} s and --warmup at most {MAX_SECS} s"
                ));
            }
            if self.text_bytes == 0 || self.text_bytes > 16 * 1024 {
                return bad("--text-bytes must be 1–16384 (the server's default limit)".into());
            }
            Some(ForwardPlan {
                clients: self.clients,
                rooms: self.rooms,
                posters: self.posters,
                rate: self.rate,
                text_bytes: self.text_bytes,
                warmup: Duration::from_secs(self.warmup),
                duration: Duration::from_secs(self.duration),
            })
        };
        Ok(Plan {
            idle: self.idle,
            steps: self.steps,
            forward,
            json: self.json.clone(),
            transport: self.transport,
        })
    }
}

impl Plan {
    /// Client connections held at once (idle ones are closed before forwarding starts).
    fn connections(&self) -> usize {
        self.idle
            .max(self.forward.as_ref().map_or(0, |f| f.clients))
    }

    /// Refuse a plan that needs more open files than a process may hold (the bench holds
    /// one per connection, and so does the front end, which inherits the limit).
    pub fn check_open_files(&self, limit: u64) -> Result<(), UsageError> {
        let need = self.connections() + FD_MARGIN;
        if need as u64 > limit {
            return Err(UsageError(format!(
                "{} connections need {need} open files, and a process here may hold {limit}; \
                 lower --idle / --clients",
                self.connections()
            )));
        }
        Ok(())
    }
}

/// The chat server and the front end under test.
pub struct Processes {
    /// `serve --role chat`.
    pub chat: ServeProcess,
    /// `serve --role frontend --chat <chat's link address>`.
    pub frontend: ServeProcess,
    /// When the front end's client port is TLS: the connector trusting its certificate.
    pub trust: Option<chatcap_server::tls::Connector>,
}

impl Processes {
    /// Start both on free loopback ports, the front end linked to the chat server. The
    /// settings lift the per-session rate limit (meant for people; a fast `--rate` with
    /// few posters would hit it) and admit every connection the plan opens; everything
    /// else is the default.
    async fn start(
        prepared: &Prepared,
        connections: usize,
        tls: bool,
    ) -> anyhow::Result<Processes> {
        let dir = &prepared.dir;
        let settings = dir.join("frontend-bench.toml");
        let max_connections = FrontConfig::default()
            .max_connections
            .max(connections + FD_MARGIN);
        std::fs::write(
            &settings,
            format!(
                "[front]\nrate_per_sec = 1000000000.0\nrate_burst = 1000000000.0\nmax_connections = {max_connections}\n"
            ),
        )
        .with_context(|| format!("writing {}", settings.display()))?;
        let exe = std::env::current_exe().context("finding the chatcap binary")?;
        let common: Vec<OsString> = vec![
            "--config".into(),
            settings.into(),
            "--data-dir".into(),
            dir.clone().into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        let mut args = common.clone();
        args.extend(
            [
                "--role",
                "chat",
                "--chat-listen",
                "127.0.0.1:0",
                "--database",
            ]
            .map(OsString::from),
        );
        args.push(prepared.database.clone().into());
        let chat = ServeProcess::spawn(&exe, &args, &[], &dir.join("chat.log"))
            .await
            .context("starting the chat server")?;
        let link = chat.chat_addr()?.to_string();
        let mut args = common;
        args.extend(["--role", "frontend", "--chat", &link].map(OsString::from));
        if tls {
            args.push("--tls-self-signed".into());
        }
        let frontend = ServeProcess::spawn(&exe, &args, &[], &dir.join("frontend.log"))
            .await
            .context("starting the front end")?;
        let trust = match tls {
            true => Some(chatcap_server::tls::trusting(
                &dir.join("tls").join("self-signed.pem"),
            )?),
            false => None,
        };
        Ok(Processes {
            chat,
            frontend,
            trust,
        })
    }

    /// Stop both (SIGKILL: nothing they hold matters after the bench).
    async fn stop(self) {
        self.frontend.kill().await;
        self.chat.kill().await;
    }
}

/// Run `bench frontend`: print the table, write the JSON if asked.
pub async fn run(args: FrontendBenchArgs) -> anyhow::Result<()> {
    let plan = args.plan()?;
    plan.check_open_files(crate::runner::net::raise_fd_limit())?;
    let report = run_plan(&plan).await?;
    print!("{}", report.table());
    if let Some(path) = &plan.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}

/// Prepare the database, start the processes, measure, clean up.
pub async fn run_plan(plan: &Plan) -> anyhow::Result<FrontendReport> {
    let load_average_start = probe::load_average();
    eprintln!("bench frontend: preparing (load average {load_average_start})");
    let forward = plan.forward.as_ref();
    let setup = target::Setup {
        posters: forward.map_or(0, |f| f.clients),
        rooms: forward.map_or(1, |f| f.rooms),
        idle: plan.idle,
    };
    let prepared = target::prepare(&target::Backend::Sqlite, &setup).await?;
    let mut runs = Vec::new();
    for tls in plan.transport.runs() {
        match measure(plan, &prepared, tls).await {
            Ok(run) => runs.push(run),
            Err(e) => {
                prepared.cleanup().await;
                return Err(e);
            }
        }
    }
    prepared.cleanup().await;
    Ok(FrontendReport {
        machine: Machine::detect(),
        load_average_start,
        load_average_end: probe::load_average(),
        runs,
    })
}

async fn measure(plan: &Plan, prepared: &Prepared, tls: bool) -> anyhow::Result<TransportRun> {
    let transport = if tls { "TLS" } else { "plaintext" };
    eprintln!("bench frontend: {transport} clients");
    let procs = Processes::start(prepared, plan.connections(), tls).await?;
    let outcome = async {
        let idle = if plan.idle > 0 {
            eprintln!(
                "bench frontend: memory — {} idle connections in {} steps",
                plan.idle, plan.steps
            );
            Some(idle::measure(&procs, &prepared.idle, plan.steps).await?)
        } else {
            None
        };
        let forward = match &plan.forward {
            Some(f) => {
                eprintln!(
                    "bench frontend: forwarding — {} clients, {} rooms, {} posters at {} posts/s, {} s warm-up + {} s",
                    f.clients,
                    f.rooms,
                    f.posters,
                    f.rate,
                    f.warmup.as_secs(),
                    f.duration.as_secs()
                );
                Some(forward::run(f, &procs, &prepared.posters).await?)
            }
            None => None,
        };
        Ok(TransportRun {
            tls,
            idle,
            forward,
        })
    }
    .await;
    procs.stop().await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: FrontendBenchArgs,
    }

    fn plan(args: &[&str]) -> Result<Plan, UsageError> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .expect("flags parse");
        cli.args.plan()
    }

    #[test]
    fn defaults_make_a_plan() {
        let p = plan(&[]).expect("defaults are valid");
        assert_eq!((p.idle, p.steps), (10_000, 2));
        let f = p.forward.expect("forwarding");
        assert_eq!((f.clients, f.rooms, f.posters), (200, 4, 20));
        assert_eq!(f.duration, Duration::from_secs(10));
    }

    #[test]
    fn bad_options_are_refused() {
        for args in [
            &["--idle", "1000000"][..],
            &["--steps", "0"],
            &["--steps", "11"],
            &["--idle", "3", "--steps", "4"],
            &["--clients", "5000"],
            &["--rooms", "0"],
            &["--rooms", "300"],
            &["--posters", "0"],
            &["--posters", "201"],
            &["--rate", "0"],
            &["--rate", "NaN"],
            &["--duration", "0"],
            &["--warmup", "4000"],
            &["--text-bytes", "0"],
            &["--idle", "0", "--clients", "0"],
        ] {
            assert!(plan(args).is_err(), "{args:?} should be refused");
        }
    }

    #[test]
    fn parts_can_be_skipped() {
        let p = plan(&["--clients", "0"]).expect("memory only");
        assert!(p.forward.is_none());
        let p = plan(&["--idle", "0"]).expect("forwarding only");
        assert_eq!(p.idle, 0);
        assert!(p.forward.is_some());
    }

    #[test]
    fn open_files_bound_the_connections() {
        let p = plan(&["--idle", "15000"]).expect("valid");
        assert!(p.check_open_files(20_000).is_ok());
        let p = plan(&["--idle", "19990"]).expect("valid");
        assert!(p.check_open_files(20_000).is_err());
        let p = plan(&["--idle", "0", "--clients", "4000"]).expect("valid");
        assert!(p.check_open_files(1024).is_err());
    }
}
