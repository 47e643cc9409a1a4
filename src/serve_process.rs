//! A `chatcap serve` child process, in any role: started from a binary, waited for until
//! it prints its ready line, and read back (its addresses, its pid for `/proc`).
//!
//! The one way benchmarks, the embedded target and tests start server processes, so
//! that the ready line has a single reader.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::profile::Confinement;

/// What a ready line says: `chatcap ready: role R  [clients ws[s]://A/ws]  metrics
/// http[s]://A/metrics  [chat link C  database D]  [chat servers X,Y]  transport: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyLine {
    /// `single`, `chat` or `frontend`.
    pub role: String,
    /// The HTTP address (clients and web services on a front end; `/metrics` always).
    pub http: SocketAddr,
    /// The session-link listener, when the process runs a chat server.
    pub chat: Option<SocketAddr>,
    /// The HTTP address speaks TLS (`wss://`, `https://`).
    pub tls: bool,
}

/// Read a ready line; `None` when it is not one.
pub fn parse_ready(line: &str) -> Option<ReadyLine> {
    let rest = line.strip_prefix("chatcap ready:")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let after = |w: &str| {
        words
            .iter()
            .position(|x| *x == w)
            .and_then(|i| words.get(i + 1))
    };
    let metrics = after("metrics")?;
    let (tls, rest) = match metrics.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, metrics.strip_prefix("http://")?),
    };
    let http = rest.strip_suffix("/metrics")?.parse().ok()?;
    let chat = match after("link") {
        Some(a) => Some(a.parse().ok()?),
        None => None,
    };
    Some(ReadyLine {
        role: after("role").unwrap_or(&"single").to_string(),
        http,
        chat,
        tls,
    })
}

/// How long a server may take to print its ready line (SQLite opens and migrates fast;
/// loading 200,000 users from PostgreSQL takes a few seconds).
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `chatcap serve` child. Killed when dropped.
pub struct ServeProcess {
    child: Child,
    /// Its process id (for `/proc/<pid>`).
    pub pid: u32,
    /// What it printed when ready.
    pub ready: ReadyLine,
    /// Where its stderr (logs) goes.
    pub log: PathBuf,
}

impl ServeProcess {
    /// Start `exe serve ARGS` with `RUST_LOG=warn` (unless `env` says otherwise), logs to
    /// `log`, and wait for its ready line.
    pub async fn spawn(
        exe: &Path,
        args: &[OsString],
        env: &[(&str, &str)],
        log: &Path,
    ) -> anyhow::Result<ServeProcess> {
        Self::spawn_in(exe, args, env, log, None).await
    }

    /// [`ServeProcess::spawn`], started inside a hardware profile's limits when given.
    pub async fn spawn_in(
        exe: &Path,
        args: &[OsString],
        env: &[(&str, &str)],
        log: &Path,
        confine: Option<&Confinement>,
    ) -> anyhow::Result<ServeProcess> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("CHATCAP_DATABASE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(c) = confine {
            c.confine(cmd.as_std_mut());
        }
        let mut child = cmd.spawn().context("starting chatcap serve")?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("chatcap ready:") {
                    return Ok::<_, std::io::Error>(Some(line));
                }
            }
            Ok(None)
        })
        .await;
        let line = match ready {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) => {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                bail!("the server exited before it was ready:\n{text}");
            }
            Err(_) => bail!("the server was not ready within {READY_TIMEOUT:?}"),
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let ready = parse_ready(&line).with_context(|| format!("ready line {line:?}"))?;
        Ok(ServeProcess {
            child,
            pid,
            ready,
            log: log.to_path_buf(),
        })
    }

    /// The WebSocket URL (front-end roles).
    pub fn ws_url(&self) -> String {
        let scheme = if self.ready.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.ready.http)
    }

    /// The chat server's link address (single and chat roles).
    pub fn chat_addr(&self) -> anyhow::Result<SocketAddr> {
        self.ready
            .chat
            .context("this process runs no chat server (role frontend)")
    }

    /// Stop with SIGKILL (acknowledged posts are durable; nothing else matters).
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Stop with SIGTERM and wait for the process to exit (at most `wait`); its exit
    /// status, or `None` when it had to be killed.
    pub async fn terminate(mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(wait, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_of_every_role_parse() {
        let single = "chatcap ready: role single  clients ws://127.0.0.1:40001/ws  metrics http://127.0.0.1:40001/metrics  chat link 127.0.0.1:40002  database sqlite:/tmp/x.db";
        let r = parse_ready(single).expect("single");
        assert_eq!(r.role, "single");
        assert_eq!(r.http.port(), 40001);
        assert_eq!(r.chat.map(|a| a.port()), Some(40002));

        let chat = "chatcap ready: role chat  metrics http://127.0.0.1:9100/metrics  chat link 127.0.0.1:5041  database postgres://x/y";
        let r = parse_ready(chat).expect("chat");
        assert_eq!(r.role, "chat");
        assert_eq!(r.chat.map(|a| a.port()), Some(5041));

        let fe = "chatcap ready: role frontend  clients ws://127.0.0.1:8080/ws  metrics http://127.0.0.1:8080/metrics  chat servers 127.0.0.1:5041,127.0.0.1:5042";
        let r = parse_ready(fe).expect("frontend");
        assert_eq!(r.role, "frontend");
        assert_eq!(r.http.port(), 8080);
        assert_eq!(r.chat, None);
        assert!(!r.tls);

        let tls = "chatcap ready: role single  clients wss://127.0.0.1:8443/ws  metrics https://127.0.0.1:8443/metrics  chat link 127.0.0.1:5041  database sqlite:x  transport: clients tls, links mutual-tls";
        let r = parse_ready(tls).expect("tls");
        assert!(r.tls);
        assert_eq!(r.http.port(), 8443);

        assert_eq!(parse_ready("something else"), None);
    }
}
