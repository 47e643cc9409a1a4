//! Acked posts per second and post→ack latency.
//!
//! Each client signs in over its own WebSocket, joins its room, then keeps up to `window`
//! posts outstanding until the end of the run. A post's latency runs from just before its
//! frame is written to when its acknowledgement is read; the server acknowledges only after
//! the group commit, so every ack counted is a durable post. Only acks read inside the
//! measured window (after the warm-up) count toward posts/s and the histogram. Each client
//! keeps its own histogram; they are merged exactly at the end.
//!
//! [`run`] measures one `chatcap serve` process (`bench server`); [`post`] is the same
//! load against any [`PostTarget`] — several WebSocket URLs, several chat servers'
//! `/metrics`, several processes' CPU — for `bench pool`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use chatcap_server::protocol::Op;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::reply_head::ReplyHead;
use super::report::{Latency, PostFigures};
use super::target::{cpu_time, BenchUser, ServerProcess};
use crate::client::Client;

/// The posting load.
#[derive(Debug, Clone)]
pub struct PostPlan {
    /// WebSocket clients.
    pub clients: usize,
    /// Posts outstanding per client.
    pub window: usize,
    /// Rooms (client i posts in room i mod rooms).
    pub rooms: usize,
    /// Bytes of text per post.
    pub text_bytes: usize,
    /// Posting before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// Longest wait for outstanding acks after the last post was sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What one client counted.
struct ClientTally {
    hist: Histogram<u64>,
    acked_in_window: u64,
    acked_total: u64,
    deliveries: u64,
    errors: BTreeMap<String, u64>,
    unacked: u64,
}

/// Where the posting clients connect, and what is read at both edges of the window.
pub struct PostTarget {
    /// WebSocket URLs: client i connects to `urls[i mod urls.len()]`.
    pub urls: Vec<String>,
    /// `/metrics` addresses of the chat servers; their group-commit summaries are added up.
    pub metrics: Vec<SocketAddr>,
    /// CPU-time readers (one per process, or process tree), in the order of the figures
    /// [`post`] returns.
    pub cpu: Vec<CpuReader>,
}

/// Reads the CPU time (user + system) a process has used so far.
pub type CpuReader = Box<dyn Fn() -> Option<Duration> + Send + Sync>;

/// Run the posting load against `server` and summarise it.
pub async fn run(
    plan: &PostPlan,
    server: &ServerProcess,
    posters: &[BenchUser],
) -> anyhow::Result<PostFigures> {
    let pid = server.pid.to_string();
    let target = PostTarget {
        urls: vec![server.ws_url()],
        metrics: vec![server.http],
        cpu: vec![Box::new(move || cpu_time(&pid))],
    };
    let users = &posters[..plan.clients.min(posters.len())];
    let ready = connect_all(&target.urls, users).await?;
    let (mut figures, cpu) = post(plan, &target, ready, posters).await?;
    figures.server_cpu_pct = cpu.first().copied().flatten();
    Ok(figures)
}

/// Connect, sign in and join every user's room, one after the other; user i through
/// `urls[i mod urls.len()]`.
pub async fn connect_all(urls: &[String], users: &[BenchUser]) -> anyhow::Result<Vec<Client>> {
    if urls.is_empty() {
        bail!("no WebSocket URL to connect to");
    }
    let mut ready = Vec::with_capacity(users.len());
    for (i, user) in users.iter().enumerate() {
        ready.push(connect(&urls[i % urls.len()], user).await?);
    }
    Ok(ready)
}

/// Run the posting load on clients already connected (client i as `posters[i]`, posting in
/// its room) and summarise it; also each of `target.cpu` over the window, % of one core
/// (`server_cpu_pct` is left empty: the caller knows which process is the server).
pub async fn post(
    plan: &PostPlan,
    target: &PostTarget,
    ready: Vec<Client>,
    posters: &[BenchUser],
) -> anyhow::Result<(PostFigures, Vec<Option<f64>>)> {
    // Connecting and joining happened before, so the window measures posting only.
    let start = Instant::now();
    let t0 = start + plan.warmup;
    let t1 = t0 + plan.duration;
    let text = "x".repeat(plan.text_bytes);
    let mut tasks = Vec::with_capacity(ready.len());
    for (i, (client, user)) in ready.into_iter().zip(posters).enumerate() {
        let text = text.clone();
        let (window, room) = (plan.window, user.room);
        tasks.push(tokio::spawn(async move {
            post_loop(client, i, room, &text, window, t0, t1).await
        }));
    }
    let metrics_at = tokio::spawn(scrape_at(target.metrics.clone(), t0, t1));
    let (process_cpu, own_cpu) = cpu_between(&target.cpu, t0, t1).await;

    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut total = ClientTally::new()?;
    for t in tasks {
        let tally = t.await.context("a posting client panicked")??;
        hist.add(&tally.hist)?;
        total.acked_in_window += tally.acked_in_window;
        total.acked_total += tally.acked_total;
        total.deliveries += tally.deliveries;
        total.unacked += tally.unacked;
        for (k, v) in tally.errors {
            *total.errors.entry(k).or_default() += v;
        }
    }
    let commits = metrics_at.await.ok().flatten();
    let secs = plan.duration.as_secs_f64();
    let pct = |d: Option<Duration>| d.map(|d| 100.0 * d.as_secs_f64() / secs);
    let figures = PostFigures {
        clients: plan.clients,
        window: plan.window,
        rooms: plan.rooms,
        text_bytes: plan.text_bytes,
        warmup_s: plan.warmup.as_secs_f64(),
        duration_s: secs,
        acked_in_window: total.acked_in_window,
        acked_total: total.acked_total,
        posts_per_sec: total.acked_in_window as f64 / secs,
        deliveries_per_sec: total.deliveries as f64 / secs,
        unacked: total.unacked,
        errors: total.errors,
        latency_us: Latency::from_hist(&hist),
        commit_batch_mean: commits.map(|c| c.0),
        commit_ms_mean: commits.map(|c| c.1),
        server_cpu_pct: None,
        generator_cpu_pct: pct(own_cpu),
    };
    Ok((figures, process_cpu.into_iter().map(pct).collect()))
}

async fn connect(url: &str, user: &BenchUser) -> anyhow::Result<Client> {
    let mut c = Client::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    c.timeout = Duration::from_secs(30);
    let token = user.token.clone();
    if let Err(r) = c.call(Op::SignIn { token }).await? {
        bail!("sign-in refused: {r:?}");
    }
    let join = Op::Join {
        room: user.room,
        history: Some(0),
    };
    if let Err(r) = c.call(join).await? {
        bail!("join refused: {r:?}");
    }
    Ok(c)
}

impl ClientTally {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            acked_in_window: 0,
            acked_total: 0,
            deliveries: 0,
            errors: BTreeMap::new(),
            unacked: 0,
        })
    }
}

