//! Memory per idle signed-in WebSocket connection in the front end.
//!
//! Connections are opened in steps (0, N/steps, …, N). Each is a real WebSocket to the
//! front-end process, signed in (so the front end holds a session for it and the chat
//! server a session behind it); after each step the bench waits for every sign-in reply,
//! lets the allocators settle and reads both processes' resident memory. The figure is
//! the least-squares slope of memory against connections, so the fixed cost of the
//! processes falls out. The load generator keeps its side cheap: no task per connection,
//! a 4 KiB read buffer, nothing read once signed in (an idle user receives nothing); its
//! own memory is read the same way, and both processes' CPU time while connections open,
//! so that a TLS run shows what a TLS session costs on each end.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use chatcap_server::tls::Connector;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::probe::{self, Rss};
use super::Processes;
use crate::bench::reply_head::ReplyHead;
use crate::bench::target::{cpu_time, BenchUser};
use crate::runner::net;
use crate::wss::{Ws, WsUrl};

/// Connections being opened (handshake + sign-in) at once.
const CONCURRENCY: usize = 64;

/// Longest one connection may take to open and sign in.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest one step may take in all.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// Longest wait for the front end to forget closed connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections per loopback source address (one address gives ~28,000 ephemeral ports).
const PER_SOURCE: usize = 16_000;

/// One idle connection, held and never read.
type Idle = Ws;

/// The readings after one step.
#[derive(Debug, Clone, Serialize)]
pub struct IdleStep {
    /// Idle connections open.
    pub connections: usize,
    /// Front-end process memory.
    pub frontend: Rss,
    /// Chat-server process memory.
    pub chat: Rss,
    /// This process's (the load generator's) memory.
    pub generator: Rss,
    /// Sessions the front end reports (`chatcap_frontend_sessions`).
    pub frontend_sessions: Option<f64>,
    /// Sessions the chat server reports (`chatcap_sessions`).
    pub chat_sessions: Option<f64>,
}

/// Memory per idle connection.
#[derive(Debug, Clone, Serialize)]
pub struct IdleFigures {
    /// Connections at the last step.
    pub connections: usize,
    /// Every step's readings, the first with no connection.
    pub steps: Vec<IdleStep>,
    /// Front end: slope of VmRSS, bytes per connection.
    pub frontend_rss_per_connection: Option<f64>,
    /// Front end: slope of RssAnon (heap, stacks: user-space data), bytes per connection.
    pub frontend_anon_per_connection: Option<f64>,
    /// Front end: RssAnon slope of each step on its own, bytes per connection.
    pub frontend_anon_per_step: Vec<f64>,
    /// Chat server: slope of VmRSS, bytes per session.
    pub chat_rss_per_session: Option<f64>,
    /// Chat server: slope of RssAnon, bytes per session.
    pub chat_anon_per_session: Option<f64>,
    /// Load generator: slope of RssAnon, bytes per connection.
    pub generator_anon_per_connection: Option<f64>,
    /// Load generator: RssAnon slope of each step on its own, bytes per connection (the
    /// first steps of a second run in this process reuse memory the first run freed: the
    /// last step is the one to read).
    pub generator_anon_per_step: Vec<f64>,
    /// Front-end CPU while the connections opened and signed in, µs per connection.
    pub frontend_cpu_us_per_connection: Option<f64>,
    /// Load-generator CPU while the connections opened and signed in, µs per connection.
    pub generator_cpu_us_per_connection: Option<f64>,
    /// Connect (TCP, TLS, WebSocket) and sign in, median, µs.
    pub open_p50_us: Option<u64>,
    /// …99th percentile, µs.
    pub open_p99_us: Option<u64>,
    /// The TLS handshake alone (TLS runs), median, µs.
    pub tls_p50_us: Option<u64>,
    /// …99th percentile, µs.
    pub tls_p99_us: Option<u64>,
}

/// Times and CPU gathered while connections opened.
#[derive(Default)]
struct Opening {
    /// Connect + sign-in of each connection, µs.
    open_us: Vec<u64>,
    /// TLS handshake of each connection, µs (TLS runs).
    tls_us: Vec<u64>,
    frontend_cpu: Duration,
    generator_cpu: Duration,
}

