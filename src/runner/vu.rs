//! One virtual user endpoint: a task holding one WebSocket. It connects, signs in,
//! batch-joins its rooms, then performs its operations on schedule, reading replies and
//! pushes on the same socket — no task per operation.
//!
//! Open model: the next operation's *intended* time is drawn from a Poisson process,
//! independent of how fast the server answers; a late send is measured from the intended
//! time (response time) as well as from the actual send (service time). The schedule starts
//! where the load shape starts the connection (not when its set-up is done) and nothing
//! due at or after the end of the load is issued, so a seeded scenario issues the same
//! operations however fast the server is. Closed model: the next operation is drawn after
//! the reply, plus an exponential think time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chatcap_server::model::now_us;
use chatcap_server::protocol::reply::{Ack, Joined, ServerMsg};
use chatcap_server::protocol::{Op, PresenceState, Push};
use futures_util::StreamExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use super::connect::{send, setup, Ws};
use super::track::Tracker;
use super::{Shared, SimUser};
use crate::metrics::{micros, Metric};
use crate::scenario::plan::{OpKind, Workload};

/// Words posts are made of (and searches look for).
pub const WORDS: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa",
];

/// States a simulated user moves between.
const PRESENCE: [PresenceState; 4] = [
    PresenceState::Online,
    PresenceState::Busy,
    PresenceState::Away,
    PresenceState::DoNotDisturb,
];

/// What a request in flight is waiting for.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// A plain request of this metric.
    Plain(Metric),
    /// A post's acknowledgement.
    Post,
    /// The part of a rejoin; the join follows.
    RejoinPart(i64),
    /// The join of a rejoin.
    RejoinJoin(i64),
}

#[derive(Debug)]
struct Pending {
    id: u64,
    wait: Wait,
    intended: Instant,
    sent: Instant,
}

/// Why a connection ended.
enum End {
    /// Asked to stop.
    Stop,
    /// The server closed it or it failed.
    Lost,
    /// A scheduled reconnect (the operation itself).
    Reconnect(Instant),
}

/// A virtual user's connection state.
pub(super) struct Conn {
    ws: Ws,
    next_id: u64,
    pending: Vec<Pending>,
    tracker: Tracker,
    /// Pushes for rooms being (re)joined, replayed after the join reply.
    held: HashMap<i64, Vec<i64>>,
}

impl Conn {
    /// A connection just set up: request ids 1–3 were used by sign-in, batch join and
    /// subscribe.
    pub(super) fn new(ws: Ws, tracker: Tracker) -> Self {
        Conn {
            ws,
            next_id: 4,
            pending: Vec::new(),
            tracker,
            held: HashMap::new(),
        }
    }
}

/// When a connection's operations are scheduled: from its intended start (where the load
/// shape starts it, whatever its set-up takes) to the end of the load.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Intended start: the first session's schedule is anchored here.
    pub start: Instant,
    /// Nothing scheduled at or after this is issued.
    pub end: Instant,
}