/// Post until `t1` keeping `window` posts outstanding, then wait (bounded) for the rest.
async fn post_loop(
    client: Client,
    n: usize,
    room: i64,
    text: &str,
    window: usize,
    t0: Instant,
    t1: Instant,
) -> anyhow::Result<ClientTally> {
    let (mut sink, mut stream) = client.into_stream().split();
    let mut tally = ClientTally::new()?;
    let mut outstanding: HashMap<u64, Instant> = HashMap::with_capacity(window * 2);
    let mut next_id: u64 = 1_000;
    let give_up = t1 + DRAIN_TIMEOUT;
    loop {
        let now = Instant::now();
        if now < t1 && outstanding.len() < window {
            while outstanding.len() < window {
                let id = next_id;
                next_id += 1;
                let json = format!(
                    r#"{{"id":{id},"type":"post","room":{room},"text":"{text}","client_msg_id":"b{n}-{id}"}}"#
                );
                outstanding.insert(id, Instant::now());
                sink.feed(WsMessage::Text(json.into())).await?;
            }
            sink.flush().await?;
        }
        if now >= t1 && outstanding.is_empty() {
            break;
        }
        let wake = if now < t1 { t1 } else { give_up };
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = tokio::time::sleep_until(wake) => {
                if now >= t1 { break; }
                continue;
            }
        };
        let text = match msg {
            Some(Ok(WsMessage::Text(t))) => t,
            Some(Ok(WsMessage::Close(_))) | None => bail!("the server closed client {n}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("client {n}: {e}"),
        };
        let at = Instant::now();
        let head: ReplyHead = match serde_json::from_str(text.as_str()) {
            Ok(h) => h,
            Err(e) => bail!("unparsable server message {:?}: {e}", text.as_str()),
        };
        match head.kind {
            "reply" => {
                let Some(sent) = head.id.and_then(|id| outstanding.remove(&id)) else {
                    continue;
                };
                tally.acked_total += 1;
                if at >= t0 && at < t1 {
                    tally.acked_in_window += 1;
                    let us = at.duration_since(sent).as_micros().max(1) as u64;
                    tally.hist.saturating_record(us);
                }
            }
            "error" => {
                if let Some(id) = head.id {
                    outstanding.remove(&id);
                }
                let code = head.code.unwrap_or_else(|| "unknown".into());
                *tally.errors.entry(code).or_default() += 1;
            }
            "chat" => tally.deliveries += u64::from(at >= t0 && at < t1),
            _ => {}
        }
    }
    tally.unacked = outstanding.len() as u64;
    let _ = sink.close().await;
    Ok(tally)
}

