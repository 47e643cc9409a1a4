//! The server processes an embedded target starts: a single box, or a chat server with
//! front-end processes in front of it sharing one client port (`SO_REUSEPORT`), so that
//! more users fit than one process's 20,000 open files allow.
//!
//! Each process writes its stdout and stderr to `<name>.log` in the run folder; it is ready
//! once it has printed its `chatcap ready:` line. Stopping sends SIGTERM to the front ends
//! first, then to the chat server (which commits what is queued), and SIGKILL after 20 s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::target_error::TargetError;
use crate::profile::Confinement;

/// One started process.
struct Proc {
    /// `server` (single box or chat server) or `frontend-N`.
    name: String,
    child: Child,
    log: PathBuf,
    /// Where it serves `/metrics`, when that address is its own (front ends share theirs).
    metrics: Option<SocketAddr>,
}

/// What to start.
pub struct Launch<'a> {
    /// The `chatcap` binary.
    pub binary: &'a Path,
    /// `--config FILE` for every process.
    pub config: Option<&'a Path>,
    /// The data folder (SQLite databases, file store).
    pub data_dir: &'a Path,
    /// Where the logs go.
    pub log_dir: &'a Path,
    /// Messages of history on join.
    pub history: u32,
    /// Client port (shared by the front ends).
    pub http: SocketAddr,
    /// The chat server's link port.
    pub chat: SocketAddr,
    /// The chat server's own HTTP port (`/metrics`), when front ends are separate.
    pub chat_http: SocketAddr,
    /// Front-end processes (0 = a single box).
    pub front_ends: u32,
    /// The hardware profile's limits every process starts inside, when the run has one.
    pub confine: Option<&'a Confinement>,
    /// The client port's certificate and key, when clients connect over TLS.
    pub certificate: Option<&'a chatcap_server::tls::issue::Files>,
}

/// The server processes of a run, in start order.
#[derive(Default)]
pub struct ServerProcesses {
    procs: Vec<Proc>,
}

/// How long each process may take to print its ready line (loading a large directory).
const READY_WITHIN: Duration = Duration::from_secs(120);

impl ServerProcesses {
    /// Start the processes and wait until each is ready; on failure the started ones are
    /// stopped.
    pub async fn start(l: &Launch<'_>) -> Result<ServerProcesses, TargetError> {
        let mut started = ServerProcesses::default();
        let outcome = started.start_all(l).await;
        if let Err(e) = outcome {
            started.stop().await;
            return Err(e);
        }
        Ok(started)
    }

    async fn start_all(&mut self, l: &Launch<'_>) -> Result<(), TargetError> {
        let (http, chat, history) = (l.http.to_string(), l.chat.to_string(), l.history.max(1));
        if l.front_ends == 0 {
            let args = ["--listen", &http, "--chat-listen", &chat];
            self.spawn(l, "server", &args, history, Some(l.http), true)?;
            return self.wait_ready(0).await;
        }
        let chat_http = l.chat_http.to_string();
        let args = [
            "--role",
            "chat",
            "--listen",
            &chat_http,
            "--chat-listen",
            &chat,
        ];
        self.spawn(l, "server", &args, history, Some(l.chat_http), false)?;
        self.wait_ready(0).await?;
        for i in 1..=l.front_ends {
            let args = ["--role", "frontend", "--listen", &http, "--chat", &chat];
            // Front ends share the client port: a scrape there reaches any one of them.
            self.spawn(l, &format!("frontend-{i}"), &args, history, None, true)?;
        }
        for i in 1..self.procs.len() {
            self.wait_ready(i).await?;
        }
        Ok(())
    }

    fn spawn(
        &mut self,
        l: &Launch<'_>,
        name: &str,
        args: &[&str],
        history: u32,
        metrics: Option<SocketAddr>,
        client_port: bool,
    ) -> Result<(), TargetError> {
        let log = l.log_dir.join(format!("{name}.log"));
        let io = |what: String| move |source| TargetError::Io { what, source };
        let out = std::fs::File::create(&log).map_err(io(format!("creating {}", log.display())))?;
        let err = out.try_clone().map_err(io("server log".into()))?;
        let mut cmd = Command::new(l.binary);
        cmd.arg("serve");
        if let Some(cfg) = l.config {
            cmd.arg("--config").arg(cfg);
        }
        // The client port: a single box's or a front end's (a chat server has none).
        if let Some(files) = l.certificate.filter(|_| client_port) {
            cmd.arg("--tls-cert").arg(&files.cert);
            cmd.arg("--tls-key").arg(&files.key);
        }
        cmd.arg("--data-dir")
            .arg(l.data_dir)
            .args(args)
            .args(["--history", &history.to_string()]);
        if let Some(c) = l.confine {
            c.confine(&mut cmd);
        }
        let child = cmd
            .env(
                "RUST_LOG",
                std::env::var("CHATCAP_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| TargetError::Spawn {
                binary: l.binary.display().to_string(),
                source,
            })?;
        self.procs.push(Proc {
            name: name.to_string(),
            child,
            log,
            metrics,
        });
        Ok(())
    }

    /// Wait until process `i` has printed its ready line (or has exited: an error).
    async fn wait_ready(&mut self, i: usize) -> Result<(), TargetError> {
        let p = &mut self.procs[i];
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        let not_ready = |p: &Proc| TargetError::NotReady {
            name: p.name.clone(),
            secs: READY_WITHIN.as_secs(),
            log: p.log.display().to_string(),
        };
        while tokio::time::Instant::now() < deadline {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            if text.contains("chatcap ready:") {
                return Ok(());
            }
            if let Ok(Some(_)) = p.child.try_wait() {
                return Err(not_ready(p));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(not_ready(p))
    }

    /// (name, pid) of every process, the chat server (or single box) first.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.procs
            .iter()
            .map(|p| (p.name.clone(), p.child.id()))
            .collect()
    }

    /// (name, address) of every process whose `/metrics` address is its own.
    pub fn metrics_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.procs
            .iter()
            .filter_map(|p| Some((p.name.clone(), p.metrics?)))
            .collect()
    }

    /// Stop every process: front ends first, then the chat server; SIGTERM, then SIGKILL
    /// after 20 s.
    pub async fn stop(&mut self) {
        while let Some(mut p) = self.procs.pop() {
            let _ = Command::new("kill")
                .args(["-TERM", &p.child.id().to_string()])
                .status();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = p.child.try_wait() {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