/// The `q` quantile (0–1) of `values`, sorted in place.
fn quantile(values: &mut [u64], q: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

/// The connection counts after each step: 0, then `idle * k / steps` for k = 1..=steps.
pub fn step_targets(idle: usize, steps: usize) -> Vec<usize> {
    let steps = steps.max(1);
    (0..=steps).map(|k| idle * k / steps).collect()
}

/// Open one idle connection per user of `users` in `steps`, reading memory at each.
/// The connections are closed before returning, and the front end has let go of them.
pub async fn measure(
    procs: &Processes,
    users: &[BenchUser],
    steps: usize,
) -> anyhow::Result<IdleFigures> {
    let url = WsUrl::parse(&procs.frontend.ws_url()).map_err(anyhow::Error::msg)?;
    let mut held: Vec<Idle> = Vec::with_capacity(users.len());
    let mut readings = Vec::new();
    let mut opened = Opening::default();
    let frontend_pid = procs.frontend.pid.to_string();
    for target in step_targets(users.len(), steps) {
        let from = held.len();
        let cpu = || (cpu_time(&frontend_pid), cpu_time("self"));
        let before = cpu();
        let opening = open_many(
            &url,
            procs.trust.as_ref(),
            &users[from..target],
            from,
            &mut held,
            &mut opened,
        );
        tokio::time::timeout(STEP_TIMEOUT, opening)
            .await
            .map_err(|_| {
                anyhow::anyhow!("step to {target} connections took over {STEP_TIMEOUT:?}")
            })??;
        let after = cpu();
        let spent = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => Duration::ZERO,
        };
        opened.frontend_cpu += spent(before.0, after.0);
        opened.generator_cpu += spent(before.1, after.1);
        let step = read_step(procs, held.len()).await?;
        eprintln!(
            "bench frontend: {:>6} idle connections — front end VmRSS {:.1} MiB (RssAnon {:.1} MiB), chat server {:.1} MiB",
            step.connections,
            mib(step.frontend.vm_rss),
            mib(step.frontend.anon),
            mib(step.chat.vm_rss)
        );
        readings.push(step);
    }
    drop(held);
    wait_sessions_gone(procs).await;
    Ok(figures(readings, opened))
}

/// The per-connection figures of a series of steps.
fn figures(steps: Vec<IdleStep>, mut opened: Opening) -> IdleFigures {
    let count = opened.open_us.len();
    let per_connection =
        |cpu: Duration| (count > 0).then(|| cpu.as_secs_f64() * 1e6 / count as f64);
    let point = |s: &IdleStep, y: fn(&IdleStep) -> u64| (s.connections as f64, y(s) as f64);
    let fit = |y: fn(&IdleStep) -> u64| {
        let points: Vec<(f64, f64)> = steps.iter().map(|s| point(s, y)).collect();
        probe::slope(&points)
    };
    let per_step = |y: fn(&IdleStep) -> u64| {
        steps
            .windows(2)
            .filter_map(|w| probe::slope(&[point(&w[0], y), point(&w[1], y)]))
            .collect()
    };
    let anon: fn(&IdleStep) -> u64 = |s| s.frontend.anon;
    IdleFigures {
        connections: steps.last().map_or(0, |s| s.connections),
        frontend_rss_per_connection: fit(|s| s.frontend.vm_rss),
        frontend_anon_per_connection: fit(anon),
        frontend_anon_per_step: per_step(anon),
        generator_anon_per_step: per_step(|s| s.generator.anon),
        chat_rss_per_session: fit(|s| s.chat.vm_rss),
        chat_anon_per_session: fit(|s| s.chat.anon),
        generator_anon_per_connection: fit(|s| s.generator.anon),
        frontend_cpu_us_per_connection: per_connection(opened.frontend_cpu),
        generator_cpu_us_per_connection: per_connection(opened.generator_cpu),
        open_p50_us: quantile(&mut opened.open_us, 0.5),
        open_p99_us: quantile(&mut opened.open_us, 0.99),
        tls_p50_us: quantile(&mut opened.tls_us, 0.5),
        tls_p99_us: quantile(&mut opened.tls_us, 0.99),
        steps,
    }
}

async fn read_step(procs: &Processes, connections: usize) -> anyhow::Result<IdleStep> {
    let frontend = probe::settled_rss(procs.frontend.pid)
        .await
        .context("front-end memory")?;
    let chat = probe::settled_rss(procs.chat.pid)
        .await
        .context("chat-server memory")?;
    let generator = probe::settled_rss(std::process::id())
        .await
        .context("the generator's memory")?;
    let sessions = |body: Option<String>, name: &str| body.map(|b| probe::metric_sum(&b, name));
    Ok(IdleStep {
        connections,
        frontend,
        chat,
        generator,
        frontend_sessions: sessions(
            probe::scrape(procs.frontend.ready.http, procs.trust.as_ref()).await,
            "chatcap_frontend_sessions",
        ),
        chat_sessions: sessions(
            probe::scrape(procs.chat.ready.http, None).await,
            "chatcap_sessions",
        ),
    })
}

/// Open and sign in a connection for each of `users` (`first` is the first one's index),
/// [`CONCURRENCY`] at a time, appending them to `held`.
async fn open_many(
    url: &WsUrl,
    trust: Option<&Connector>,
    users: &[BenchUser],
    first: usize,
    held: &mut Vec<Idle>,
    times: &mut Opening,
) -> anyhow::Result<()> {
    let addr = url
        .addr()
        .context("the front end's URL has no IP address")?;
    let spread = u8::try_from((first + users.len()).div_ceil(PER_SOURCE).max(1)).unwrap_or(u8::MAX);
    let mut opened = futures_util::stream::iter(users.iter().enumerate())
        .map(|(i, user)| open_one(addr, url, trust, first + i, spread, user))
        .buffer_unordered(CONCURRENCY);
    let mut last_note = Instant::now();
    while let Some(done) = opened.next().await {
        let (ws, open, tls) =
            done.with_context(|| format!("idle connection {}", held.len() + 1))?;
        times.open_us.push(crate::metrics::micros(open));
        if url.tls {
            times.tls_us.push(crate::metrics::micros(tls));
        }
        held.push(ws);
        if last_note.elapsed() >= Duration::from_secs(5) {
            eprintln!("bench frontend: {} idle connections open…", held.len());
            last_note = Instant::now();
        }
    }
    Ok(())
}