/// CPU used by each reader's process and by this process between `t0` and `t1`.
async fn cpu_between(
    readers: &[CpuReader],
    t0: Instant,
    t1: Instant,
) -> (Vec<Option<Duration>>, Option<Duration>) {
    tokio::time::sleep_until(t0).await;
    let before: Vec<Option<Duration>> = readers.iter().map(|r| r()).collect();
    let g0 = cpu_time("self");
    tokio::time::sleep_until(t1).await;
    let after: Vec<Option<Duration>> = readers.iter().map(|r| r()).collect();
    let g1 = cpu_time("self");
    let diff = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
    let each = before.into_iter().zip(after).map(|(a, b)| diff(a, b));
    (each.collect(), diff(g0, g1))
}

/// Group commits between `t0` and `t1`, from the chat servers' Prometheus summaries
/// `chatcap_commit_batch_posts` and `chatcap_commit_seconds`, added up over the servers
/// read at both edges: (mean posts per commit, mean milliseconds per commit).
async fn scrape_at(metrics: Vec<SocketAddr>, t0: Instant, t1: Instant) -> Option<(f64, f64)> {
    tokio::time::sleep_until(t0).await;
    let mut before = Vec::with_capacity(metrics.len());
    for addr in &metrics {
        before.push(commit_totals(*addr).await);
    }
    tokio::time::sleep_until(t1).await;
    let mut sum: Option<[f64; 3]> = None;
    for (addr, a) in metrics.iter().zip(before) {
        // A server without the summaries yet (it committed nothing) is left out.
        let (Some(a), Some(b)) = (a, commit_totals(*addr).await) else {
            continue;
        };
        let s = sum.get_or_insert([0.0; 3]);
        for (s, (a, b)) in s.iter_mut().zip(a.iter().zip(b)) {
            *s += b - a;
        }
    }
    let [posts, commits, seconds] = sum?;
    (commits > 0.0).then(|| (posts / commits, 1000.0 * seconds / commits))
}

/// [posts sum, commit count, seconds sum] of the commit summaries.
async fn commit_totals(http: SocketAddr) -> Option<[f64; 3]> {
    let body = super::frontend::probe::scrape(http, None).await?;
    let value = |name: &str| {
        body.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some([
        value("chatcap_commit_batch_posts_sum")?,
        value("chatcap_commit_batch_posts_count")?,
        value("chatcap_commit_seconds_sum")?,
    ])
}
