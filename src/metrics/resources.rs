//! Resource use of the processes under test and of the generator itself, sampled once a
//! second from `/proc`: CPU, resident memory, open descriptors, threads; plus the size of
//! the database (its folder for SQLite, what PostgreSQL reports for a pool's database).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One sample of one process.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// Seconds since the start of the load.
    pub t_s: f64,
    /// Which process (`server`, `generator`).
    pub process: String,
    /// CPU use since the previous sample, percent of one core.
    pub cpu_pct: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Threads.
    pub threads: u64,
    /// Bytes of the database (on the process that owns it; 0 on the others).
    pub db_bytes: u64,
}

/// Where a probe reads the database size.
#[derive(Debug, Clone)]
pub enum DbSize {
    /// The files of a folder (SQLite databases and their journals).
    Folder(PathBuf),
    /// The latest figure a sampler stored (PostgreSQL's `pg_database_size`, read by the
    /// runner on a connection of its own).
    Reported(Arc<AtomicU64>),
}

impl DbSize {
    /// The size now, bytes.
    pub fn bytes(&self) -> u64 {
        match self {
            DbSize::Folder(dir) => dir_bytes(dir),
            DbSize::Reported(latest) => latest.load(Ordering::Relaxed),
        }
    }
}

/// Samples one process repeatedly.
pub struct ProcessProbe {
    name: String,
    pid: u32,
    db: Option<DbSize>,
    last: Option<(Instant, u64)>,
    ticks_per_sec: f64,
}

fn read_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn status_field(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

impl ProcessProbe {
    /// A probe of `pid`, reported as `name`; the database `db` is measured with it.
    pub fn new(name: &str, pid: u32, db: Option<DbSize>) -> Self {
        Self {
            name: name.to_string(),
            pid,
            db,
            last: None,
            ticks_per_sec: 100.0,
        }
    }

    /// One sample at `t_s`; None when the process is gone.
    pub fn sample(&mut self, t_s: f64) -> Option<Sample> {
        let ticks = read_cpu_ticks(self.pid)?;
        let now = Instant::now();
        let cpu_pct = match self.last {
            Some((then, before)) => {
                let dt = now.duration_since(then).as_secs_f64().max(1e-3);
                (ticks.saturating_sub(before) as f64 / self.ticks_per_sec) / dt * 100.0
            }
            None => 0.0,
        };
        self.last = Some((now, ticks));
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        Some(Sample {
            t_s,
            process: self.name.clone(),
            cpu_pct,
            rss_bytes: status_field(self.pid, "VmRSS:").unwrap_or(0) * 1024,
            fds,
            threads: status_field(self.pid, "Threads:").unwrap_or(0),
            db_bytes: self.db.as_ref().map(DbSize::bytes).unwrap_or(0),
        })
    }
}

/// Summary of one process over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessSummary {
    /// Mean CPU, percent of one core.
    pub cpu_avg_pct: f64,
    /// Highest one-second CPU, percent of one core.
    pub cpu_max_pct: f64,
    /// Highest resident memory, bytes.
    pub rss_max_bytes: u64,
    /// Highest open descriptors.
    pub fds_max: u64,
    /// Highest thread count.
    pub threads_max: u64,
    /// Database size at the end, bytes.
    pub db_bytes: u64,
}

/// Summarise the samples of process `name`.
pub fn summarise(samples: &[Sample], name: &str) -> Option<ProcessSummary> {
    let mine: Vec<&Sample> = samples.iter().filter(|s| s.process == name).collect();
    if mine.is_empty() {
        return None;
    }
    // The first sample has no CPU figure (no previous reading).
    let cpu: Vec<f64> = mine.iter().skip(1).map(|s| s.cpu_pct).collect();
    Some(ProcessSummary {
        cpu_avg_pct: if cpu.is_empty() {
            0.0
        } else {
            cpu.iter().sum::<f64>() / cpu.len() as f64
        },
        cpu_max_pct: cpu.iter().copied().fold(0.0, f64::max),
        rss_max_bytes: mine.iter().map(|s| s.rss_bytes).max().unwrap_or(0),
        fds_max: mine.iter().map(|s| s.fds).max().unwrap_or(0),
        threads_max: mine.iter().map(|s| s.threads).max().unwrap_or(0),
        db_bytes: mine.last().map(|s| s.db_bytes).unwrap_or(0),
    })
}
