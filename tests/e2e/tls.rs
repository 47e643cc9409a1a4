//! TLS (docs/TLS.md), with real processes: `wss://` sign-in and posting on a single box
//! with a self-signed certificate and through a front end with certificates from
//! `chatcap tls issue`; mutual TLS on the session link (5041), where a front end without
//! the right certificate, a peer with none and one whose certificate expired are refused
//! with a log line that says why; and the pool port (8011) under mutual TLS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chatcap::client::{Client, ClientError};
use chatcap::wss::OpenError;
use chatcap_server::protocol::session::{Frame, VERSION};
use chatcap_server::protocol::{Op, Privacy, Push, RoomKind};
use chatcap_server::tls::issue::{Authority, Validity};
use chatcap_server::tls::{self, Connector, Identity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use chatcap_server::config::TlsConfig;
use chatcap_server::pool::admin::request;
use chatcap_server::protocol::pool::AdminRequest;
use chatcap_server::tls::LinkTrust;

use crate::common::pool::{pool_tests_run, topology_text, TestPool, SECRET};
use chatcap::bench::frontend::probe;
use chatcap_server::protocol::ErrorCode;

use crate::common::procs::{any_port, http_get, Data};
use crate::common::{category, join, open_category, post, room, wait_push, Backend};

/// Sign in on `url`, trusting `trust`.
async fn signed_in_tls(url: &str, token: &str, trust: &Connector) -> Client {
    let mut c = Client::connect_with(url, Some(trust))
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    c.timeout = Duration::from_secs(10);
    c.call(Op::SignIn {
        token: token.to_string(),
    })
    .await
    .expect("sign-in reply")
    .expect("sign-in accepted");
    c
}

/// The admin makes an open room; both join; `bob` sees the admin's post.
async fn post_and_receive(url: &str, trust: &Connector, admin: &str, bob: &str, tag: &str) {
    let mut a = signed_in_tls(url, admin, trust).await;
    let mut b = signed_in_tls(url, bob, trust).await;
    let cat = category(&mut a, open_category(&format!("tls-{tag}"))).await;
    let id = room(
        &mut a,
        cat,
        &format!("tls-{tag}"),
        Privacy::Open,
        RoomKind::Normal,
    )
    .await;
    join(&mut a, id).await;
    join(&mut b, id).await;
    let text = format!("over TLS ({tag})");
    let ack = post(&mut a, id, &text, &format!("m-{tag}")).await;
    let got = wait_push(&mut b, |p| matches!(p, Push::Chat(m) if m.room == id)).await;
    let Push::Chat(m) = got else { unreachable!() };
    assert_eq!((m.text.as_str(), m.seq), (text.as_str(), ack.seq));
}

/// Wait until `log` has a line containing every one of `words`; the line.
async fn log_line(log: &Path, words: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| words.iter().all(|w| l.contains(w))) {
            return line.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no line with {words:?} in {}:\n{text}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `chatcap tls issue --out DIR --cert …`: the folder.
fn tls_issue(dir: &Path, certs: &[&str]) -> PathBuf {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_chatcap"));
    cmd.args(["tls", "issue", "--out"]).arg(dir);
    for c in certs {
        cmd.args(["--cert", c]);
    }
    let out = cmd.output().expect("run chatcap tls issue");
    assert!(
        out.status.success(),
        "tls issue failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_path_buf()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn wss_sign_in_and_post_on_a_single_box_with_a_self_signed_certificate() {
    let data = Data::new(Backend::Sqlite).await;
    let (_, admin) = data.user_add("admin@tls.test", true);
    let (_, bob) = data.user_add("bob@tls.test", false);
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--chat-listen",
        "127.0.0.1:0",
        "--tls-self-signed",
    ];
    let server = data.serve("single", &args).await;
    let url = server.ws_url();
    assert!(url.starts_with("wss://"), "{url}");
    let ca = data.dir.path().join("tls/self-signed.pem");
    let trust = tls::trusting(&ca).expect("trust the self-signed certificate");
    post_and_receive(&url, &trust, &admin, &bob, "self-signed").await;

    // No plaintext on a TLS port.
    let plain = Client::connect(&url.replacen("wss://", "ws://", 1)).await;
    assert!(plain.is_err(), "a plaintext WebSocket on the TLS port");
    // A client that trusts another authority refuses the server, and says why.
    let other = tempfile::tempdir().expect("dir");
    let foreign = Authority::new("someone else", Validity::days(1)).expect("CA");
    let files = foreign.own().write(other.path(), "ca").expect("write");
    let wrong = tls::trusting(&files.cert).expect("trust");
    match Client::connect_with(&url, Some(&wrong)).await {
        Err(ClientError::Open(OpenError::Tls(e))) => {
            assert!(e.to_string().contains("UnknownIssuer"), "{e}")
        }
        Err(e) => panic!("expected a TLS refusal, got {e}"),
        Ok(_) => panic!("a server whose certificate nobody signed was trusted"),
    }
    // `wss://` without a CA to trust is an error before anything is sent.
    assert!(matches!(
        Client::connect_with(&url, None).await,
        Err(ClientError::Open(OpenError::NoTrust(_)))
    ));

    // A restart keeps the certificate clients already trust.
    let pem = std::fs::read_to_string(&ca).expect("certificate");
    server.kill().await;
    let again = data.serve("single-2", &args).await;
    assert_eq!(std::fs::read_to_string(&ca).expect("certificate"), pem);
    signed_in_tls(&again.ws_url(), &bob, &trust).await;
    again.kill().await;
}

/// A chat server with mutual TLS on its link port, CA and certificates from
/// `chatcap tls issue` in `certs`.
async fn chat_with_link_tls(
    data: &Data,
    tag: &str,
    certs: &Path,
) -> chatcap::serve_process::ServeProcess {
    let (ca, cert, key) = (
        path_str(&certs.join("ca.pem")),
        path_str(&certs.join("chat.pem")),
        path_str(&certs.join("chat-key.pem")),
    );
    let args = ["--link-ca", &ca, "--link-cert", &cert, "--link-key", &key];
    data.chat_server_with(tag, any_port(), &args).await
}

/// Open a TLS connection to the link port as `identity` (none: no certificate), send
/// `Hello` and read: true when the chat server answered anything.
async fn link_answers(addr: std::net::SocketAddr, ca: &Path, identity: Option<Identity>) -> bool {
    let config = tls::client_config(tls::pem::roots(ca).expect("roots"), identity).expect("config");
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let Ok(mut s) = Connector::new(config).connect_ip(addr.ip(), tcp).await else {
        return false;
    };
    let hello = Frame::Hello {
        version: VERSION,
        name: "probe".into(),
    };
    let body = hello.to_bytes();
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    if s.write_all(&frame).await.is_err() || s.flush().await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
    matches!(read, Ok(Ok(n)) if n > 0)
}

#[tokio::test]
async fn mutual_tls_on_the_session_link_refuses_front_ends_without_the_right_certificate() {
    let data = Data::new(Backend::Sqlite).await;
    let (_, admin) = data.user_add("admin@mtls.test", true);
    let (_, bob) = data.user_add("bob@mtls.test", false);
    let certs = tls_issue(
        &data.dir.path().join("certs"),
        &["chat=127.0.0.1", "fe=127.0.0.1,localhost"],
    );
    let foreign = tls_issue(&data.dir.path().join("foreign"), &["fe=127.0.0.1"]);
    let chat = chat_with_link_tls(&data, "chat", &certs).await;
    let link = chat.chat_addr().expect("link").to_string();
    let front = |tag: &str, cert_dir: &Path| {
        [
            "--role",
            "frontend",
            "--listen",
            "127.0.0.1:0",
            "--chat",
            &link,
            "--tls-cert",
            &path_str(&certs.join("fe.pem")),
            "--tls-key",
            &path_str(&certs.join("fe-key.pem")),
            "--link-ca",
            &path_str(&certs.join("ca.pem")),
            "--link-cert",
            &path_str(&cert_dir.join(format!("{tag}.pem"))),
            "--link-key",
            &path_str(&cert_dir.join(format!("{tag}-key.pem"))),
        ]
        .map(|s| s.to_string())
    };

    // The front end with a certificate from the pool's CA links, and serves wss://.
    let good_args = front("fe", &certs);
    let good_args: Vec<&str> = good_args.iter().map(String::as_str).collect();
    let good = data.serve("fe-good", &good_args).await;
    let trust = tls::trusting(&certs.join("ca.pem")).expect("trust");
    post_and_receive(&good.ws_url(), &trust, &admin, &bob, "front-end").await;

    // One whose certificate another CA signed is refused on the link port: the chat server
    // says why, the front end never links and signs nobody in.
    let bad_args = front("fe", &foreign);
    let bad_args: Vec<&str> = bad_args.iter().map(String::as_str).collect();
    let bad = data.serve("fe-bad", &bad_args).await;
    let line = log_line(
        &chat.log,
        &["link refused: TLS handshake failed", "UnknownIssuer"],
    )
    .await;
    assert!(
        line.contains("127.0.0.1"),
        "the line names the peer: {line}"
    );
    log_line(&bad.log, &["link to chat server closed before Welcome"]).await;
    let mut c = Client::connect_with(&bad.ws_url(), Some(&trust))
        .await
        .expect("the front end itself answers");
    c.timeout = Duration::from_secs(10);
    let refused = c
        .call(Op::SignIn { token: bob.clone() })
        .await
        .expect("reply");
    assert_eq!(
        refused.err().map(|r| r.code),
        Some(ErrorCode::Busy),
        "a front end without a link signs nobody in"
    );
    let health = |fe: &chatcap::serve_process::ServeProcess| {
        let (addr, trust) = (fe.ready.http, trust.clone());
        async move { probe::http_get(addr, "/healthz", Some(&trust)).await }
    };
    assert!(
        health(&good).await.is_some(),
        "the linked front end is healthy"
    );
    assert!(health(&bad).await.is_none(), "the unlinked one answers 503");
    // The chat server counted the refusals.
    let (_, metrics) = http_get(chat.ready.http, "/metrics").await;
    for name in ["chatcap_links_refused_total", "chatcap_tls_refused_total"] {
        assert!(
            probe::metric_sum(&metrics, name) >= 1.0,
            "{name}:\n{metrics}"
        );
    }

    // A front end refuses a chat server whose certificate does not name the address it
    // dialled (issued for 127.0.0.2, reached at 127.0.0.1).
    let misnamed = tls_issue(
        &data.dir.path().join("misnamed"),
        &["chat=127.0.0.2", "fe=127.0.0.1"],
    );
    let elsewhere = chat_with_link_tls(&data, "chat-misnamed", &misnamed).await;
    let elsewhere_link = elsewhere.chat_addr().expect("link").to_string();
    let pem = |f: &str| path_str(&misnamed.join(f));
    let wary = data
        .serve(
            "fe-wary",
            &[
                "--role",
                "frontend",
                "--listen",
                "127.0.0.1:0",
                "--chat",
                &elsewhere_link,
                "--link-ca",
                &pem("ca.pem"),
                "--link-cert",
                &pem("fe.pem"),
                "--link-key",
                &pem("fe-key.pem"),
            ],
        )
        .await;
    log_line(
        &wary.log,
        &[
            "link to chat server refused: TLS handshake failed",
            "certificate not valid for name",
        ],
    )
    .await;

    // A peer with no certificate is refused too.
    let ca = certs.join("ca.pem");
    assert!(!link_answers(chat.chat_addr().expect("link"), &ca, None).await);
    log_line(
        &chat.log,
        &[
            "link refused: TLS handshake failed",
            "peer sent no certificates",
        ],
    )
    .await;

    // So is one whose certificate, from the right CA, has expired. (`tls issue` cannot
    // back-date, so this chat server's CA is made here, with one current and one expired
    // certificate.)
    let own = tempfile::tempdir().expect("dir");
    let authority = Authority::new("chatcap link CA", Validity::days(1)).expect("CA");
    let own_ca = authority.own().write(own.path(), "ca").expect("write");
    let issue = |validity, stem| {
        authority
            .issue(&["127.0.0.1".into()], validity)
            .expect("issue")
            .write(own.path(), stem)
            .expect("write")
    };
    issue(Validity::days(1), "chat");
    let stale = issue(Validity::expired(Duration::from_secs(2 * 86_400)), "stale");
    let current = issue(Validity::days(1), "current");
    let strict = chat_with_link_tls(&data, "chat-strict", own.path()).await;
    let addr = strict.chat_addr().expect("link");
    let stale = Identity::load(&stale.cert, &stale.key).expect("identity");
    assert!(!link_answers(addr, &own_ca.cert, Some(stale)).await);
    log_line(
        &strict.log,
        &["link refused: TLS handshake failed", "certificate expired"],
    )
    .await;
    // …while a current certificate from the same CA gets its answer.
    let current = Identity::load(&current.cert, &current.key).expect("identity");
    assert!(
        link_answers(addr, &own_ca.cert, Some(current)).await,
        "{}",
        std::fs::read_to_string(&strict.log).unwrap_or_default()
    );

    for p in [good, bad, chat, strict, elsewhere, wary] {
        p.kill().await;
    }
}

#[tokio::test]
async fn a_pool_links_over_mutual_tls_and_refuses_a_peer_without_a_certificate() {
    if !pool_tests_run() {
        return;
    }
    // One settings file for the whole pool, one certificate per process (`{name}`), each
    // valid for its topology name and address; `admin` for `chatcap pool`.
    let mut text = topology_text("tls-pool", 2, 0, 1);
    let subnet = text
        .split("address = \"")
        .nth(1)
        .and_then(|s| s.rsplit_once('.'))
        .map(|(net, _)| net.to_string())
        .expect("a subnet");
    let certs_dir = tempfile::tempdir().expect("dir");
    let specs = [
        format!("chat1={subnet}.11"),
        format!("chat2={subnet}.12"),
        format!("fe1={subnet}.31"),
        "admin=127.0.0.1".to_string(),
    ];
    let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
    let certs = tls_issue(certs_dir.path(), &specs);
    let settings = certs.join("settings.toml");
    std::fs::write(
        &settings,
        "[tls]\nlink_ca = \"ca.pem\"\nlink_cert = \"{name}.pem\"\nlink_key = \"{name}-key.pem\"\n",
    )
    .expect("settings");
    text = format!("settings = \"{}\"\n{text}", settings.display());
    let pool = TestPool::start_from(&text, Default::default(), None).await;
    let ca = certs.join("ca.pem");

    // `chatcap pool status` reaches both servers over mutual TLS, and they reach each
    // other: both active.
    for server in ["chat1", "chat2"] {
        let status = pool.wait_status(server, |v| v["active"] == true).await;
        assert_eq!(status["active"], true, "{server}: {status}");
    }
    // Users on both servers chat through the front end (the post crosses 8011).
    let (_, admin) = pool.user("admin@tlspool.test", true);
    let mut a = pool.client(0, &admin).await;
    let cat = category(&mut a, open_category("tls-pool")).await;
    let id = room(&mut a, cat, "tls-pool", Privacy::Open, RoomKind::Normal).await;
    join(&mut a, id).await;
    let mut others = Vec::new();
    for i in 0..6 {
        let (_, token) = pool.user(&format!("u{i}@tlspool.test"), false);
        let mut c = pool.client(0, &token).await;
        join(&mut c, id).await;
        others.push(c);
    }
    let on = pool.sessions().await;
    assert!(
        on.iter().filter(|(_, n)| *n > 0).count() == 2,
        "sessions on both servers: {on:?}"
    );
    let ack = post(&mut a, id, "across the pool, encrypted", "tls-pool-1").await;
    for c in &mut others {
        let got = wait_push(c, |p| matches!(p, Push::Chat(m) if m.room == id)).await;
        let Push::Chat(m) = got else { unreachable!() };
        assert_eq!(m.seq, ack.seq);
    }

    // A peer without a certificate gets nothing from the pool port, and the log says why.
    let chat1 = pool.topology.server("chat1").expect("chat1").pool_addr();
    assert!(!link_answers(chat1, &ca, None).await);
    let log = pool.data.dir.path().join("run").join("chat1.log");
    log_line(
        &log,
        &[
            "pool connection refused: TLS handshake failed",
            "peer sent no certificates",
        ],
    )
    .await;
    // The front end's certificate, from the same CA, does not let it pass for `admin`.
    let impostor = TlsConfig {
        link_ca: Some(ca.clone()),
        link_cert: Some(certs.join("fe1.pem")),
        link_key: Some(certs.join("fe1-key.pem")),
        ..Default::default()
    };
    let impostor = LinkTrust::new(Some(SECRET), &impostor).expect("trust");
    let refused = request(chat1, &impostor, &AdminRequest::Status).await;
    assert!(
        refused.is_err(),
        "fe1's certificate drove the pool as admin"
    );
    log_line(
        &log,
        &[
            "pool connection refused",
            "\"admin\" is not valid for that name",
        ],
    )
    .await;
    pool.stop().await;
}

#[test]
fn tls_issue_refuses_to_overwrite_and_names_bad_certificate_specs() {
    let dir = tempfile::tempdir().expect("dir");
    let issue = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chatcap"))
            .args(["tls", "issue", "--out"])
            .arg(dir.path())
            .args(args)
            .output()
            .expect("run chatcap tls issue");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = issue(&["--cert", "chat1=127.0.0.1"]);
    assert_eq!(code, Some(0), "{stderr}");
    // The stem is one of the certificate's names (the pool port checks it).
    let cert = tls::pem::certs(&dir.path().join("chat1.pem"))
        .expect("certs")
        .remove(0);
    assert!(tls::certificate_names(&cert, "chat1"));
    let ca = std::fs::read_to_string(dir.path().join("ca.pem")).expect("ca");
    for (args, says) in [
        (vec!["--cert", "chat2=127.0.0.1"], "already holds a ca.pem"),
        (vec!["--cert", "ca-key=127.0.0.1"], "would collide"),
        (
            vec!["--cert", "a=127.0.0.1", "--cert", "a=127.0.0.2"],
            "given twice",
        ),
        (vec!["--cert", "nonames="], "expected STEM=NAME"),
        (vec!["--days", "0"], "--days"),
    ] {
        let (code, stderr) = issue(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ca.pem")).expect("ca"),
        ca,
        "the CA was not overwritten"
    );
}
