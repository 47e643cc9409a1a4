//! Front-end CPU per 1,000 forwarded messages.
//!
//! `clients` WebSocket clients sign in through the front end and each joins one room
//! (client i joins room i mod rooms); the first `posters` of them post at a fixed total
//! rate, open loop (a post does not wait for the previous ack). Each post comes back to
//! its poster as an ack and goes to every other client in its room as a `chat` push:
//! frames the front end forwards from the chat server to client sockets. After the
//! warm-up the bench reads, at the start and the end of the measured window, the front
//! end's CPU time (`/proc/<pid>/stat`), its `chatcap_frontend_forwarded_total` (frames to
//! client sessions) and the chat server's `chatcap_requests_total` (requests the front end
//! forwarded upstream: only this front end is linked to it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chatcap_server::protocol::Op;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::probe;
use super::Processes;
use crate::bench::reply_head::ReplyHead;
use crate::bench::target::{cpu_time, BenchUser};
use crate::client::Client;

/// The forwarding load.
#[derive(Debug, Clone)]
pub struct ForwardPlan {
    /// WebSocket clients, each in one room.
    pub clients: usize,
    /// Rooms.
    pub rooms: usize,
    /// Clients that post (the first ones).
    pub posters: usize,
    /// Posts per second, all posters together.
    pub rate: f64,
    /// Bytes of text per post.
    pub text_bytes: usize,
    /// Posting before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// Reading after the window: acks and pushes still in flight at its end are read, not
/// counted.
const DRAIN: Duration = Duration::from_secs(2);

/// The forwarding figures.
#[derive(Debug, Clone, Serialize)]
pub struct ForwardFigures {
    /// Clients.
    pub clients: usize,
    /// Rooms.
    pub rooms: usize,
    /// Posting clients.
    pub posters: usize,
    /// Posts per second asked for.
    pub rate: f64,
    /// Text bytes per post.
    pub text_bytes: usize,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// Posts sent in the window.
    pub posts_sent: u64,
    /// Acks read in the window.
    pub acks: u64,
    /// `chat` pushes read by the clients in the window (messages delivered).
    pub delivered: u64,
    /// Error replies by code (whole run).
    pub errors: BTreeMap<String, u64>,
    /// Frames the front end forwarded to client sessions in the window (its metric).
    pub forwarded: Option<u64>,
    /// Requests the front end forwarded to the chat server in the window (the chat
    /// server's `chatcap_requests_total`).
    pub upstream: Option<u64>,
    /// Front-end CPU time (user + system) in the window, ms.
    pub frontend_cpu_ms: Option<f64>,
    /// Front-end CPU ms per 1,000 frames forwarded to clients.
    pub frontend_ms_per_1000_forwarded: Option<f64>,
    /// Front-end CPU ms per 1,000 frames either way (to clients + upstream).
    pub frontend_ms_per_1000_frames: Option<f64>,
    /// Messages delivered to clients per second.
    pub delivered_per_sec: f64,
    /// Frames forwarded to clients per second.
    pub forwarded_per_sec: Option<f64>,
    /// Front-end CPU, % of one core.
    pub frontend_cpu_pct: Option<f64>,
    /// Chat-server CPU, % of one core.
    pub chat_cpu_pct: Option<f64>,
    /// Load generator CPU, % of one core.
    pub generator_cpu_pct: Option<f64>,
}

/// What one client counted.
#[derive(Default)]
struct Tally {
    posts_sent: u64,
    acks: u64,
    delivered: u64,
    errors: BTreeMap<String, u64>,
}

/// When a poster posts: every `period` from `first`.
struct Schedule {
    room: i64,
    first: Instant,
    period: Duration,
}

/// Readings at one edge of the window.
struct Snapshot {
    frontend_cpu: Option<Duration>,
    chat_cpu: Option<Duration>,
    own_cpu: Option<Duration>,
    forwarded: Option<f64>,
    upstream: Option<f64>,
}

impl Snapshot {
    async fn take(procs: &Processes) -> Snapshot {
        let frontend_cpu = cpu_time(&procs.frontend.pid.to_string());
        let chat_cpu = cpu_time(&procs.chat.pid.to_string());
        let own_cpu = cpu_time("self");
        let forwarded = probe::scrape(procs.frontend.ready.http, procs.trust.as_ref())
            .await
            .map(|b| probe::metric_sum(&b, "chatcap_frontend_forwarded_total"));
        let upstream = probe::scrape(procs.chat.ready.http, None)
            .await
            .map(|b| probe::metric_sum(&b, "chatcap_requests_total"));
        Snapshot {
            frontend_cpu,
            chat_cpu,
            own_cpu,
            forwarded,
            upstream,
        }
    }
}

/// Poster `j` of `posters` posting `rate` posts/s in all: its offset from the start and
/// its period (posters take turns, so the total is evenly spread).
pub fn poster_timing(j: usize, posters: usize, rate: f64) -> (Duration, Duration) {
    (
        Duration::from_secs_f64(j as f64 / rate),
        Duration::from_secs_f64(posters as f64 / rate),
    )
}

/// Run the forwarding load through the front end of `procs` and summarise it.
pub async fn run(
    plan: &ForwardPlan,
    procs: &Processes,
    users: &[BenchUser],
) -> anyhow::Result<ForwardFigures> {
    let url = procs.frontend.ws_url();
    let mut ready = Vec::with_capacity(plan.clients);
    for user in users.iter().take(plan.clients) {
        ready.push(connect(&url, procs.trust.as_ref(), user).await?);
    }
    let start = Instant::now() + Duration::from_millis(100);
    let t0 = start + plan.warmup;
    let t1 = t0 + plan.duration;
    let text: Arc<str> = "x".repeat(plan.text_bytes).into();
    let mut tasks = Vec::with_capacity(ready.len());
    for (i, (client, user)) in ready.into_iter().zip(users).enumerate() {
        let schedule = (i < plan.posters).then(|| {
            let (offset, period) = poster_timing(i, plan.posters, plan.rate);
            Schedule {
                room: user.room,
                first: start + offset,
                period,
            }
        });
        let text = text.clone();
        tasks.push(tokio::spawn(client_loop(client, i, schedule, text, t0, t1)));
    }
    tokio::time::sleep_until(t0).await;
    let a = Snapshot::take(procs).await;
    tokio::time::sleep_until(t1).await;
    let b = Snapshot::take(procs).await;

    let mut total = Tally::default();
    for t in tasks {
        let tally = t.await.context("a client task panicked")??;
        total.posts_sent += tally.posts_sent;
        total.acks += tally.acks;
        total.delivered += tally.delivered;
        for (k, v) in tally.errors {
            *total.errors.entry(k).or_default() += v;
        }
    }
    Ok(summarise(plan, &a, &b, total))
}

fn summarise(plan: &ForwardPlan, a: &Snapshot, b: &Snapshot, total: Tally) -> ForwardFigures {
    let secs = plan.duration.as_secs_f64();
    let cpu = |x: Option<Duration>, y: Option<Duration>| Some(y?.saturating_sub(x?));
    let count = |x: Option<f64>, y: Option<f64>| Some((y? - x?).max(0.0) as u64);
    let pct = |d: Option<Duration>| d.map(|d| 100.0 * d.as_secs_f64() / secs);
    let fe_cpu = cpu(a.frontend_cpu, b.frontend_cpu);
    let forwarded = count(a.forwarded, b.forwarded);
    let upstream = count(a.upstream, b.upstream);
    ForwardFigures {
        clients: plan.clients,
        rooms: plan.rooms,
        posters: plan.posters,
        rate: plan.rate,
        text_bytes: plan.text_bytes,
        warmup_s: plan.warmup.as_secs_f64(),
        duration_s: secs,
        posts_sent: total.posts_sent,
        acks: total.acks,
        delivered: total.delivered,
        errors: total.errors,
        forwarded,
        upstream,
        frontend_cpu_ms: fe_cpu.map(|d| d.as_secs_f64() * 1000.0),
        frontend_ms_per_1000_forwarded: fe_cpu
            .zip(forwarded)
            .and_then(|(d, n)| probe::ms_per_thousand(d, n)),
        frontend_ms_per_1000_frames: fe_cpu
            .zip(forwarded.zip(upstream))
            .and_then(|(d, (f, u))| probe::ms_per_thousand(d, f + u)),
        delivered_per_sec: total.delivered as f64 / secs,
        forwarded_per_sec: forwarded.map(|n| n as f64 / secs),
        frontend_cpu_pct: pct(fe_cpu),
        chat_cpu_pct: pct(cpu(a.chat_cpu, b.chat_cpu)),
        generator_cpu_pct: pct(cpu(a.own_cpu, b.own_cpu)),
    }
}

async fn connect(
    url: &str,
    trust: Option<&chatcap_server::tls::Connector>,
    user: &BenchUser,
) -> anyhow::Result<Client> {
    let mut c = Client::connect_with(url, trust)
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

async fn next_tick(ticks: &mut Option<Interval>) -> Instant {
    match ticks {
        Some(t) => t.tick().await,
        None => std::future::pending().await,
    }
}

/// Read everything the client receives until `t1` + [`DRAIN`], and post on `schedule`
/// until `t1`; count what falls inside `[t0, t1)`.
async fn client_loop(
    client: Client,
    n: usize,
    schedule: Option<Schedule>,
    text: Arc<str>,
    t0: Instant,
    t1: Instant,
) -> anyhow::Result<Tally> {
    let (mut sink, mut stream) = client.into_stream().split();
    let mut tally = Tally::default();
    let room = schedule.as_ref().map_or(0, |s| s.room);
    let mut ticks = schedule.map(|s| {
        let mut t = tokio::time::interval_at(s.first, s.period);
        // Catch up after a stall, so the rate over the window is the one asked for.
        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
        t
    });
    let mut next_id: u64 = 1_000;
    let end = t1 + DRAIN;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            at = next_tick(&mut ticks) => {
                if at >= t1 {
                    ticks = None;
                    continue;
                }
                let id = next_id;
                next_id += 1;
                let json = format!(
                    r#"{{"id":{id},"type":"post","room":{room},"text":"{text}","client_msg_id":"f{n}-{id}"}}"#
                );
                sink.send(WsMessage::Text(json.into())).await?;
                tally.posts_sent += u64::from(Instant::now() >= t0);
            }
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(_))) | None => bail!("the front end closed client {n}"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => bail!("client {n}: {e}"),
                };
                let now = Instant::now();
                let inside = u64::from(now >= t0 && now < t1);
                let head: ReplyHead = serde_json::from_str(text.as_str())
                    .with_context(|| format!("unparsable server message {:?}", text.as_str()))?;
                match head.kind {
                    "reply" => tally.acks += inside,
                    "chat" => tally.delivered += inside,
                    "error" => {
                        let code = head.code.unwrap_or_else(|| "unknown".into());
                        *tally.errors.entry(code).or_default() += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = sink.close().await;
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posters_take_turns_at_the_total_rate() {
        let (offset, period) = poster_timing(3, 20, 200.0);
        assert_eq!(offset, Duration::from_millis(15));
        assert_eq!(period, Duration::from_millis(100));
        // 20 posters, one post each per 100 ms: 200 posts/s.
        assert!((20.0 / period.as_secs_f64() - 200.0).abs() < 1e-9);
    }

    #[test]
    fn cpu_is_divided_by_frames_counted_in_the_window() {
        let plan = ForwardPlan {
            clients: 200,
            rooms: 4,
            posters: 20,
            rate: 200.0,
            text_bytes: 64,
            warmup: Duration::from_secs(3),
            duration: Duration::from_secs(10),
        };
        let snap = |cpu_ms: u64, fwd: f64, up: f64| Snapshot {
            frontend_cpu: Some(Duration::from_millis(cpu_ms)),
            chat_cpu: Some(Duration::from_millis(cpu_ms)),
            own_cpu: None,
            forwarded: Some(fwd),
            upstream: Some(up),
        };
        let f = summarise(
            &plan,
            &snap(1_000, 5_000.0, 100.0),
            &snap(3_000, 105_000.0, 2_100.0),
            Tally::default(),
        );
        assert_eq!(f.forwarded, Some(100_000));
        assert_eq!(f.upstream, Some(2_000));
        assert_eq!(f.frontend_ms_per_1000_forwarded, Some(20.0));
        let all = f.frontend_ms_per_1000_frames.expect("frames");
        assert!((all - 2_000_000.0 / 102_000.0).abs() < 1e-9);
        assert_eq!(f.frontend_cpu_pct, Some(20.0));
        assert_eq!(f.generator_cpu_pct, None);
    }
}