/// Run one virtual user until `stop` (new operations end at `window.end` or `quiesce`).
pub async fn run(
    shared: Arc<Shared>,
    index: usize,
    user: Arc<SimUser>,
    window: Window,
    quiesce: CancellationToken,
    stop: CancellationToken,
) {
    let mut rng = SmallRng::seed_from_u64(
        shared.plan.population.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let mut reconnect_started: Option<Instant> = None;
    let mut failures = 0u32;
    // Later sessions (after a reconnect) start their schedule when they are up.
    let mut anchor = Some(window.start);
    while !stop.is_cancelled() {
        // Boxed: the set-up's state lives only while it runs, instead of widening this
        // long-lived future (one per simulated endpoint) by its size for the whole run.
        let mut conn = match Box::pin(setup(&shared, index, &user, reconnect_started.take())).await
        {
            Ok((ws, tracker)) => Conn::new(ws, tracker),
            Err(kind) => {
                shared.recorders.slot(index).error(Metric::Connect, kind);
                failures += 1;
                // Back off, bounded: a target that is down must not be hammered.
                let wait = Duration::from_millis(200 * u64::from(failures.min(25)));
                tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(wait) => continue }
            }
        };
        failures = 0;
        shared
            .connected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sched = Window {
            start: anchor.take().unwrap_or_else(Instant::now),
            end: window.end,
        };
        let end = session(
            &shared, index, &user, &mut conn, &mut rng, sched, &quiesce, &stop,
        )
        .await;
        shared
            .connected
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        {
            let mut rec = shared.recorders.slot(index);
            rec.lost += conn.tracker.open_gaps() + conn.tracker.lost_now;
            rec.duplicated += conn.tracker.duplicated;
            rec.out_of_order += conn.tracker.out_of_order;
            for p in &conn.pending {
                rec.timeout(metric_of(p.wait));
            }
        }
        let _ = conn.ws.close(None).await;
        match end {
            End::Stop => {
                shared
                    .tails
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(conn.tracker.tails());
                return;
            }
            End::Lost => {
                shared.recorders.slot(index).disconnects += 1;
                *shared
                    .recorders
                    .slot(index)
                    .errors_by_kind
                    .entry("disconnect".into())
                    .or_default() += 1;
                tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
            }
            End::Reconnect(intended) => reconnect_started = Some(intended),
        }
    }
}

fn metric_of(w: Wait) -> Metric {
    match w {
        Wait::Plain(m) => m,
        Wait::Post => Metric::PostAck,
        Wait::RejoinPart(_) | Wait::RejoinJoin(_) => Metric::Rejoin,
    }
}

/// Draw the delay to the next operation.
fn next_gap(shared: &Shared, rng: &mut SmallRng) -> Duration {
    let rate = match &shared.plan.workload {
        Workload::Open => shared.rate_per_sec,
        Workload::Closed { think_time } => 1.0 / think_time.as_secs_f64().max(1e-3),
    };
    exp_gap(rate, rng)
}

/// An exponential gap of mean `1 / rate` seconds (the inter-arrival time of a Poisson
/// process), capped at an hour; an hour when `rate` is not above 0.
pub fn exp_gap(rate: f64, rng: &mut impl Rng) -> Duration {
    if rate <= 0.0 {
        return Duration::from_secs(3600);
    }
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    Duration::from_secs_f64((-u.ln() / rate).min(3600.0))
}

/// The operations loop of one connection.
#[allow(clippy::too_many_arguments)]
async fn session(
    shared: &Arc<Shared>,
    index: usize,
    user: &SimUser,
    conn: &mut Conn,
    rng: &mut SmallRng,
    window: Window,
    quiesce: &CancellationToken,
    stop: &CancellationToken,
) -> End {
    let closed = matches!(shared.plan.workload, Workload::Closed { .. });
    let mut due = window.start + next_gap(shared, rng);
    let mut check = Instant::now() + Duration::from_secs(1);
    let mut post_n = 0u64;
    loop {
        let can_issue =
            due < window.end && !quiesce.is_cancelled() && (!closed || conn.pending.is_empty());
        tokio::select! {
            biased;
            _ = stop.cancelled() => return End::Stop,
            incoming = conn.ws.next() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return End::Lost,
                    Some(Ok(_)) => continue,
                };
                let Ok(msg) = ServerMsg::parse(text.as_str()) else {
                    shared.recorders.slot(index).error(Metric::Connect, "unparsable_reply");
                    continue;
                };
                let replied = handle(shared, index, conn, msg).await;
                if closed && replied {
                    due = Instant::now() + next_gap(shared, rng);
                }
            }
            _ = tokio::time::sleep_until(due), if can_issue => {
                let intended = due;
                if !closed {
                    due += next_gap(shared, rng);
                }
                match shared.pick(rng) {
                    Some((OpKind::Reconnect, _)) => return End::Reconnect(intended),
                    Some((op, class)) => {
                        if !issue(shared, index, user, conn, rng, op, class, intended, &mut post_n).await {
                            return End::Lost;
                        }
                        // A file operation is not awaited: the closed model thinks from its start.
                        if closed && matches!(op, OpKind::FileUpload | OpKind::FileDownload) {
                            due = Instant::now() + next_gap(shared, rng);
                        }
                    }
                    None => due = Instant::now() + Duration::from_secs(3600),
                }
            }
            _ = tokio::time::sleep_until(check) => {
                check += Duration::from_secs(1);
                let limit = shared.plan.request_timeout;
                let now = Instant::now();
                let mut rec = shared.recorders.slot(index);
                conn.pending.retain(|p| {
                    let alive = now.duration_since(p.sent) < limit;
                    if !alive { rec.timeout(metric_of(p.wait)); }
                    alive
                });
                if closed && conn.pending.is_empty() && due < now {
                    due = now;
                }
            }
        }
    }
}