/// Connect connection number `n`, sign in as `user`, and wait for the reply: the socket,
/// the whole time, and the TLS handshake's part of it.
async fn open_one(
    addr: SocketAddr,
    url: &WsUrl,
    trust: Option<&Connector>,
    n: usize,
    spread: u8,
    user: &BenchUser,
) -> anyhow::Result<(Idle, Duration, Duration)> {
    let started = Instant::now();
    let open = async {
        let stream = net::connect(addr, net::source_for(&addr, n, spread))
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let opened = crate::wss::open_on(url, stream, trust, crate::wss::config(1 << 16)).await?;
        let (mut ws, tls) = (opened.ws, opened.tls);
        let sign_in = format!(r#"{{"id":1,"type":"sign_in","token":"{}"}}"#, user.token);
        ws.send(WsMessage::Text(sign_in.into())).await?;
        loop {
            let text = match ws.next().await {
                Some(Ok(WsMessage::Text(t))) => t,
                Some(Ok(WsMessage::Close(_))) | None => bail!("closed before the sign-in reply"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            };
            let head: ReplyHead = serde_json::from_str(text.as_str())
                .with_context(|| format!("unparsable server message {:?}", text.as_str()))?;
            match head.kind {
                "reply" if head.id == Some(1) => return Ok((ws, started.elapsed(), tls)),
                "error" => bail!("sign-in refused: {}", text.as_str()),
                _ => {}
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, open)
        .await
        .map_err(|_| anyhow::anyhow!("no sign-in reply within {CONNECT_TIMEOUT:?}"))?
}

/// Wait (bounded) until the front end holds no session, so that closing thousands of
/// connections is over before anything else is measured.
async fn wait_sessions_gone(procs: &Processes) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while Instant::now() < deadline {
        let left = probe::scrape(procs.frontend.ready.http, procs.trust.as_ref())
            .await
            .map(|b| probe::metric_sum(&b, "chatcap_frontend_sessions"));
        if left.is_some_and(|n| n < 0.5) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("bench frontend: the front end still held sessions after {DRAIN_TIMEOUT:?}");
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_start_at_zero_and_end_at_idle() {
        assert_eq!(step_targets(10_000, 2), vec![0, 5_000, 10_000]);
        assert_eq!(step_targets(10, 3), vec![0, 3, 6, 10]);
        assert_eq!(step_targets(7, 0), vec![0, 7]);
    }

    #[test]
    fn figures_are_slopes_of_the_steps() {
        let step = |connections: usize, fe: u64, anon: u64, chat: u64| IdleStep {
            connections,
            frontend: Rss { vm_rss: fe, anon },
            chat: Rss {
                vm_rss: chat,
                anon: chat,
            },
            generator: Rss {
                vm_rss: 2 * anon,
                anon: 2 * anon,
            },
            frontend_sessions: None,
            chat_sessions: None,
        };
        let opened = Opening {
            open_us: (1..=2_000).collect(),
            tls_us: Vec::new(),
            frontend_cpu: Duration::from_millis(600),
            generator_cpu: Duration::from_millis(900),
        };
        let f = figures(
            vec![
                step(0, 10_000_000, 4_000_000, 50_000_000),
                step(1_000, 18_000_000, 11_000_000, 50_300_000),
                step(2_000, 30_000_000, 18_000_000, 50_600_000),
            ],
            opened,
        );
        assert_eq!(f.connections, 2_000);
        assert_eq!(f.frontend_rss_per_connection, Some(10_000.0));
        assert_eq!(f.frontend_anon_per_connection, Some(7_000.0));
        assert_eq!(f.frontend_anon_per_step, vec![7_000.0, 7_000.0]);
        assert_eq!(f.chat_rss_per_session, Some(300.0));
        assert_eq!(f.chat_anon_per_session, Some(300.0));
        assert_eq!(f.generator_anon_per_connection, Some(14_000.0));
        assert_eq!(f.generator_anon_per_step, vec![14_000.0, 14_000.0]);
        assert_eq!(f.frontend_cpu_us_per_connection, Some(300.0));
        assert_eq!(f.generator_cpu_us_per_connection, Some(450.0));
        assert_eq!((f.open_p50_us, f.open_p99_us), (Some(1_000), Some(1_980)));
        assert_eq!((f.tls_p50_us, f.tls_p99_us), (None, None));
    }
}
