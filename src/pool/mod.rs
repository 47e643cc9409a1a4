//! `chatcap pool`: start a whole pool on this machine from its topology file (`up`), and
//! administer a running pool over its chat servers' pool port 8011 (`status`, `drain`,
//! `undrain`, `set-active`). docs/POOL.md describes the pool; docs/TOPOLOGY.md the file.
//!
//! - [`launch`]: starting and stopping the pool's processes (also used by `chatcap run`).
//! - this file: the subcommands and their output.

pub mod launch;

use std::path::PathBuf;

use anyhow::Context;
use chatcap_server::pool::admin::{request, AdminError};
use chatcap_server::protocol::pool::AdminRequest;
use chatcap_server::protocol::pool::ADMIN;
use chatcap_server::tls::LinkTrust;
use chatcap_server::topology::Topology;
use clap::{Args, Subcommand};
use serde_json::Value;

/// `chatcap pool` subcommands.
#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Start the pool of a topology file on this machine (every address must be on
    /// loopback): a throwaway PostgreSQL cluster when the file says `throwaway`, the chat
    /// servers, the front ends. Prints what runs where; Ctrl-C or SIGTERM stops everything
    /// it started.
    Up(UpArgs),
    /// Each chat server's state: active place, sessions, front-end links, live rooms,
    /// connected peers; and the pool's active places as the database holds them.
    Status(StatusArgs),
    /// Move a chat server's sessions to the other active servers (clients keep their
    /// WebSockets) and stop it taking new ones; it gives up its active place, which a
    /// standby takes.
    Drain(NameArgs),
    /// Let a drained chat server take an active place again.
    Undrain(NameArgs),
    /// Set the pool's active chat servers (at most 4), like Lync's
    /// Set-CsPersistentChatActiveServer: servers left off keep their sessions but take no
    /// new ones.
    SetActive(SetActiveArgs),
}

/// Options of `pool up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The topology file.
    pub topology: PathBuf,
    /// Folder for the processes' logs and data (default: a new folder under reports/pool-…).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Options of `pool status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The topology file.
    pub topology: PathBuf,
    /// Print the answers as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A topology file and one chat server of it.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The topology file.
    pub topology: PathBuf,
    /// The chat server.
    pub server: String,
}

/// Options of `pool set-active`.
#[derive(Debug, Args)]
pub struct SetActiveArgs {
    /// The topology file.
    pub topology: PathBuf,
    /// The chat servers to be active (1–4).
    #[arg(required = true)]
    pub servers: Vec<String>,
}

fn load(path: &std::path::Path) -> anyhow::Result<Topology> {
    Topology::load(path).map_err(|e| crate::usage::UsageError(e.to_string()).into())
}