/// Send one scheduled operation. Returns false when the connection failed.
#[allow(clippy::too_many_arguments)]
async fn issue(
    shared: &Arc<Shared>,
    index: usize,
    user: &SimUser,
    conn: &mut Conn,
    rng: &mut SmallRng,
    op: OpKind,
    class: Option<u16>,
    intended: Instant,
    post_n: &mut u64,
) -> bool {
    let rooms: Vec<&super::SimRoom> = user
        .rooms
        .iter()
        .filter(|r| conn.tracker.has(r.id) && !conn.held.contains_key(&r.id))
        .filter(|r| class.is_none_or(|c| r.class == c))
        .collect();
    let pick_room = |rng: &mut SmallRng, postable: bool| {
        let choices: Vec<&&super::SimRoom> =
            rooms.iter().filter(|r| !postable || r.can_post).collect();
        (!choices.is_empty()).then(|| choices[rng.gen_range(0..choices.len())].id)
    };
    let (wait, request) = match op {
        OpKind::Post => {
            let Some(room) = pick_room(rng, true) else {
                return true;
            };
            *post_n += 1;
            let words: Vec<&str> = (0..8)
                .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
                .collect();
            let text = words.join(" ");
            let client_msg_id = format!("{}-{}-{}", user.id, index, post_n);
            (
                Wait::Post,
                Op::Post {
                    room,
                    text,
                    client_msg_id,
                    sent_at_us: Some(now_us()),
                },
            )
        }
        OpKind::PollParticipants => {
            // Visible rooms are the first one or two of the user's list (2.25 per user).
            let visible = &user.rooms[..user.rooms.len().min(2)];
            let Some(r) = visible.iter().find(|r| conn.tracker.has(r.id)) else {
                return true;
            };
            (
                Wait::Plain(Metric::PollParticipants),
                Op::Participants { room: r.id },
            )
        }
        OpKind::Search => {
            let word = WORDS[rng.gen_range(0..WORDS.len())].to_string();
            let rooms = pick_room(rng, false).map(|r| vec![r]);
            (
                Wait::Plain(Metric::Search),
                Op::Search {
                    text: Some(word),
                    phrase: None,
                    author: None,
                    from_us: None,
                    to_us: None,
                    rooms,
                    limit: Some(20),
                },
            )
        }
        OpKind::History => {
            let Some(room) = pick_room(rng, false) else {
                return true;
            };
            (
                Wait::Plain(Metric::History),
                Op::History {
                    room,
                    after_seq: None,
                    limit: Some(shared.plan.history_on_join),
                },
            )
        }
        OpKind::ListRooms => (
            Wait::Plain(Metric::ListRooms),
            Op::ListRooms {
                query: None,
                category: None,
                mine: Some(true),
                limit: Some(20),
            },
        ),
        OpKind::Rejoin => {
            let Some(room) = pick_room(rng, false) else {
                return true;
            };
            conn.held.insert(room, Vec::new());
            (Wait::RejoinPart(room), Op::Part { room })
        }
        OpKind::Presence => {
            let state = PRESENCE[rng.gen_range(0..PRESENCE.len())];
            (Wait::Plain(Metric::Presence), Op::SetPresence { state })
        }
        OpKind::FileUpload | OpKind::FileDownload => {
            // Over HTTP in a task of its own, which records it (runner::files).
            let room = pick_room(rng, op == OpKind::FileUpload);
            super::files::spawn(shared, index, user, op, room, intended, rng);
            return true;
        }
        OpKind::Reconnect => return true, // the session loop's business
    };
    let id = conn.next_id;
    conn.next_id += 1;
    let sent = Instant::now();
    conn.pending.push(Pending {
        id,
        wait,
        intended,
        sent,
    });
    send(&mut conn.ws, id, request).await
}

