//! Delivery latency within one chat server and across two: with every active server of the
//! topology active, pairs of users, each pair alone in a room, half of them on one chat
//! server and half on two (placed by user id, see [`placement`]). In each pair one user
//! posts at a fixed rate, open loop, stamping each post with its clock (`sent_at_us`); the
//! other reads the `chat` pushes and records now − sent_at. Both clocks are this machine's.
//! A post counts when it was sent inside the measured window; one acknowledged but not
//! received within [`DRAIN_TIMEOUT`] after the window is lost.
//!
//! Each pair is one task holding both WebSockets, so matching acks to deliveries needs no
//! shared state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chatcap_server::model::now_us;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::connect::{connect_placed, expected_sessions};
use super::control;
use super::figures::{DeliveryFigures, DeliveryLatency, PathFigures};
use super::placement::{pair_slots, pick_users, PairSlot};
use super::throughput::first_actives;
use crate::bench::reply_head::ReplyHead;
use crate::bench::target::BenchUser;
use crate::client::Client;
use crate::pool::launch::Launched;

/// The delivery load.
#[derive(Debug, Clone)]
pub struct PairPlan {
    /// Pairs of users.
    pub pairs: usize,
    /// Posts per second per pair.
    pub rate: f64,
    /// Bytes of text per post.
    pub text_bytes: usize,
    /// Posting before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// Longest wait, after the window, for acks and deliveries still in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The part of a `chat` push the receiver reads.
#[derive(Debug, Deserialize)]
struct ChatHead {
    #[serde(rename = "type")]
    kind: String,
    client_msg_id: Option<String>,
    sent_at_us: Option<i64>,
}

/// What one pair counted (posts sent inside the window only).
struct PairTally {
    same: bool,
    hist: Histogram<u64>,
    posted: u64,
    acked: u64,
    received: u64,
    lost: u64,
    unacked: u64,
    errors: BTreeMap<String, u64>,
}

/// `client_msg_id` of post `id` of pair `n`: `d` + `w` (sent inside the window) or `o`.
fn msg_id(n: usize, id: u64, in_window: bool) -> String {
    format!("d{}{n}-{id}", if in_window { 'w' } else { 'o' })
}

/// (inside the window, post id) of a `client_msg_id` made by [`msg_id`].
fn parse_msg_id(s: &str) -> Option<(bool, u64)> {
    let rest = s.strip_prefix('d')?;
    let in_window = match rest.chars().next()? {
        'w' => true,
        'o' => false,
        _ => return None,
    };
    let id = rest.split_once('-')?.1.parse().ok()?;
    Some((in_window, id))
}

/// Measure with every active server of the topology active.
pub async fn measure(
    plan: &PairPlan,
    pool: &Launched,
    users: &[BenchUser],
    rooms: &[i64],
) -> anyhow::Result<(DeliveryFigures, Vec<String>)> {
    let t = &pool.topology;
    let mut notes = Vec::new();
    let active = first_actives(t, t.actives().count());
    control::set_active(t, &active).await?;
    if !control::await_idle(t).await? {
        notes.push("delivery: sessions of the previous phase were still open".into());
    }
    let slots = pair_slots(plan.pairs, active.len(), t.front_ends.len());
    if active.len() < 2 {
        notes.push("delivery: one active chat server, so no cross-server pairs".into());
    }
    let want: Vec<usize> = slots.iter().flat_map(|p| [p.poster, p.receiver]).collect();
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let picked = pick_users(&ids, &want, active.len())?;
    // User 2j posts in pair j's room, user 2j + 1 receives there.
    let pair_users: Vec<BenchUser> = picked
        .iter()
        .enumerate()
        .map(|(i, &u)| BenchUser {
            room: rooms[i / 2],
            ..users[u].clone()
        })
        .collect();
    let urls: Vec<String> = slots
        .iter()
        .flat_map(|p| [p.poster_fe, p.receiver_fe])
        .map(|f| t.front_ends[f].ws_url())
        .collect();
    let expected = expected_sessions(t, &active, &want);
    let placed = connect_placed(t, &urls, &pair_users, &expected).await?;
    if !placed.ok {
        notes.push(
            "delivery: sessions were not where planned (see sessions per chat server)".into(),
        );
    }
    let tallies = run_pairs(plan, &slots, placed.clients, &pair_users).await?;
    let mut figures = summarise(plan, active, tallies)?;
    figures.sessions = placed.sessions;
    figures.placement_ok = placed.ok;
    Ok((figures, notes))
}

/// Start every pair's task and collect their tallies.
async fn run_pairs(
    plan: &PairPlan,
    slots: &[PairSlot],
    clients: Vec<Client>,
    users: &[BenchUser],
) -> anyhow::Result<Vec<PairTally>> {
    let start = Instant::now() + Duration::from_millis(100);
    let t0 = start + plan.warmup;
    let t1 = t0 + plan.duration;
    let period = Duration::from_secs_f64(1.0 / plan.rate);
    let text: Arc<str> = "x".repeat(plan.text_bytes).into();
    let mut clients = clients.into_iter();
    let mut tasks = Vec::with_capacity(slots.len());
    for (j, slot) in slots.iter().enumerate() {
        let (Some(poster), Some(receiver)) = (clients.next(), clients.next()) else {
            bail!("pair {j} has no clients");
        };
        // Pairs take turns within a period, so the posts are spread evenly in time.
        let first = start + period.mul_f64(j as f64 / slots.len() as f64);
        let room = users[2 * j].room;
        let pair = Pair {
            n: j,
            same: slot.same,
            room,
            text: text.clone(),
        };
        tasks.push(tokio::spawn(
            pair.run(poster, receiver, first, period, t0, t1),
        ));
    }
    let mut tallies = Vec::with_capacity(tasks.len());
    for task in tasks {
        tallies.push(task.await.context("a pair's task panicked")??);
    }
    Ok(tallies)
}

fn summarise(
    plan: &PairPlan,
    active: Vec<String>,
    tallies: Vec<PairTally>,
) -> anyhow::Result<DeliveryFigures> {
    let mut errors = BTreeMap::new();
    let mut unacked = 0;
    let mut path = |same: bool| -> anyhow::Result<PathFigures> {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut p = PathFigures {
            pairs: 0,
            posted: 0,
            acked: 0,
            received: 0,
            lost: 0,
            latency_us: DeliveryLatency::from_hist(&hist),
        };
        for t in tallies.iter().filter(|t| t.same == same) {
            hist.add(&t.hist)?;
            p.pairs += 1;
            p.posted += t.posted;
            p.acked += t.acked;
            p.received += t.received;
            p.lost += t.lost;
            unacked += t.unacked;
            for (k, v) in &t.errors {
                *errors.entry(k.clone()).or_default() += v;
            }
        }
        p.latency_us = DeliveryLatency::from_hist(&hist);
        Ok(p)
    };
    let same_server = path(true)?;
    let cross_server = path(false)?;
    Ok(DeliveryFigures {
        active,
        pairs: plan.pairs,
        rate_per_pair: plan.rate,
        text_bytes: plan.text_bytes,
        warmup_s: plan.warmup.as_secs_f64(),
        duration_s: plan.duration.as_secs_f64(),
        drain_timeout_s: DRAIN_TIMEOUT.as_secs_f64(),
        same_server,
        cross_server,
        errors,
        unacked,
        sessions: Vec::new(),
        placement_ok: true,
    })
}

/// One pair's fixed part.
struct Pair {
    n: usize,
    same: bool,
    room: i64,
    text: Arc<str>,
}

impl Pair {
    /// Post every `period` from `first` until `t1`, read the acks and the peer's pushes,
    /// then wait (at most [`DRAIN_TIMEOUT`]) for what is still in flight.
    async fn run(
        self,
        poster: Client,
        receiver: Client,
        first: Instant,
        period: Duration,
        t0: Instant,
        t1: Instant,
    ) -> anyhow::Result<PairTally> {
        let n = self.n;
        let (mut psink, mut pstream) = poster.into_stream().split();
        let (mut rsink, mut rstream) = receiver.into_stream().split();
        let mut tally = PairTally {
            same: self.same,
            hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            posted: 0,
            acked: 0,
            received: 0,
            lost: 0,
            unacked: 0,
            errors: BTreeMap::new(),
        };
        let mut ticks = tokio::time::interval_at(first, period);
        // Catch up after a stall, so the rate over the window is the one asked for.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
        // Request id → sent inside the window.
        let mut outstanding: HashMap<u64, bool> = HashMap::new();
        // Window posts acked and not yet received; received before their ack came.
        let mut pending: HashSet<u64> = HashSet::new();
        let mut early: HashSet<u64> = HashSet::new();
        let mut next_id: u64 = 1_000;
        let give_up = t1 + DRAIN_TIMEOUT;
        loop {
            let posting = Instant::now() < t1;
            if !posting && outstanding.is_empty() && pending.is_empty() {
                break;
            }
            let wake = if posting { t1 } else { give_up };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {
                    if !posting {
                        break;
                    }
                }
                at = ticks.tick(), if posting => {
                    if at >= t1 {
                        continue;
                    }
                    let id = next_id;
                    next_id += 1;
                    let inside = Instant::now() >= t0;
                    let json = format!(
                        r#"{{"id":{id},"type":"post","room":{},"text":"{}","client_msg_id":"{}","sent_at_us":{}}}"#,
                        self.room, self.text, msg_id(n, id, inside), now_us()
                    );
                    outstanding.insert(id, inside);
                    tally.posted += u64::from(inside);
                    psink.send(WsMessage::Text(json.into())).await?;
                }
                msg = pstream.next() => {
                    let Some(text) = text_of(msg, n, "poster")? else { continue };
                    let head: ReplyHead = serde_json::from_str(&text)
                        .with_context(|| format!("unparsable server message {text:?}"))?;
                    match head.kind {
                        "reply" => {
                            let Some(id) = head.id else { continue };
                            if outstanding.remove(&id) == Some(true) {
                                tally.acked += 1;
                                if !early.remove(&id) {
                                    pending.insert(id);
                                }
                            }
                        }
                        "error" => {
                            if let Some(id) = head.id {
                                outstanding.remove(&id);
                            }
                            let code = head.code.unwrap_or_else(|| "unknown".into());
                            *tally.errors.entry(code).or_default() += 1;
                        }
                        _ => {}
                    }
                }
                msg = rstream.next() => {
                    let Some(text) = text_of(msg, n, "receiver")? else { continue };
                    let at = now_us();
                    let head: ChatHead = serde_json::from_str(&text)
                        .with_context(|| format!("unparsable server message {text:?}"))?;
                    if head.kind != "chat" {
                        continue;
                    }
                    let parsed = head.client_msg_id.as_deref().and_then(parse_msg_id);
                    let Some((true, id)) = parsed else { continue };
                    tally.received += 1;
                    if let Some(sent) = head.sent_at_us {
                        tally.hist.saturating_record((at - sent).max(1) as u64);
                    }
                    if !pending.remove(&id) {
                        early.insert(id);
                    }
                }
            }
        }
        tally.lost = pending.len() as u64;
        tally.unacked = outstanding.len() as u64;
        let _ = psink.close().await;
        let _ = rsink.close().await;
        Ok(tally)
    }
}

/// The text of a WebSocket message; `None` for other frames; an error when the socket
/// closed or failed.
fn text_of(
    msg: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
    n: usize,
    who: &str,
) -> anyhow::Result<Option<String>> {
    match msg {
        Some(Ok(WsMessage::Text(t))) => Ok(Some(t.as_str().to_string())),
        Some(Ok(WsMessage::Close(_))) | None => bail!("the server closed pair {n}'s {who}"),
        Some(Ok(_)) => Ok(None),
        Some(Err(e)) => bail!("pair {n}'s {who}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_carry_the_window_and_the_post() {
        assert_eq!(parse_msg_id(&msg_id(7, 1234, true)), Some((true, 1234)));
        assert_eq!(parse_msg_id(&msg_id(0, 1000, false)), Some((false, 1000)));
        assert_eq!(parse_msg_id("b3-1000"), None);
        assert_eq!(parse_msg_id("dx3-1"), None);
        assert_eq!(parse_msg_id("dw3-"), None);
    }
}
