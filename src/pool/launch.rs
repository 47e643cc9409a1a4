//! Starting a whole pool on this machine from its topology file, for benchmarks and tests
//! (`chatcap pool up`, and `chatcap run` with a topology target): a throwaway PostgreSQL
//! cluster when the topology asks for one (the same `scripts/pg-throwaway` the tests use,
//! built into the binary), then every chat server — active ones first — and every front
//! end, each a `chatcap serve --topology FILE --name NAME` child with its own log and
//! data folder. Every address must be on loopback: the pool's processes are this
//! machine's.
//!
//! Stopping sends SIGTERM to the front ends, then to the chat servers, then stops the
//! database cluster: only what was started here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chatcap_server::topology::{Database, Topology};

use crate::profile::Confinement;
use crate::serve_process::ServeProcess;

/// The throwaway-cluster script, as the tests use it.
const PG_THROWAWAY: &str = include_str!("../../scripts/pg-throwaway");

/// A throwaway PostgreSQL cluster started for the pool.
#[derive(Debug)]
pub struct Throwaway {
    /// Its URL.
    pub url: String,
    /// Its folder (removed when stopped).
    pub dir: PathBuf,
}

impl Throwaway {
    /// Start one (installing Debian's `postgresql` when missing, as the script does).
    pub async fn start() -> anyhow::Result<Throwaway> {
        let out = run_script(&[]).await?;
        let value = |key: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("export {key}=")))
                .map(str::to_string)
        };
        match (value("CHATCAP_TEST_PG"), value("CHATCAP_PG_DIR")) {
            (Some(url), Some(dir)) => Ok(Throwaway {
                url,
                dir: PathBuf::from(dir),
            }),
            _ => bail!("the throwaway PostgreSQL script printed no URL:\n{out}"),
        }
    }

    /// Stop it and remove its folder.
    pub async fn stop(self) {
        let dir = self.dir.display().to_string();
        if let Err(e) = run_script(&["stop", &dir]).await {
            tracing::warn!(error = %e, "throwaway PostgreSQL not stopped cleanly");
        }
    }
}

async fn run_script(args: &[&str]) -> anyhow::Result<String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("bash")
        .arg("-s")
        .arg("--")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running bash for the throwaway PostgreSQL script")?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    stdin.write_all(PG_THROWAWAY.as_bytes()).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "the throwaway PostgreSQL script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The pool's content database, ready: its URL, and the cluster when we started one.
pub struct PoolDatabase {
    /// The URL every chat server uses.
    pub url: String,
    /// The throwaway cluster, when the topology asked for one.
    pub throwaway: Option<Throwaway>,
}

impl PoolDatabase {
    /// The topology's database: started when `throwaway`, else its URL.
    pub async fn prepare(topology: &Topology) -> anyhow::Result<PoolDatabase> {
        Ok(match &topology.content {
            Database::Url(url) => PoolDatabase {
                url: url.clone(),
                throwaway: None,
            },
            Database::Throwaway => {
                let t = Throwaway::start().await?;
                PoolDatabase {
                    url: t.url.clone(),
                    throwaway: Some(t),
                }
            }
        })
    }
}

/// How to start the pool's processes, beyond the topology.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Environment of every process (e.g. `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// (chat server, URL): a server that reaches the pool's database another way (a
    /// connection pooler, or a test's proxy that can cut it off).
    pub database_of: Vec<(String, String)>,
    /// A hardware profile's limits every process starts inside (`chatcap run --profile`).
    pub confine: Option<Arc<Confinement>>,
}

/// One started process of the pool.
pub struct Member {
    /// Its name in the topology.
    pub name: String,
    /// `chat` or `frontend`.
    pub role: &'static str,
    /// Active in the topology (chat servers).
    pub active: bool,
    /// The process.
    pub process: ServeProcess,
}

/// A pool running on this machine.
pub struct Launched {
    /// The topology it was started from.
    pub topology: Topology,
    /// Its processes: chat servers (active first), then front ends.
    pub members: Vec<Member>,
    /// The content database.
    pub database: PoolDatabase,
    /// The folder of logs and data.
    pub dir: PathBuf,
}

/// Every address of the topology must be on loopback.
pub fn check_loopback(topology: &Topology) -> anyhow::Result<()> {
    let addrs = topology
        .chat_servers
        .iter()
        .map(|s| (&s.name, s.address))
        .chain(topology.front_ends.iter().map(|f| (&f.name, f.address)));
    for (name, addr) in addrs {
        if !addr.is_loopback() {
            bail!(
                "{}: {name} is at {addr}, not a loopback address: `pool up` runs the whole pool \
                 on this machine (use 127.0.0.x addresses, or start each process on its host \
                 with `chatcap serve --topology FILE --name NAME`)",
                topology.file.display()
            );
        }
    }
    Ok(())
}

