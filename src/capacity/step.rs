//! One step of a search — a normal results folder — reduced to what capacity needs: users,
//! verdict, failed objectives, latency p99s, and per process the CPU, memory and open files
//! over the judged window (the hold), the delivery and post rates there, and the database's
//! growth. Reads results through `report::results`; never runs anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::results::Results;

/// A step's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every objective held.
    Pass,
    /// An objective failed.
    Fail,
    /// Stopped before its end (Ctrl-C): not counted.
    Interrupted,
    /// The run ended without a readable results folder: counted as a failure.
    Error,
}

/// A measured process during the judged window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessFigures {
    /// Mean CPU, cores (1.0 = one core busy).
    pub cpu_cores: f64,
    /// Highest resident memory, bytes.
    pub rss_bytes: u64,
    /// Highest open descriptors.
    pub fds: u64,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Users asked for (the scenario's `population.users`).
    pub users: u32,
    /// The results folder.
    pub dir: String,
    /// Pass, fail, interrupted or error.
    pub verdict: Verdict,
    /// Objectives that failed, as written (`post_ack.p99 < 50ms`), with the measured value.
    pub failed: Vec<FailedSlo>,
    /// Connections signed in at the peak.
    pub peak_connections: u64,
    /// Connections the load shape asked for at the peak.
    pub target_connections: u64,
    /// p99 response time per operation over the judged window, µs.
    pub p99_us: BTreeMap<String, u64>,
    /// Per process (`server`, `frontend-1`, `generator`…).
    pub processes: BTreeMap<String, ProcessFigures>,
    /// Deliveries received per second in the window.
    pub deliveries_per_s: f64,
    /// Posts acknowledged per second in the window.
    pub posts_per_s: f64,
    /// Growth of the databases over the run, bytes.
    pub db_growth_bytes: u64,
    /// Posts acknowledged over the run.
    pub posts: u64,
    /// CPUs the servers had (profile), `None`: the whole machine.
    pub cpu_capacity: Option<f64>,
    /// Logical cores of the machine.
    pub cores: u64,
    /// Memory limit of the servers (profile), bytes.
    pub memory_limit: Option<u64>,
    /// Open-file limit of a process.
    pub fd_limit: u64,
    /// Profile name (`None`: no profile).
    pub profile: Option<String>,
    /// Why the step has no figures (verdict `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A failed objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedSlo {
    /// As written, e.g. `post_ack.p99 < 50ms`.
    pub text: String,
    /// Measured, in the metric's base unit.
    pub value: Option<f64>,
}

impl Step {
    /// A step whose run left no readable results.
    pub fn error(users: u32, dir: String, verdict: Verdict, why: String) -> Step {
        Step {
            users,
            dir,
            verdict,
            failed: Vec::new(),
            peak_connections: 0,
            target_connections: 0,
            p99_us: BTreeMap::new(),
            processes: BTreeMap::new(),
            deliveries_per_s: 0.0,
            posts_per_s: 0.0,
            db_growth_bytes: 0,
            posts: 0,
            cpu_capacity: None,
            cores: 0,
            memory_limit: None,
            fd_limit: 0,
            profile: None,
            error: Some(why),
        }
    }

    /// Reduce a results folder (users: the scenario's population).
    pub fn measure(r: &Results) -> Step {
        let s = &r.summary;
        let from = s.slo_window.as_ref().map_or(0.0, |w| w.from_s);
        // The window ends where the load does: the last timeline row is the drain's.
        let end = s.duration_s;
        let in_window = |t: f64| t >= from && t <= end;
        let mut processes: BTreeMap<String, (f64, usize, ProcessFigures)> = BTreeMap::new();
        for x in r.resources.iter().filter(|x| in_window(x.t_s)) {
            let e = processes.entry(x.process.clone()).or_default();
            e.0 += x.cpu_pct / 100.0;
            e.1 += 1;
            e.2.rss_bytes = e.2.rss_bytes.max(x.rss_bytes);
            e.2.fds = e.2.fds.max(x.fds);
        }
        let processes = processes
            .into_iter()
            .map(|(name, (cpu, n, mut f))| {
                f.cpu_cores = if n > 0 { cpu / n as f64 } else { 0.0 };
                (name, f)
            })
            .collect();
        let rows: Vec<_> = r.timeline.iter().filter(|t| in_window(t.t_s)).collect();
        let per_s = |f: fn(&crate::metrics::collector::TimelineRow) -> u64| {
            if rows.is_empty() {
                0.0
            } else {
                rows.iter().map(|t| f(t) as f64).sum::<f64>() / rows.len() as f64
            }
        };
        // Database growth: each process's last size less its first (the last samples of
        // the processes are not taken at the same instant), summed.
        let mut db_sizes: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for x in &r.resources {
            db_sizes
                .entry(x.process.as_str())
                .and_modify(|e| e.1 = x.db_bytes)
                .or_insert((x.db_bytes, x.db_bytes));
        }
        let db_growth: u64 = db_sizes
            .values()
            .map(|(first, last)| last.saturating_sub(*first))
            .sum();
        let mut p99_us = BTreeMap::new();
        for op in s.operations.keys() {
            if let Some(v) = s.metric(&format!("{op}.p99")) {
                p99_us.insert(op.clone(), v as u64);
            }
        }
        let failed: Vec<FailedSlo> = s
            .slo
            .iter()
            .filter(|x| !x.pass)
            .map(|x| FailedSlo {
                text: x.text.clone(),
                value: x.value,
            })
            .collect();
        let interrupted = s.ending != "completed";
        Step {
            users: s.users.population as u32,
            dir: r.dir.display().to_string(),
            verdict: match (interrupted, failed.is_empty()) {
                (true, _) => Verdict::Interrupted,
                (false, true) => Verdict::Pass,
                (false, false) => Verdict::Fail,
            },
            failed,
            peak_connections: s.users.peak,
            target_connections: s.users.target_peak,
            p99_us,
            processes,
            deliveries_per_s: per_s(|t| t.deliveries),
            posts_per_s: per_s(|t| t.posts),
            db_growth_bytes: db_growth,
            posts: s.operations.get("post_ack").map_or(0, |o| o.count),
            cpu_capacity: s.profile.as_ref().and_then(|p| p.cpu_capacity()),
            cores: s.machine.cores,
            memory_limit: s.profile.as_ref().and_then(|p| p.memory_bytes),
            fd_limit: s.machine.fd_limit,
            profile: s.profile.as_ref().map(|p| p.name.clone()),
            error: None,
        }
    }

    /// CPUs the servers could use: the profile's, or the machine's cores.
    pub fn server_cpus(&self) -> f64 {
        self.cpu_capacity.unwrap_or(self.cores as f64)
    }

    /// Whether the step counts as a pass.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    /// The server processes (everything but the generator and its shards).
    pub fn servers(&self) -> impl Iterator<Item = (&String, &ProcessFigures)> {
        self.processes
            .iter()
            .filter(|(n, _)| crate::report::figures::role(n) != "generator")
    }
}