/// Run a `pool` subcommand.
pub async fn run(cmd: PoolCommand) -> anyhow::Result<()> {
    match cmd {
        PoolCommand::Up(args) => up(args).await,
        PoolCommand::Status(args) => {
            let t = load(&args.topology)?;
            let answers = status_all(&t, &trust(&t)?).await;
            if args.json {
                let v: Vec<Value> = answers
                    .iter()
                    .map(|(name, a)| match a {
                        Ok(v) => v.clone(),
                        Err(e) => serde_json::json!({"server": name, "error": e.to_string()}),
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", status_table(&t, &answers));
            }
            Ok(())
        }
        PoolCommand::Drain(a) => admin_one(&a.topology, &a.server, AdminRequest::Drain).await,
        PoolCommand::Undrain(a) => admin_one(&a.topology, &a.server, AdminRequest::Undrain).await,
        PoolCommand::SetActive(a) => {
            let t = load(&a.topology)?;
            for s in &a.servers {
                if t.server(s).is_none() {
                    let known: Vec<&str> = t.chat_servers.iter().map(|c| c.name.as_str()).collect();
                    return Err(crate::usage::UsageError(format!(
                        "{s:?} is not a chat server of {} ({})",
                        t.file.display(),
                        known.join(", ")
                    ))
                    .into());
                }
            }
            let req = AdminRequest::SetActive {
                servers: a.servers.clone(),
            };
            // Any reachable server of the pool writes the new list.
            let mut last = None;
            let trust = trust(&t)?;
            for s in &t.chat_servers {
                match request(s.pool_addr(), &trust, &req).await {
                    Ok(_) => {
                        println!("active servers: {}", a.servers.join(", "));
                        print!("{}", status_table(&t, &status_all(&t, &trust).await));
                        return Ok(());
                    }
                    Err(e @ AdminError::Refused { .. }) => {
                        return Err(crate::usage::UsageError(e.to_string()).into())
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last
                .map(anyhow::Error::from)
                .unwrap_or_else(|| anyhow::anyhow!("no chat server")))
        }
    }
}

/// How `chatcap` reaches the pool's chat servers as `admin`: the topology's link secret,
/// and the link TLS (and secret, when the topology has none) of its serve settings file,
/// `{name}` in its paths read as `admin` (the certificate must name `admin`).
pub fn trust(t: &Topology) -> anyhow::Result<LinkTrust> {
    let cfg = crate::settings::settings_file(t.settings.as_deref())?;
    let secret = t.link_secret.as_deref().or(cfg.link_secret.as_deref());
    let tls = cfg.tls.for_process(ADMIN);
    tls.validate().map_err(crate::usage::UsageError)?;
    Ok(LinkTrust::new(secret, &tls)?)
}

async fn admin_one(path: &std::path::Path, server: &str, req: AdminRequest) -> anyhow::Result<()> {
    let t = load(path)?;
    let s = t.server(server).ok_or_else(|| {
        crate::usage::UsageError(format!(
            "{server:?} is not a chat server of {}",
            t.file.display()
        ))
    })?;
    let v = request(s.pool_addr(), &trust(&t)?, &req).await?;
    let what = match req {
        AdminRequest::Drain => "drained: its sessions move to the other active servers",
        AdminRequest::Undrain => "undrained: it takes an active place when one is free",
        _ => "done",
    };
    println!("{server} {what}");
    print!("{}", status_table(&t, &[(server.to_string(), Ok(v))]));
    Ok(())
}

/// Ask every chat server of the topology for its status.
pub async fn status_all(
    t: &Topology,
    trust: &LinkTrust,
) -> Vec<(String, Result<Value, AdminError>)> {
    let mut out = Vec::new();
    for s in &t.chat_servers {
        let answer = request(s.pool_addr(), trust, &AdminRequest::Status).await;
        out.push((s.name.clone(), answer));
    }
    out
}

/// The status answers as a table, and the active places once.
pub fn status_table(t: &Topology, answers: &[(String, Result<Value, AdminError>)]) -> String {
    let mut out = format!(
        "{:<10} {:<8} {:>4} {:<10} {:>8} {:>6} {:>6}  {}\n",
        "server", "state", "slot", "takes new", "sessions", "links", "rooms", "peers"
    );
    let mut slots = None;
    for (name, answer) in answers {
        match answer {
            Ok(v) => {
                let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
                let num = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
                let state = if flag("cut_off") {
                    "cut off"
                } else if flag("drained") {
                    "drained"
                } else if flag("active") {
                    "active"
                } else {
                    "standby"
                };
                let slot = v
                    .get("slot")
                    .and_then(Value::as_i64)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into());
                let peers: Vec<&str> = v
                    .get("peers")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                out += &format!(
                    "{:<10} {:<8} {:>4} {:<10} {:>8} {:>6} {:>6}  {}\n",
                    name,
                    state,
                    slot,
                    if flag("accepting") { "yes" } else { "no" },
                    num("sessions"),
                    num("front_end_links"),
                    num("rooms_live"),
                    peers.join(",")
                );
                if slots.is_none() {
                    slots = v.get("slots").cloned();
                }
            }
            Err(e) => out += &format!("{name:<10} down     ({e})\n"),
        }
    }
    if let Some(Value::Array(list)) = slots {
        let places: Vec<String> = list
            .iter()
            .map(|s| {
                let slot = s.get("slot").unwrap_or(&Value::Null);
                let ms = s.get("remaining_us").and_then(Value::as_i64).unwrap_or(0) / 1000;
                match s.get("holder").and_then(Value::as_str) {
                    Some(holder) if ms >= 0 => format!("{slot}={holder} ({ms} ms left)"),
                    Some(holder) => format!("{slot}={holder} (lease ended)"),
                    None => format!("{slot}=free"),
                }
            })
            .collect();
        out += &format!("active places ({}): {}\n", t.name, places.join("  "));
    }
    out
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let topology = load(&args.topology)?;
    launch::check_loopback(&topology).map_err(|e| crate::usage::UsageError(e.to_string()))?;
    let dir = match args.dir {
        Some(d) => d,
        None => PathBuf::from("reports").join(format!(
            "pool-{}-{}",
            topology.name,
            chatcap_server::auth::unix_now()
        )),
    };
    let exe = std::env::current_exe().context("finding this binary")?;
    eprintln!(
        "starting pool {} from {}…",
        topology.name,
        topology.file.display()
    );
    let database = launch::PoolDatabase::prepare(&topology).await?;
    let mut pool =
        launch::Launched::start(topology, &exe, database, &dir, &launch::Options::default())
            .await?;
    print!("{}", pool.table());
    println!(
        "chatcap pool up: {} processes; Ctrl-C stops them",
        pool.members.len()
    );
    crate::stop_signal::wait_for_stop_signal().await;
    eprintln!("stopping the pool…");
    pool.stop().await;
    println!("chatcap pool stopped");
    Ok(())
}
