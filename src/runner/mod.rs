//! The load generator: turns a [`RunPlan`] into virtual users against a target, follows
//! the load shape, measures, and hands the measurements to the report.
//!
//! # Layout
//! - this file: the shared state of a run and the controller loop (phases → number of
//!   connected virtual users, once-a-second collection, progress, Ctrl-C).
//! - [`target`]: provisioning the embedded target (a SQLite database) or attaching to
//!   running addresses; [`processes`] starts the embedded server processes (a single box,
//!   or a chat server with front ends sharing one port); [`target_error`] says why either
//!   failed.
//! - [`vu`]: one virtual user endpoint (its schedule, replies and pushes); `connect`
//!   opens its connection (handshake, sign-in, batch join) and owns the socket type.
//! - [`track`]: per-connection sequence tracking (lost / duplicated / out of order).
//! - [`files`]: a virtual user's file uploads and downloads (HTTP, beside its socket);
//!   [`http`] is one exchange over hyper's client (also
//!   for `/metrics` scrapes), [`file_error`] says why one failed.
//! - [`net`]: connections from many loopback source addresses; the descriptor limit.
//! - [`reconcile`]: after the run, every acknowledged post is in history exactly once.
//! - [`watch`]: the server side watched during the load: resource probes, the database
//!   size ([`db_size`]), the `/metrics` scraper ([`scrape`], `server_metrics.csv`).
//! - [`execute`]: one run end to end: target, drive, reconcile, results folder;
//!   [`options`] says how a run is asked for and why it could not be done; [`spawn`]
//!   drives local shard processes for it.
//! - [`shard`]: splitting the load over generator processes, and merging their results.
//! - [`sweep`]: one scenario run once per hardware profile, side by side.

pub mod cmd;
mod connect;
pub mod db_size;
pub mod execute;
pub mod file_error;
pub mod files;
pub mod http;
pub mod net;
pub mod options;
pub mod processes;
pub mod reconcile;
pub mod scrape;
pub mod shard;
pub mod spawn;
pub mod sweep;
pub mod target;
pub mod target_error;
pub mod track;
pub mod vu;
pub mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::collector::{Collector, TimelineRow};
use crate::metrics::resources::{ProcessProbe, Sample};
use crate::metrics::Recorders;
use crate::scenario::plan::{OpKind, RunPlan};

/// One room of a simulated user.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SimRoom {
    /// Room id.
    pub id: i64,
    /// Index of its class in the plan's population.
    pub class: u16,
    /// The user may post there (not an auditorium, or a presenter of it).
    pub can_post: bool,
}

/// One simulated user: who they are and which rooms they join.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SimUser {
    /// User id.
    pub id: i64,
    /// Bearer token.
    pub token: String,
    /// Rooms they batch-join.
    pub rooms: Vec<SimRoom>,
    /// Users whose presence they watch (80 in the Lync model).
    #[serde(default)]
    pub contacts: Vec<i64>,
}

/// Contacts per user in the Lync 2013 model.
pub const CONTACTS_PER_USER: usize = 80;

/// Give every user up to [`CONTACTS_PER_USER`] contacts, spread evenly over the others.
pub fn assign_contacts(users: &mut [SimUser]) {
    let n = users.len();
    if n < 2 {
        return;
    }
    let k = CONTACTS_PER_USER.min(n - 1);
    let step = ((n - 1) / k).max(1);
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    for (i, u) in users.iter_mut().enumerate() {
        u.contacts = (1..=k)
            .map(|j| ids[(i + j * step) % n])
            .filter(|id| *id != u.id)
            .collect();
    }
}

/// State shared by every virtual user of a run.
pub struct Shared {
    /// The plan.
    pub plan: RunPlan,
    /// Where virtual users record.
    pub recorders: Recorders,
    /// Front ends to connect to (address and WebSocket URL); connection `n` uses
    /// `targets[n % len]`.
    pub targets: Vec<(SocketAddr, String)>,
    /// Loopback source addresses to spread connections over.
    pub spread: u8,
    /// Connections signed in and joined now.
    pub connected: AtomicU64,
    /// Acknowledged posts: room → sequence numbers (for reconciliation).
    pub ledger: Mutex<HashMap<i64, Vec<i64>>>,
    /// Per (room, last seq accounted for) of every connection still up at the end.
    pub tails: Mutex<Vec<(i64, i64)>>,
    /// Operations per second per connection (open model).
    pub rate_per_sec: f64,
    /// The behaviour changes presence: connections subscribe to their contacts.
    pub presence: bool,
    /// Cumulative weights for choosing an operation.
    choices: Vec<(f64, OpKind, Option<u16>)>,
    /// `wss://` targets: whom to trust (WebSockets and the file web service).
    pub tls: Option<chatcap_server::tls::Connector>,
}

