//! The command line: one binary, one subcommand per job. Options are parsed here and the
//! work is done by library code, so tests drive the same paths.
//!
//! Exit codes: 0 success, 1 failure, 2 unusable input (bad flags, files or settings).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chatcap_server::auth::{unix_now, TokenKey};
use chatcap_server::config::{Role, ServeConfig};
use chatcap_server::store::Schema;
use clap::{Args, Parser, Subcommand};

use crate::settings::settings_file;
use crate::stop_signal::wait_for_stop_signal;
use crate::usage::UsageError;

/// chatcap: a reference Persistent Chat server and pool, and a load generator and capacity
/// harness for it.
#[derive(Debug, Parser)]
#[command(name = "chatcap", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: start the target (by default the embedded single box on SQLite),
    /// drive the load shape, print the summary and write the results folder. Exit code 1
    /// when an SLO fails, 2 for a bad scenario file.
    Run(crate::runner::cmd::RunArgs),
    /// Merge the result folders of shards run on several machines into one report.
    Merge(crate::runner::cmd::MergeArgs),
    /// Render a results folder: report.html with every chart (also as SVG files in plots/),
    /// or one file whose extension names the format (--out x.html|x.md|x.json|x.csv). Exit
    /// code 2 for a missing, truncated, foreign or older results folder.
    Report(crate::report_cmd::ReportArgs),
    /// Compare runs side by side: key figures with their change from the first run, in the
    /// terminal and as HTML (with overlaid charts), Markdown or JSON (--out).
    Compare(crate::report_cmd::CompareArgs),
    /// The CI regression gate: check a results folder against the scenario's objectives,
    /// a rules file's thresholds and, with --baseline, how far each figure moved; JUnit XML
    /// with --junit. Exit code 0 pass, 1 fail, 2 a missing or corrupt run or rules file.
    Gate(crate::gate::GateArgs),
    /// Find the users a scenario supports (stepped or feedback search; each step a results
    /// folder), what bound it and the knee; write capacity.json/.md/.html with the capacity
    /// model. `capacity model RESULTS…` fits a model from existing runs. Exit code 2 for a
    /// bad scenario, profile or flag.
    Capacity(crate::capacity::cmd::CapacityArgs),
    /// Size a pool for a number of users from measured capacity models: chat servers, front
    /// ends, load generators, memory, database disk; headroom and the topology's limits.
    Plan(crate::capacity::plan_cmd::PlanArgs),
    /// Run a chat server. With no arguments: a single box (front end on 127.0.0.1:8080, chat
    /// server on 127.0.0.1:5041, SQLite under ./data).
    Serve(ServeArgs),
    /// Manage users: add one and print its token.
    #[command(subcommand)]
    User(UserCommand),
    /// Create users (with tokens), categories and rooms from a population spec or the
    /// Lync 2013 model; writes a tokens CSV and a population manifest.
    Provision(crate::provision::ProvisionArgs),
    /// Benchmarks: `bench server` measures acked posts/s, post→ack latency and memory per
    /// idle session of one chat server, on SQLite and PostgreSQL; `bench frontend` measures
    /// a separate front end's memory per idle WebSocket and CPU per 1,000 forwarded messages.
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// A pool of chat servers from a topology file: `pool up` starts one on this machine;
    /// `pool status|drain|undrain|set-active` administer a running one over port 8011.
    #[command(subcommand)]
    Pool(crate::pool::PoolCommand),
    /// Compliance: `compliance export` writes every unexported compliance event to XML now.
    #[command(subcommand)]
    Compliance(crate::compliance_cmd::ComplianceCommand),
    /// Pool topology files (docs/TOPOLOGY.md): `topology check FILE` validates one and
    /// prints the pool; exit code 2 and every problem (file:line: field: message) if bad.
    #[command(subcommand)]
    Topology(TopologyCommand),
    /// TLS certificates (docs/TLS.md): `tls issue` makes a certificate authority and
    /// certificates it signs, for mutual TLS on the links of a pool.
    #[command(subcommand)]
    Tls(crate::tls_cmd::TlsCommand),
}

