//! Server processes for tests: the real `chatcap` binary started in a role (`chat`,
//! `frontend`, `single`) on a shared data folder and database, and users created with
//! `chatcap user add` — what an operator does.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;

use chatcap::client::Client;
use chatcap::serve_process::ServeProcess;
use chatcap_server::protocol::Op;

use super::{fresh_pg_database, Backend};

/// Where a test's processes keep their data: a folder, and a PostgreSQL URL when not
/// SQLite.
pub struct Data {
    /// The folder (SQLite files, file store, logs).
    pub dir: tempfile::TempDir,
    /// The content database, when PostgreSQL.
    pub database: Option<String>,
}

impl Data {
    /// A fresh folder (and a fresh PostgreSQL database on that backend).
    pub async fn new(backend: Backend) -> Data {
        let database = match backend {
            Backend::Postgres => Some(fresh_pg_database().await),
            Backend::Sqlite => None,
        };
        Data {
            dir: tempfile::tempdir().expect("temp dir"),
            database,
        }
    }

    /// `--data-dir DIR [--database URL]`.
    pub fn args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["--data-dir".into(), self.dir.path().into()];
        if let Some(url) = &self.database {
            v.extend(["--database".into(), url.into()]);
        }
        v
    }

    /// `chatcap user add NAME [--admin]`: (id, token).
    pub fn user_add(&self, name: &str, admin: bool) -> (i64, String) {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_chatcap"));
        cmd.env_remove("CHATCAP_DATABASE")
            .env("RUST_LOG", "warn")
            .args(["user", "add", name])
            .args(self.args());
        if admin {
            cmd.arg("--admin");
        }
        let out = cmd.output().expect("run chatcap user add");
        assert!(
            out.status.success(),
            "chatcap user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).expect("utf-8");
        let fields: Vec<&str> = line.trim_end().split('\t').collect();
        let id = fields[0].parse().expect("a user id first");
        let token = fields.last().expect("a token last").to_string();
        (id, token)
    }

    /// Start `chatcap serve` with `args` after the data arguments; logs go to
    /// `<dir>/<tag>.log`.
    pub async fn serve(&self, tag: &str, args: &[&str]) -> ServeProcess {
        let mut all = self.args();
        all.extend(args.iter().map(OsString::from));
        let log = self.dir.path().join(format!("{tag}.log"));
        ServeProcess::spawn(Path::new(env!("CARGO_BIN_EXE_chatcap")), &all, &[], &log)
            .await
            .unwrap_or_else(|e| panic!("{tag} did not start: {e:#}"))
    }

    /// A chat server (`--role chat`) linking on `chat_listen` (port 0: any).
    pub async fn chat_server(&self, tag: &str, chat_listen: SocketAddr) -> ServeProcess {
        self.chat_server_with(tag, chat_listen, &[]).await
    }

    /// [`Data::chat_server`] with `extra` arguments (link TLS, a secret…).
    pub async fn chat_server_with(
        &self,
        tag: &str,
        chat_listen: SocketAddr,
        extra: &[&str],
    ) -> ServeProcess {
        let chat = chat_listen.to_string();
        let mut args = vec![
            "--role",
            "chat",
            "--listen",
            "127.0.0.1:0",
            "--chat-listen",
            &chat,
        ];
        args.extend_from_slice(extra);
        self.serve(tag, &args).await
    }

    /// A front end (`--role frontend`) on `listen`, linked to `chat`.
    pub async fn front_end(
        &self,
        tag: &str,
        listen: SocketAddr,
        chat: &[SocketAddr],
    ) -> ServeProcess {
        let servers: Vec<String> = chat.iter().map(|a| a.to_string()).collect();
        let servers = servers.join(",");
        let listen = listen.to_string();
        let args = [
            "--role", "frontend", "--listen", &listen, "--chat", &servers,
        ];
        self.serve(tag, &args).await
    }
}

/// Any free loopback port, as an address.
pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A client connected to `url` and signed in with `token`.
pub async fn signed_in(url: &str, token: &str) -> Client {
    let mut c = Client::connect(url).await.expect("connect");
    c.timeout = std::time::Duration::from_secs(10);
    c.call(Op::SignIn {
        token: token.to_string(),
    })
    .await
    .expect("sign-in reply")
    .expect("sign-in accepted");
    c
}

/// `GET path` on `addr`: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get_as(addr, path, None).await
}

/// `GET path` on `addr`, with `Authorization: Bearer <token>` when given: (status, body).
pub async fn http_get_as(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