impl Launched {
    /// Start the chat servers and front ends of `topology` on `database`, logs and data
    /// under `dir`; on failure, what was started is stopped.
    pub async fn start(
        topology: Topology,
        exe: &Path,
        database: PoolDatabase,
        dir: &Path,
        options: &Options,
    ) -> anyhow::Result<Launched> {
        check_loopback(&topology)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut launched = Launched {
            topology,
            members: Vec::new(),
            database,
            dir: dir.to_path_buf(),
        };
        if let Err(e) = launched.start_all(exe, options).await {
            launched.stop().await;
            return Err(e);
        }
        Ok(launched)
    }

    async fn start_all(&mut self, exe: &Path, options: &Options) -> anyhow::Result<()> {
        let mut order: Vec<(String, &'static str, bool)> = Vec::new();
        let t = &self.topology;
        order.extend(t.actives().map(|s| (s.name.clone(), "chat", true)));
        order.extend(t.standbys().map(|s| (s.name.clone(), "chat", false)));
        order.extend(
            t.front_ends
                .iter()
                .map(|f| (f.name.clone(), "frontend", false)),
        );
        let files = self.dir.join("files");
        for (name, role, active) in order {
            let data = self.dir.join(&name);
            std::fs::create_dir_all(&data)?;
            let database = options
                .database_of
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(&self.database.url, |(_, url)| url);
            let mut args: Vec<OsString> = vec![
                "--topology".into(),
                self.topology.file.clone().into(),
                "--name".into(),
                name.clone().into(),
                "--database".into(),
                database.into(),
                "--data-dir".into(),
                data.into(),
            ];
            if role == "frontend" {
                args.extend(["--file-store".into(), files.clone().into()]);
            }
            let log = self.dir.join(format!("{name}.log"));
            let env: Vec<(&str, &str)> = options
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let confine = options.confine.as_deref();
            let process = ServeProcess::spawn_in(exe, &args, &env, &log, confine)
                .await
                .with_context(|| format!("starting {name} (log: {})", log.display()))?;
            self.members.push(Member {
                name,
                role,
                active,
                process,
            });
        }
        Ok(())
    }

    /// (name, pid) of every process, chat servers first.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.members
            .iter()
            .map(|m| (m.name.clone(), m.process.pid))
            .collect()
    }

    /// (name, address) of every process's `/metrics`, chat servers first.
    pub fn metrics_addrs(&self) -> Vec<(String, std::net::SocketAddr)> {
        self.members
            .iter()
            .map(|m| (m.name.clone(), m.process.ready.http))
            .collect()
    }

    /// The `/metrics` addresses served over TLS (front ends whose client port is TLS).
    pub fn https_metrics(&self) -> Vec<std::net::SocketAddr> {
        self.members
            .iter()
            .filter(|m| m.process.ready.tls)
            .map(|m| m.process.ready.http)
            .collect()
    }

    /// The front ends' WebSocket URLs.
    pub fn urls(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.role == "frontend")
            .map(|m| m.process.ws_url())
            .collect()
    }

    /// What runs where, as a table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "pool {} ({}), database {}\n{:<10} {:<9} {:<8} {:>7}  {}\n",
            self.topology.name,
            self.topology.kind,
            chatcap_server::topology::Database::Url(self.database.url.clone()).redacted(),
            "name",
            "role",
            "start",
            "pid",
            "addresses"
        );
        for m in &self.members {
            let addresses = match self.topology.server(&m.name) {
                Some(s) => format!(
                    "links {}  pool {}  metrics http://{}/metrics",
                    s.link_addr(),
                    s.pool_addr(),
                    s.metrics_addr()
                ),
                None => format!("clients {}", m.process.ws_url()),
            };
            let start = match (m.role, m.active) {
                ("chat", true) => "active",
                ("chat", false) => "standby",
                _ => "-",
            };
            out += &format!(
                "{:<10} {:<9} {:<8} {:>7}  {}\n",
                m.name, m.role, start, m.process.pid, addresses
            );
        }
        out += &format!("logs and data: {}\n", self.dir.display());
        out
    }

    /// Kill one process with SIGKILL (failure tests); false when there is none by that name.
    pub async fn kill(&mut self, name: &str) -> bool {
        match self.members.iter().position(|m| m.name == name) {
            Some(i) => {
                self.members.remove(i).process.kill().await;
                true
            }
            None => false,
        }
    }

    /// Stop everything started here: front ends, then chat servers (SIGTERM, 20 s), then
    /// the throwaway database.
    pub async fn stop(&mut self) {
        while let Some(m) = self.members.pop() {
            if m.process.terminate(Duration::from_secs(20)).await.is_none() {
                tracing::warn!(name = %m.name, "did not stop within 20 s; killed");
            }
        }
        if let Some(t) = self.database.throwaway.take() {
            t.stop().await;
        }
    }
}
