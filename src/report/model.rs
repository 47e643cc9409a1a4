//! The report model: one structure (`summary.json`, schema in `reports/schema/`) built from
//! a run's measurements, rendered as JSON, Markdown, CSV and the console table. Every
//! renderer reads this; none recomputes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::latency::Latency;
use crate::metrics::recorder::{Recorder, ALL};
use crate::metrics::resources::ProcessSummary;
use crate::runner::reconcile::Reconciliation;

/// Schema identifier written into every summary (`/1`, still read, is `/2` without
/// `profile`).
pub const SCHEMA: &str = "chatcap.summary/2";

/// One operation's figures. The top-level percentiles are response times from the intended
/// start (what a user waits, coordinated omission corrected); `service` is from the actual
/// send.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OpSummary {
    /// Successful operations.
    pub count: u64,
    /// Error replies.
    pub errors: u64,
    /// No reply in time.
    pub timeouts: u64,
    /// Successful operations per second of load.
    pub rate_per_s: f64,
    /// Response time from the intended start.
    #[serde(flatten)]
    pub response: Latency,
    /// Service time from the actual send.
    pub service: Latency,
}

/// Deliveries and their correctness.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeliverySummary {
    /// Pushes received.
    pub received: u64,
    /// Sequence numbers never received (gaps).
    pub lost: u64,
    /// Received twice.
    pub duplicated: u64,
    /// Received after a later one.
    pub out_of_order: u64,
}

/// Users and connections.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UsersSummary {
    /// Most connections signed in at once.
    pub peak: u64,
    /// Most connections the load shape asked for.
    pub target_peak: u64,
    /// Users in the population.
    pub population: u64,
    /// Connections the server closed or that failed.
    pub disconnects: u64,
}

/// One objective's verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SloResult {
    /// As written.
    pub text: String,
    /// Measured value in the metric's base unit (None: not measured).
    pub value: Option<f64>,
    /// That unit: `us`, `fraction`, `bytes` or `count`.
    pub unit: String,
    /// Met.
    pub pass: bool,
}

/// The machine and limits of the run (the hardware profile).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    /// CPU model.
    pub cpu_model: String,
    /// Logical cores.
    pub cores: u64,
    /// Memory, bytes.
    pub memory_bytes: u64,
    /// Kernel version.
    pub kernel: String,
    /// Host name.
    pub hostname: String,
    /// Open-file limit of the generator.
    pub fd_limit: u64,
}

/// Everything a run reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub scenario_file: String,
    /// Start, RFC 3339 (UTC).
    pub started_at: String,
    /// `completed` or `interrupted` (partial results).
    pub ending: String,
    /// Seconds of load.
    pub duration_s: f64,
    /// Users and connections.
    pub users: UsersSummary,
    /// Per operation (`post_ack`, `join`, `sign_in`, …; `delivery` is post→delivery).
    pub operations: BTreeMap<String, OpSummary>,
    /// Delivery correctness.
    pub delivery: DeliverySummary,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Failed requests / all requests.
    pub error_rate: f64,
    /// Acknowledged posts checked against history.
    pub reconciliation: Option<Reconciliation>,
    /// Resource use by process (`server`, `generator`).
    pub resources: BTreeMap<String, ProcessSummary>,
    /// Objectives.
    pub slo: Vec<SloResult>,
    /// The hardware profile.
    pub machine: Machine,
    /// Latency over the last phase, when the scenario judges latency objectives there
    /// (`slo_window = "last_phase"`); latency SLOs then read these figures.
    #[serde(default)]
    pub slo_window: Option<super::window::WindowSummary>,
    /// The hardware profile the servers were limited to, and how each limit was applied
    /// (`null`: none asked; absent in `chatcap.summary/1`).
    #[serde(default)]
    pub profile: Option<crate::profile::ProfileRecord>,
}

/// Per-operation figures, delivery correctness and the error rate of a run's totals.
pub fn operations(
    total: &Recorder,
    duration_s: f64,
) -> (BTreeMap<String, OpSummary>, DeliverySummary, f64) {
    let mut ops = BTreeMap::new();
    for m in ALL {
        let s = total.op(m);
        if s.count() == 0 && s.errors == 0 && s.timeouts == 0 {
            continue;
        }
        ops.insert(
            m.name().to_string(),
            OpSummary {
                count: s.count(),
                errors: s.errors,
                timeouts: s.timeouts,
                rate_per_s: if duration_s > 0.0 {
                    s.count() as f64 / duration_s
                } else {
                    0.0
                },
                response: Latency::of(&s.response),
                service: Latency::of(&s.service),
            },
        );
    }
    let delivery = DeliverySummary {
        received: total.deliveries,
        lost: total.lost,
        duplicated: total.duplicated,
        out_of_order: total.out_of_order,
    };
    let ok = total.requests_ok() as f64;
    let failed = total.requests_failed() as f64;
    let error_rate = if ok + failed > 0.0 {
        failed / (ok + failed)
    } else {
        0.0
    };
    (ops, delivery, error_rate)
}

