//! The figures of a `bench server` run: one model, rendered as a text table and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::memory::MemoryFigures;
use super::Plan;

/// Latency percentiles in microseconds (HdrHistogram, 3 significant digits).
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// Percentiles of a histogram of microseconds.
    pub fn from_hist(h: &Histogram<u64>) -> Self {
        Self {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// The posting figures of one backend.
#[derive(Debug, Clone, Serialize)]
pub struct PostFigures {
    /// Posting clients.
    pub clients: usize,
    /// Posts outstanding per client.
    pub window: usize,
    /// Rooms posted to.
    pub rooms: usize,
    /// Text bytes per post.
    pub text_bytes: usize,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// Acks read inside the measured window.
    pub acked_in_window: u64,
    /// Acks read in the whole run.
    pub acked_total: u64,
    /// Acked posts per second over the measured window.
    pub posts_per_sec: f64,
    /// Chat pushes received by the clients per second (fan-out; 0 with one client per room).
    pub deliveries_per_sec: f64,
    /// Posts still unacknowledged when the clients gave up waiting.
    pub unacked: u64,
    /// Error replies by code.
    pub errors: BTreeMap<String, u64>,
    /// Post→ack latency over the measured window.
    pub latency_us: Latency,
    /// Mean posts per group commit over the window (from the server's `/metrics`).
    pub commit_batch_mean: Option<f64>,
    /// Mean milliseconds per group commit (insert + commit + fsync) over the window.
    pub commit_ms_mean: Option<f64>,
    /// Server process CPU over the window, % of one core.
    pub server_cpu_pct: Option<f64>,
    /// Load generator CPU over the window, % of one core.
    pub generator_cpu_pct: Option<f64>,
}

/// Everything measured on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    /// "sqlite" or "postgres".
    pub backend: String,
    /// Posting figures.
    pub posts: PostFigures,
    /// Memory figures (absent when skipped).
    pub memory: Option<MemoryFigures>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Machine the run was on.
    pub machine: Machine,
    /// Per backend.
    pub backends: Vec<BackendReport>,
    /// Skipped or failed backends.
    pub notes: Vec<String>,
}

/// What the figures were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model (from `/proc/cpuinfo`).
    pub cpu: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// The machine this process runs on.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Self {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
        }
    }
}

impl BenchReport {
    /// An empty report for `plan`.
    pub fn new(plan: &Plan) -> Self {
        Self {
            machine: Machine::detect(),
            backends: Vec::new(),
            notes: plan.skipped.clone(),
        }
    }

    /// The summary table, one column per backend.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        let mut row = |name: &str, f: &dyn Fn(&BackendReport) -> String| {
            rows.push((name.to_string(), self.backends.iter().map(f).collect()));
        };
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".into(), |v| format!("{v:.0}{unit}"));
        row("backend", &|b| b.backend.clone());
        row("clients × window / rooms", &|b| {
            format!(
                "{} × {} / {}",
                b.posts.clients, b.posts.window, b.posts.rooms
            )
        });
        row("acked posts/s", &|b| {
            format!("{:.0}", b.posts.posts_per_sec)
        });
        row("post→ack p50 µs", &|b| {
            b.posts.latency_us.p50.to_string()
        });
        row("post→ack p99 µs", &|b| {
            b.posts.latency_us.p99.to_string()
        });
        row("post→ack p99.9 µs", &|b| {
            b.posts.latency_us.p999.to_string()
        });
        row("post→ack max µs", &|b| {
            b.posts.latency_us.max.to_string()
        });
        row("mean posts per commit", &|b| {
            b.posts
                .commit_batch_mean
                .map_or("-".into(), |v| format!("{v:.1}"))
        });
        row("mean ms per commit", &|b| {
            b.posts
                .commit_ms_mean
                .map_or("-".into(), |v| format!("{v:.1}"))
        });
        row("deliveries/s", &|b| {
            format!("{:.0}", b.posts.deliveries_per_sec)
        });
        row("errors / unacked", &|b| {
            let errors: u64 = b.posts.errors.values().sum();
            format!("{errors} / {}", b.posts.unacked)
        });
        row("server CPU %", &|b| opt(b.posts.server_cpu_pct, "%"));
        row("generator CPU %", &|b| opt(b.posts.generator_cpu_pct, "%"));
        row("idle sessions", &|b| {
            b.memory
                .as_ref()
                .map_or("-".into(), |m| m.sessions.to_string())
        });
        row("bytes/idle session", &|b| {
            opt(b.memory.as_ref().map(|m| m.bytes_per_session), " B")
        });
        row("bytes/session in a room", &|b| {
            opt(
                b.memory.as_ref().and_then(|m| m.bytes_per_joined_session),
                " B",
            )
        });
        row("server RSS before", &|b| {
            b.memory
                .as_ref()
                .map_or("-".into(), |m| format!("{:.1} MiB", mib(m.rss_before)))
        });
        let width = rows
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        let cols: Vec<usize> = (0..self.backends.len())
            .map(|i| {
                rows.iter()
                    .map(|(_, v)| v[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = format!(
            "\nchatcap bench server — {} ({} CPUs), Linux {}\n",
            self.machine.cpu, self.machine.cpus, self.machine.kernel
        );
        for (name, values) in &rows {
            let _ = write!(out, "  {name:<width$}");
            for (v, w) in values.iter().zip(&cols) {
                let _ = write!(out, "  {v:>w$}");
            }
            out.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        out
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
