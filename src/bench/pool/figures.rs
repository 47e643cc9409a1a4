//! The figures of a `bench pool` run: one model, rendered as text tables and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::bench::report::{Machine, PostFigures};

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct PoolReport {
    /// Machine the run was on.
    pub machine: Machine,
    /// Load average (1, 5, 15 min) when the run started.
    pub load_average_start: String,
    /// Load average when it ended.
    pub load_average_end: String,
    /// The topology file given.
    pub topology: String,
    /// The pool's name.
    pub pool: String,
    /// Where the bench's fresh database was created.
    pub database: String,
    /// The pool's processes (and PostgreSQL's postmaster when found).
    pub processes: Vec<ProcessInfo>,
    /// Throughput, one entry per number of active servers.
    pub throughput: Vec<ThroughputFigures>,
    /// Delivery latency, same-server and cross-server (absent when skipped).
    pub delivery: Option<DeliveryFigures>,
    /// Anything worth knowing: placement not as planned, a phase that failed, Ctrl-C.
    pub notes: Vec<String>,
}

/// One process of the pool.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessInfo {
    /// Its topology name (`postgres` for the database).
    pub name: String,
    /// `chat`, `frontend` or `postgres`.
    pub role: String,
    /// Its process id.
    pub pid: u32,
}

/// Sessions on one chat server, as planned and as its status said.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSessions {
    /// The chat server.
    pub server: String,
    /// Sessions the placement put there.
    pub expected: u64,
    /// Sessions it reported (`None`: no answer).
    pub seen: Option<u64>,
}

/// CPU of one process over a measured window.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessCpu {
    /// Its name (`postgres` for the database's process tree, `generator` for the bench).
    pub name: String,
    /// % of one core (`None`: not readable).
    pub pct: Option<f64>,
}

/// Throughput with some number of active chat servers.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputFigures {
    /// The active chat servers.
    pub active: Vec<String>,
    /// Posts/s, post→ack latency, commits, errors (`server_cpu_pct` empty: see `cpu`).
    pub posts: PostFigures,
    /// Where the clients' sessions were.
    pub sessions: Vec<ServerSessions>,
    /// Every server held the sessions planned for it.
    pub placement_ok: bool,
    /// CPU of every chat server, every front end, PostgreSQL and the generator.
    pub cpu: Vec<ProcessCpu>,
}