/// Handle one message from the server. Returns true when it completed a request.
async fn handle(shared: &Shared, index: usize, conn: &mut Conn, msg: ServerMsg) -> bool {
    let (id, result) = match msg {
        ServerMsg::Push(Push::Chat(m)) => {
            if let Some(held) = conn.held.get_mut(&m.room) {
                held.push(m.seq);
            } else {
                conn.tracker.seen(m.room, m.seq);
            }
            if let Some(sent) = m.sent_at_us {
                shared
                    .recorders
                    .slot(index)
                    .delivery((now_us() - sent).max(1) as u64);
            } else {
                shared.recorders.slot(index).deliveries += 1;
            }
            return false;
        }
        ServerMsg::Push(_) => return false,
        ServerMsg::Reply { id, result } => (Some(id), Ok(result)),
        ServerMsg::Error { id, code, .. } => (id, Err(code)),
    };
    let Some(pos) = conn.pending.iter().position(|p| Some(p.id) == id) else {
        return false;
    };
    let p = conn.pending.swap_remove(pos);
    let now = Instant::now();
    let (service, response) = (micros(now - p.sent), micros(now - p.intended));
    match (p.wait, result) {
        (Wait::RejoinPart(room), Ok(_)) => {
            let lost = conn.tracker.left(room);
            shared.recorders.slot(index).lost += lost;
            let id = conn.next_id;
            conn.next_id += 1;
            conn.pending.push(Pending {
                id,
                wait: Wait::RejoinJoin(room),
                intended: p.intended,
                sent: p.sent,
            });
            let op = Op::Join {
                room,
                history: Some(shared.plan.history_on_join),
            };
            let _ = send(&mut conn.ws, id, op).await;
            return false;
        }
        (Wait::RejoinJoin(room), Ok(v)) => {
            let last = serde_json::from_value::<Joined>(v)
                .map(|j| j.last_seq)
                .unwrap_or(i64::MAX);
            conn.tracker.joined(room, last);
            // Held pushes at or below the join's last_seq are in the returned history.
            for seq in conn
                .held
                .remove(&room)
                .unwrap_or_default()
                .into_iter()
                .filter(|s| *s > last)
            {
                conn.tracker.seen(room, seq);
            }
            shared
                .recorders
                .slot(index)
                .ok(Metric::Rejoin, service, response);
        }
        (Wait::Post, Ok(v)) => {
            if let Ok(ack) = serde_json::from_value::<Ack>(v) {
                conn.tracker.seen(ack.room, ack.seq);
                shared
                    .ledger
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(ack.room)
                    .or_default()
                    .push(ack.seq);
            }
            shared
                .recorders
                .slot(index)
                .ok(Metric::PostAck, service, response);
        }
        (Wait::Plain(m), Ok(_)) => shared.recorders.slot(index).ok(m, service, response),
        (w, Err(code)) => {
            if let Wait::RejoinPart(room) | Wait::RejoinJoin(room) = w {
                conn.held.remove(&room);
            }
            shared
                .recorders
                .slot(index)
                .error(metric_of(w), code.as_str());
        }
    }
    true
}

#[cfg(test)]
#[path = "vu_tests.rs"]
mod tests;