/// `topology` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Validate a topology file; print the pool, or every problem found.
    Check {
        /// The topology file, e.g. scenarios/topologies/pool-4x4.toml.
        file: PathBuf,
    },
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML settings file (see docs/CONFIG.md); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Folder for the SQLite databases.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// What this process runs: `single` (chat server + front end, the default), `chat`
    /// (a chat server: front-end links on --chat-listen, /metrics on --listen) or
    /// `frontend` (clients and web services on --listen, linked to --chat servers;
    /// several front-end processes may share one --listen port).
    #[arg(long, value_enum)]
    pub role: Option<RoleArg>,
    /// Front-end role: the chat servers' link addresses, comma-separated
    /// (e.g. 127.0.0.1:5041,127.0.0.1:5042).
    #[arg(long = "chat", value_delimiter = ',')]
    pub chat_servers: Vec<std::net::SocketAddr>,
    /// A secret shared by the pool's chat servers and front ends: chat servers then hand
    /// their token key only to front ends that prove it (unset: links are trusted).
    #[arg(long, env = "CHATCAP_LINK_SECRET", hide_env_values = true)]
    pub link_secret: Option<String>,
    /// HTTP address: clients (WebSocket /ws), web services and /metrics on a front end;
    /// /metrics and /healthz on a chat server.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Chat-server address for front-end links.
    #[arg(long)]
    pub chat_listen: Option<std::net::SocketAddr>,
    /// Content database URL (sqlite:PATH or postgres://…).
    #[arg(long, env = "CHATCAP_DATABASE")]
    pub database: Option<String>,
    /// Messages returned on join (DefaultChatHistory, 1–500).
    #[arg(long)]
    pub history: Option<u32>,
    /// Record compliance events (JOIN, PART, CHAT, BACKCHAT, FILEUPLOAD, FILEDOWNLOAD) and
    /// export them as XML every run interval (docs/COMPLIANCE.md).
    #[arg(long)]
    pub compliance: bool,
    /// Seconds between compliance export runs (default 900).
    #[arg(long, value_name = "SECS")]
    pub compliance_interval: Option<u64>,
    /// Front end: the file store, a folder shared by every front end of the pool
    /// (default <data-dir>/files; docs/FILES.md).
    #[arg(long, value_name = "DIR")]
    pub file_store: Option<PathBuf>,
    /// Run one process of a pool described by a topology file (docs/TOPOLOGY.md): the
    /// chat server or front end named by --name, with the addresses, databases, peers and
    /// link secret the file gives it.
    #[arg(long, value_name = "FILE", requires = "name")]
    pub topology: Option<PathBuf>,
    /// With --topology: which chat server or front end this process is.
    #[arg(long, requires = "topology")]
    pub name: Option<String>,
    /// Threads of the async runtime (default: one per CPU this process may use). Hardware
    /// profiles set it to match their CPU limit.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: Option<u16>,
    /// TLS on the client port and the links (docs/TLS.md).
    #[command(flatten)]
    pub tls: crate::tls_cmd::TlsArgs,
}

/// The `--role` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// Chat server and front end in one process.
    Single,
    /// A chat server only.
    Chat,
    /// A front end only.
    Frontend,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Single => Role::Single,
            RoleArg::Chat => Role::Chat,
            RoleArg::Frontend => Role::Frontend,
        }
    }
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (or find an existing one) and print `id<TAB>name<TAB>token`.
    Add {
        /// Sign-in name, e.g. alice@chatcap.test.
        name: String,
        /// Make the user a Persistent Chat administrator.
        #[arg(long)]
        admin: bool,
        /// Token lifetime in hours.
        #[arg(long, default_value_t = 24 * 365)]
        ttl_hours: u64,
        /// Folder of the SQLite databases.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Content database URL (overrides --data-dir).
        #[arg(long, env = "CHATCAP_DATABASE")]
        database: Option<String>,
    },
}

/// Run the command; map failures to exit codes.
pub fn main(cli: Cli) -> ExitCode {
    init_tracing();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Serve(ServeArgs {
        worker_threads: Some(n),
        ..
    }) = &cli.command
    {
        builder.worker_threads(usize::from(*n));
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e.chain().any(|c| c.downcast_ref::<UsageError>().is_some());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Run one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => crate::runner::cmd::run(args).await,
        Command::Merge(args) => crate::runner::cmd::merge(args).await,
        Command::Report(args) => crate::report_cmd::report(args),
        Command::Compare(args) => crate::report_cmd::compare(args),
        Command::Gate(args) => crate::gate::run(args),
        Command::Capacity(args) => crate::capacity::cmd::run(args).await,
        Command::Plan(args) => crate::capacity::plan_cmd::run(args),
        Command::Serve(args) => serve(args).await,
        Command::Provision(args) => crate::provision::run(args).await,
        Command::Bench(cmd) => crate::bench::run(cmd).await,
        Command::Compliance(cmd) => crate::compliance_cmd::run(cmd).await,
        Command::Pool(cmd) => crate::pool::run(cmd).await,
        Command::Topology(TopologyCommand::Check { file }) => topology_check(&file),
        Command::Tls(cmd) => crate::tls_cmd::run(cmd),
        Command::User(UserCommand::Add {
            name,
            admin,
            ttl_hours,
            data_dir,
            database,
        }) => {
            let cfg = ServeConfig {
                data_dir,
                database,
                ..Default::default()
            };
            std::fs::create_dir_all(&cfg.data_dir)
                .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
            let store =
                chatcap_server::serve::open_store(&cfg.database_url(), Schema::Content).await?;
            let id = match store.user_by_name(&name).await? {
                Some(u) => u.id,
                None => store.create_user(&name, admin).await?,
            };
            let key = TokenKey::load(&store).await?;
            let token = key.issue(id, unix_now() + (ttl_hours * 3600) as i64);
            println!("{id}\t{name}\t{token}");
            store.close().await;
            Ok(())
        }
    }
}