/// Delivery latency percentiles in µs (HdrHistogram, 3 significant digits).
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryLatency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl DeliveryLatency {
    /// Percentiles of a histogram of microseconds.
    pub fn from_hist(h: &Histogram<u64>) -> Self {
        Self {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// One kind of pair (same server or across servers).
#[derive(Debug, Clone, Serialize)]
pub struct PathFigures {
    /// Pairs of this kind.
    pub pairs: usize,
    /// Posts sent in the measured window.
    pub posted: u64,
    /// Of those, acknowledged.
    pub acked: u64,
    /// Of those, received by the peer (each a latency sample).
    pub received: u64,
    /// Acknowledged but never received by the peer within the drain timeout.
    pub lost: u64,
    /// Post (sender's clock) → `chat` push read by the peer.
    pub latency_us: DeliveryLatency,
}

/// The delivery measurement.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryFigures {
    /// The active chat servers (all of the topology's).
    pub active: Vec<String>,
    /// Pairs.
    pub pairs: usize,
    /// Posts per second per pair.
    pub rate_per_pair: f64,
    /// Text bytes per post.
    pub text_bytes: usize,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// Longest wait for deliveries after the window, seconds.
    pub drain_timeout_s: f64,
    /// Both users of a pair on one chat server.
    pub same_server: PathFigures,
    /// The two users on different chat servers.
    pub cross_server: PathFigures,
    /// Error replies by code (whole run).
    pub errors: BTreeMap<String, u64>,
    /// Posts never acknowledged.
    pub unacked: u64,
    /// Where the pairs' sessions were.
    pub sessions: Vec<ServerSessions>,
    /// Every server held the sessions planned for it.
    pub placement_ok: bool,
}

impl PoolReport {
    /// The tables, one per phase.
    pub fn table(&self) -> String {
        let mut out = format!(
            "\nchatcap bench pool — {} ({} CPUs), Linux {}\n  pool {} ({}), {} chat servers, {} front ends; database: {}\n  load average at start {}, at end {}\n",
            self.machine.cpu,
            self.machine.cpus,
            self.machine.kernel,
            self.pool,
            self.topology,
            self.processes.iter().filter(|p| p.role == "chat").count(),
            self.processes.iter().filter(|p| p.role == "frontend").count(),
            self.database,
            self.load_average_start,
            self.load_average_end
        );
        if let Some(first) = self.throughput.first() {
            throughput_table(&mut out, first, &self.throughput);
        }
        if let Some(d) = &self.delivery {
            delivery_table(&mut out, d);
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out
    }
}

fn throughput_table(out: &mut String, first: &ThroughputFigures, all: &[ThroughputFigures]) {
    let p = &first.posts;
    let _ = writeln!(
        out,
        "\nPool throughput: {} clients × {} outstanding, one room each, {}-byte posts, {:.0} s warm-up + {:.0} s",
        p.clients, p.window, p.text_bytes, p.warmup_s, p.duration_s
    );
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    let col = |f: &dyn Fn(&ThroughputFigures) -> String| all.iter().map(f).collect::<Vec<_>>();
    let mut rows: Vec<(String, Vec<String>)> = vec![
        ("active chat servers".into(), col(&|t| t.active.join(","))),
        (
            "acked posts/s".into(),
            col(&|t| format!("{:.0}", t.posts.posts_per_sec)),
        ),
        (
            "post→ack p50 µs".into(),
            col(&|t| t.posts.latency_us.p50.to_string()),
        ),
        (
            "post→ack p99 µs".into(),
            col(&|t| t.posts.latency_us.p99.to_string()),
        ),
        (
            "post→ack max µs".into(),
            col(&|t| t.posts.latency_us.max.to_string()),
        ),
        (
            "mean posts per commit".into(),
            col(&|t| opt(t.posts.commit_batch_mean, 1)),
        ),
        (
            "mean ms per commit".into(),
            col(&|t| opt(t.posts.commit_ms_mean, 1)),
        ),
        (
            "errors / unacked".into(),
            col(&|t| {
                let errors: u64 = t.posts.errors.values().sum();
                format!("{errors} / {}", t.posts.unacked)
            }),
        ),
        (
            "sessions per chat server".into(),
            col(&|t| sessions_cell(&t.sessions, t.placement_ok)),
        ),
    ];
    for (i, cpu) in first.cpu.iter().enumerate() {
        rows.push((
            format!("CPU % {}", cpu.name),
            col(&|t| opt(t.cpu.get(i).and_then(|c| c.pct), 0)),
        ));
    }
    rows.push((
        "CPU % generator".into(),
        col(&|t| opt(t.posts.generator_cpu_pct, 0)),
    ));
    columns(out, &rows);
}

fn delivery_table(out: &mut String, d: &DeliveryFigures) {
    let _ = writeln!(
        out,
        "\nDelivery latency: {} pairs, each alone in a room, one posting {} posts/s (open loop), {}-byte posts, {:.0} s warm-up + {:.0} s; active: {}",
        d.pairs, d.rate_per_pair, d.text_bytes, d.warmup_s, d.duration_s, d.active.join(",")
    );
    let paths = [&d.same_server, &d.cross_server];
    let col = |f: &dyn Fn(&PathFigures) -> String| paths.iter().map(|p| f(p)).collect::<Vec<_>>();
    let rows: Vec<(String, Vec<String>)> = vec![
        (
            String::new(),
            vec!["same server".into(), "cross server".into()],
        ),
        ("pairs".into(), col(&|p| p.pairs.to_string())),
        (
            "posted / acked / received".into(),
            col(&|p| format!("{} / {} / {}", p.posted, p.acked, p.received)),
        ),
        (
            "post→delivery p50 µs".into(),
            col(&|p| p.latency_us.p50.to_string()),
        ),
        (
            "post→delivery p90 µs".into(),
            col(&|p| p.latency_us.p90.to_string()),
        ),
        (
            "post→delivery p99 µs".into(),
            col(&|p| p.latency_us.p99.to_string()),
        ),
        (
            "post→delivery max µs".into(),
            col(&|p| p.latency_us.max.to_string()),
        ),
        (
            format!("lost (not delivered within {:.0} s)", d.drain_timeout_s),
            col(&|p| p.lost.to_string()),
        ),
    ];
    columns(out, &rows);
    let errors: u64 = d.errors.values().sum();
    let _ = writeln!(
        out,
        "  errors / unacked: {errors} / {}; sessions per chat server: {}",
        d.unacked,
        sessions_cell(&d.sessions, d.placement_ok)
    );
    for (code, n) in &d.errors {
        let _ = writeln!(out, "    {code}: {n}");
    }
}

/// `a/b/c` sessions per server in topology order, flagged when not as planned.
fn sessions_cell(sessions: &[ServerSessions], ok: bool) -> String {
    let seen: Vec<String> = sessions
        .iter()
        .map(|s| s.seen.map_or("?".into(), |n| n.to_string()))
        .collect();
    let mut cell = seen.join("/");
    if !ok {
        let planned: Vec<String> = sessions.iter().map(|s| s.expected.to_string()).collect();
        cell += &format!(" (planned {})", planned.join("/"));
    }
    cell
}

/// Rows of a name and one value per column, right-aligned.
fn columns(out: &mut String, rows: &[(String, Vec<String>)]) {
    let width = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let cols = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|(_, v)| v.get(i).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (name, values) in rows {
        let _ = write!(out, "  {name:<width$}");
        for (v, w) in values.iter().zip(&widths) {
            let _ = write!(out, "  {v:>w$}");
        }
        out.push('\n');
    }
}