impl Summary {
    /// (response, service) latency of `op` as SLOs judge it: over the window when there
    /// is one and the operation occurred in it; otherwise over the whole run (sign-in and
    /// join happen during a ramp, not in the hold that follows it).
    fn latency_of(&self, op: &str) -> Option<(&Latency, &Latency)> {
        if let Some(o) = self.slo_window.as_ref().and_then(|w| w.operations.get(op)) {
            return Some((&o.response, &o.service));
        }
        self.operations.get(op).map(|o| (&o.response, &o.service))
    }

    /// The value of an SLO metric path: `<op>.<p50|p90|p99|p999|max|mean>` (response time,
    /// µs), `<op>.service.<pXX>`, `<op>.count|errors|rate`, `delivery.lost|duplicated|
    /// out_of_order|received`, `error_rate`, `users.peak`, `reconcile.missing`,
    /// `server.cpu` / `server.rss` / `generator.cpu` (fraction of one core, bytes),
    /// `<process>.rss_per_user` (bytes of peak memory per peak connection),
    /// `<process>.cpu_us_per_request` (CPU µs of the process per successful request),
    /// `throughput` (successful requests per second, deliveries not counted).
    /// Latency paths read the SLO window when the scenario has one.
    pub fn metric(&self, path: &str) -> Option<f64> {
        let parts: Vec<&str> = path.split('.').collect();
        let lat = |l: &Latency, q: &str| -> Option<f64> {
            Some(match q {
                "p50" => l.p50_us as f64,
                "p90" => l.p90_us as f64,
                "p99" => l.p99_us as f64,
                "p999" => l.p999_us as f64,
                "max" => l.max_us as f64,
                "mean" => l.mean_us,
                _ => return None,
            })
        };
        match parts.as_slice() {
            ["error_rate"] => Some(self.error_rate),
            ["throughput"] => Some(
                self.operations
                    .iter()
                    .filter(|(op, _)| op.as_str() != "delivery")
                    .map(|(_, o)| o.rate_per_s)
                    .sum(),
            ),
            ["users", "peak"] => Some(self.users.peak as f64),
            ["delivery", "lost"] => Some(self.delivery.lost as f64),
            ["delivery", "duplicated"] => Some(self.delivery.duplicated as f64),
            ["delivery", "out_of_order"] => Some(self.delivery.out_of_order as f64),
            ["delivery", "received"] => Some(self.delivery.received as f64),
            ["reconcile", "missing"] => self.reconciliation.as_ref().map(|r| r.missing as f64),
            ["reconcile", "duplicated"] => {
                self.reconciliation.as_ref().map(|r| r.duplicated as f64)
            }
            [proc_, "cpu"] => self.resources.get(*proc_).map(|r| r.cpu_avg_pct / 100.0),
            [proc_, "cpu_max"] => self.resources.get(*proc_).map(|r| r.cpu_max_pct / 100.0),
            [proc_, "rss"] => self.resources.get(*proc_).map(|r| r.rss_max_bytes as f64),
            [proc_, "rss_per_user"] => self
                .resources
                .get(*proc_)
                .filter(|_| self.users.peak > 0)
                .map(|r| r.rss_max_bytes as f64 / self.users.peak as f64),
            [proc_, "cpu_us_per_request"] => {
                let requests: u64 = self
                    .operations
                    .iter()
                    .filter(|(op, _)| op.as_str() != "delivery")
                    .map(|(_, o)| o.count)
                    .sum();
                self.resources
                    .get(*proc_)
                    .filter(|_| requests > 0)
                    .map(|r| r.cpu_avg_pct / 100.0 * self.duration_s * 1e6 / requests as f64)
            }
            [op, "service", q] => self.latency_of(op).and_then(|(_, s)| lat(s, q)),
            [op, "count"] => Some(
                self.operations
                    .get(*op)
                    .map(|o| o.count as f64)
                    .unwrap_or(0.0),
            ),
            [op, "errors"] => Some(
                self.operations
                    .get(*op)
                    .map(|o| (o.errors + o.timeouts) as f64)
                    .unwrap_or(0.0),
            ),
            [op, "rate"] => Some(
                self.operations
                    .get(*op)
                    .map(|o| o.rate_per_s)
                    .unwrap_or(0.0),
            ),
            [op, q] => self.latency_of(op).and_then(|(r, _)| lat(r, q)),
            _ => None,
        }
    }
}