impl Shared {
    /// Build the shared state; rates are spread over `connections` per user.
    pub fn new(plan: RunPlan, targets: Vec<(SocketAddr, String)>, spread: u8) -> Self {
        let users = f64::from(plan.population.users.max(1));
        let connections = plan.population.endpoints_per_user.max(1.0) * users;
        let mut choices = Vec::new();
        let mut total = 0.0;
        for op in &plan.ops {
            let class = op
                .room_class
                .as_ref()
                .and_then(|c| plan.population.rooms.iter().position(|r| &r.name == c))
                .map(|i| i as u16);
            total += op.per_user_per_hour;
            choices.push((total, op.op, class));
        }
        // Per-user rates are shared by the user's endpoints.
        let rate_per_sec = total * users / connections / 3600.0;
        let presence = plan
            .ops
            .iter()
            .any(|o| o.op == OpKind::Presence && o.per_user_per_hour > 0.0);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            recorders: Recorders::new(threads * 2),
            plan,
            targets,
            spread,
            connected: AtomicU64::new(0),
            ledger: Mutex::new(HashMap::new()),
            tails: Mutex::new(Vec::new()),
            rate_per_sec,
            presence,
            choices,
            tls: None,
        }
    }

    /// Trust `tls` toward `wss://` targets.
    pub fn with_tls(mut self, tls: Option<chatcap_server::tls::Connector>) -> Self {
        self.tls = tls;
        self
    }

    /// The front end connection `n` uses.
    pub fn target(&self, n: usize) -> &(SocketAddr, String) {
        &self.targets[n % self.targets.len().max(1)]
    }

    /// Draw an operation by weight.
    pub fn pick(&self, rng: &mut SmallRng) -> Option<(OpKind, Option<u16>)> {
        let total = self.choices.last()?.0;
        if total <= 0.0 {
            return None;
        }
        let x = rng.gen_range(0.0..total);
        self.choices
            .iter()
            .find(|(c, _, _)| x < *c)
            .map(|(_, op, class)| (*op, *class))
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The load shape ran to its end.
    Completed,
    /// Ctrl-C (or the caller) stopped it early; results are partial.
    Interrupted,
}

/// What a run measured, for the report.
pub struct Outcome {
    /// Totals of every metric.
    pub collector: Collector,
    /// Peak connections signed in.
    pub peak_connections: u64,
    /// Load time actually run.
    pub elapsed: Duration,
    /// How it ended.
    pub ending: Ending,
    /// Acknowledged posts: room → seqs.
    pub ledger: HashMap<i64, Vec<i64>>,
    /// Resource samples of the processes probed, once a second.
    pub resources: Vec<Sample>,
    /// (room, last seq accounted for) of every connection up at the end.
    pub tails: Vec<(i64, i64)>,
}

/// Messages acknowledged to their senders that a connection still in the room at the end
/// never received: for each (room, last seq seen), the acknowledged seqs above it.
pub fn tail_losses(ledger: &HashMap<i64, Vec<i64>>, tails: &[(i64, i64)]) -> u64 {
    let top: HashMap<i64, &Vec<i64>> = ledger.iter().map(|(r, s)| (*r, s)).collect();
    tails
        .iter()
        .filter_map(|(room, seen)| {
            top.get(room)
                .map(|seqs| seqs.iter().filter(|s| **s > *seen).count() as u64)
        })
        .sum()
}

/// Connections for the first `users` users (endpoints per user spread evenly: 1.5 gives
/// 1, 2, 1, 2, …).
pub fn connections_for(users: u32, endpoints_per_user: f64) -> usize {
    (f64::from(users) * endpoints_per_user.max(1.0)).floor() as usize
}

/// The user behind connection number `n`.
pub fn user_of_connection(n: usize, endpoints_per_user: f64) -> usize {
    (n as f64 / endpoints_per_user.max(1.0)).floor() as usize
}