/// `topology check FILE`: the pool's table on stdout; or every problem on stderr, one per
/// line, and a usage error (exit code 2).
fn topology_check(file: &std::path::Path) -> anyhow::Result<()> {
    use chatcap_server::topology::Topology;
    let err = match Topology::load(file) {
        Ok(topology) => {
            print!("{}", topology.summary());
            return Ok(());
        }
        Err(e) => e,
    };
    let problems = err.problems();
    if problems.is_empty() {
        return Err(UsageError(err.to_string()).into());
    }
    for p in &problems {
        eprintln!("{p}");
    }
    let n = problems.len();
    let s = if n == 1 { "" } else { "s" };
    Err(UsageError(format!(
        "{}: {n} problem{s} (docs/TOPOLOGY.md)",
        file.display()
    ))
    .into())
}

/// Load the settings file (and the topology's part for this process) and apply flags.
pub fn serve_config(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
    let mut cfg = match (&args.topology, &args.name) {
        (Some(file), Some(name)) => {
            let topology = chatcap_server::topology::Topology::load(file)
                .map_err(|e| UsageError(e.to_string()))?;
            let settings = args.config.as_deref().or(topology.settings.as_deref());
            let base = settings_file(settings)?;
            topology
                .serve_config(name, base, args.database.as_deref())
                .map_err(|e| UsageError(e.to_string()))?
        }
        _ => settings_file(args.config.as_deref())?,
    };
    if let Some(v) = &args.data_dir {
        cfg.data_dir = v.clone();
    }
    if let Some(v) = args.role {
        cfg.role = v.into();
    }
    if !args.chat_servers.is_empty() {
        cfg.chat_servers = args.chat_servers.clone();
    }
    if let Some(v) = &args.link_secret {
        cfg.link_secret = Some(v.clone());
    }
    if let Some(v) = args.listen {
        cfg.listen = v;
    }
    if let Some(v) = args.chat_listen {
        cfg.chat_listen = v;
    }
    if let Some(v) = &args.database {
        cfg.database = Some(v.clone());
    }
    if let Some(v) = args.history {
        cfg.chat.history = v;
    }
    if args.compliance {
        cfg.compliance.enabled = true;
    }
    if let Some(v) = args.compliance_interval {
        cfg.compliance.run_interval_secs = v;
    }
    if let Some(v) = &args.file_store {
        cfg.file_store = Some(v.clone());
    }
    args.tls.apply(&mut cfg.tls);
    cfg.validate().map_err(UsageError)?;
    Ok(cfg)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = serve_config(&args)?;
    let running = chatcap_server::serve::start(cfg.clone()).await?;
    println!("{}", ready_line(&cfg, &running));
    wait_for_stop_signal().await;
    tracing::info!("stopping: closing connections and committing queued posts");
    tokio::time::timeout(Duration::from_secs(30), running.shutdown())
        .await
        .ok();
    println!("chatcap stopped");
    Ok(())
}

/// The line printed once the process serves: tools (the embedded target, benchmarks)
/// read the bound addresses from it.
fn ready_line(cfg: &ServeConfig, running: &chatcap_server::serve::Running) -> String {
    let http = running.http_addr;
    let (ws, web) = match running.client_tls {
        true => ("wss", "https"),
        false => ("ws", "http"),
    };
    let mut line = format!("chatcap ready: role {:?}", cfg.role).to_lowercase();
    if cfg.role.has_front() {
        line += &format!("  clients {ws}://{http}/ws");
        line += &format!("  metrics {web}://{http}/metrics");
    } else {
        line += &format!("  metrics http://{http}/metrics");
    }
    if let Some(addr) = running.chat_addr() {
        line += &format!("  chat link {addr}  database {}", cfg.database_url());
    }
    if let Some(pool) = &cfg.pool {
        line += &format!("  pool {} server {}", pool.pool, pool.name);
        if pool.kind == chatcap_server::topology::PoolKind::Multiple {
            line += &format!("  pool link {}", pool.listen);
        }
    }
    if cfg.role == Role::Frontend {
        let servers: Vec<String> = cfg.chat_servers.iter().map(|a| a.to_string()).collect();
        line += &format!("  chat servers {}", servers.join(","));
    }
    // Say what is plaintext: fine on loopback and for benchmarks, nowhere else.
    let links = match running.link_tls {
        true => "links mutual-tls",
        false => "links plaintext",
    };
    let clients = match (cfg.role.has_front(), running.client_tls) {
        (false, _) => "",
        (true, true) => "clients tls, ",
        (true, false) => "clients plaintext, ",
    };
    line += &format!("  transport: {clients}{links}");
    line
}