/// Step of the controller's logical clock (how often the number of connections is
/// adjusted to the load shape).
const STEP: Duration = Duration::from_millis(50);

/// Progress callback: called once a second with the newest timeline row.
pub type Progress<'a> = &'a mut dyn FnMut(&TimelineRow, &RunPlan);

/// Run the plan's load shape against a target described by `shared`, for `users`.
/// `interrupt` ends the run early (results are kept).
pub async fn drive(
    shared: Arc<Shared>,
    users: Arc<Vec<Arc<SimUser>>>,
    mut collector: Collector,
    mut probes: Vec<ProcessProbe>,
    shard: Option<shard::ShardId>,
    interrupt: CancellationToken,
    progress: Progress<'_>,
) -> Outcome {
    let plan = shared.plan.clone();
    let epu = plan.population.endpoints_per_user;
    let tasks = TaskTracker::new();
    let quiesce = CancellationToken::new();
    let stop_all = CancellationToken::new();
    // Connection n runs here when this process owns it (all, unless sharded).
    let mut running: Vec<Option<CancellationToken>> = Vec::new();
    let start = Instant::now();
    let total = plan.duration();
    let end = start + total;
    let mut next_tick = start + Duration::from_secs(1);
    let mut peak = 0u64;
    let mut ending = Ending::Completed;
    let mut resources = Vec::new();
    // The load shape is followed on a logical clock of fixed steps, not on when this loop
    // happens to wake: connection n then starts at the same offset in every run (and every
    // shard), and its seeded schedule, anchored there, issues the same operations. A late
    // loop catches up step by step.
    let mut step_at = start;
    loop {
        tokio::select! {
            _ = interrupt.cancelled() => { ending = Ending::Interrupted; break; }
            _ = tokio::time::sleep_until(step_at) => {}
        }
        let at = step_at - start;
        step_at += STEP;
        if at >= total {
            break;
        }
        let elapsed = start.elapsed();
        let want = connections_for(plan.users_at(at), epu).min(users.len() * epu.ceil() as usize);
        while running.len() < want {
            let n = running.len();
            let Some(user) = users.get(user_of_connection(n, epu)).cloned() else {
                break;
            };
            if shard.is_some_and(|s| !s.owns(n)) {
                running.push(None);
                continue;
            }
            let token = stop_all.child_token();
            running.push(Some(token.clone()));
            tasks.spawn(vu::run(
                shared.clone(),
                n,
                user,
                vu::Window {
                    start: start + at,
                    end,
                },
                quiesce.child_token(),
                token,
            ));
        }
        while running.len() > want {
            if let Some(Some(t)) = running.pop() {
                t.cancel();
            }
        }
        if Instant::now() >= next_tick {
            next_tick += Duration::from_secs(1);
            let connected = shared.connected.load(Ordering::Relaxed);
            peak = peak.max(connected);
            resources.extend(
                probes
                    .iter_mut()
                    .filter_map(|p| p.sample(elapsed.as_secs_f64())),
            );
            let mine = running.iter().filter(|r| r.is_some()).count() as u64;
            let row = collector.tick(&shared.recorders, elapsed, connected, mine);
            progress(row, &plan);
        }
    }
    let elapsed = start.elapsed().min(total);
    // Drain: let replies and deliveries in flight arrive. Virtual users issue nothing
    // scheduled at or after the end by themselves; an interrupted run stops issuing now.
    if ending == Ending::Interrupted {
        quiesce.cancel();
    }
    let drain = Duration::from_secs(2);
    tokio::select! { _ = tokio::time::sleep(drain) => {}, _ = interrupt.cancelled() => {} }
    stop_all.cancel();
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(15), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some virtual users did not stop within 15 s");
    }
    let connected = shared.connected.load(Ordering::Relaxed);
    collector.tick(&shared.recorders, start.elapsed(), connected, 0);
    let ledger = std::mem::take(&mut *shared.ledger.lock().unwrap_or_else(|p| p.into_inner()));
    let tails = std::mem::take(&mut *shared.tails.lock().unwrap_or_else(|p| p.into_inner()));
    resources.extend(
        probes
            .iter_mut()
            .filter_map(|p| p.sample(start.elapsed().as_secs_f64())),
    );
    Outcome {
        collector,
        peak_connections: peak,
        elapsed,
        ending,
        ledger,
        resources,
        tails,
    }
}
