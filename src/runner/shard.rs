//! Splitting the load over generator processes, and merging their results exactly.
//!
//! One process may hold only so many sockets (20,000 open files here), so a run whose
//! connections do not fit is split into shards: shard `i` of `N` owns the connections
//! `n` with `n % N == i` (rooms still span shards). On one machine the shards are child
//! processes of `chatcap run`; on many machines any launcher starts
//! `chatcap run SCENARIO --shard i/N --start-at MS --attach URL --population FILE`
//! (a Kubernetes Indexed Job passes `JOB_COMPLETION_INDEX` as `i`). Each shard writes
//! its folder with `totals.json` (raw histograms and counters) and `ledger.json`;
//! [`merge`] adds them up exactly (`chatcap merge` does the same for folders from many
//! machines).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::SimUser;
use crate::metrics::collector::{Collector, TimelineRow};
use crate::metrics::recorder::{RawRecorder, Recorder};
use crate::metrics::resources::Sample;

/// Which slice of the connections a process owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardId {
    /// 0-based index.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl ShardId {
    /// This shard runs connection `n`.
    pub fn owns(&self, n: usize) -> bool {
        n % self.count == self.index
    }
}

impl FromStr for ShardId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?} is not of the form i/N (0-based i)"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index {i:?} is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count {n:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index must be below the count (0-based)"
            ));
        }
        Ok(ShardId { index, count })
    }
}

/// Files a shard folder holds besides the ordinary results.
pub const TOTALS: &str = "totals.json";
/// Acknowledged posts of the shard.
pub const LEDGER: &str = "ledger.json";
/// (room, last seq seen) of the shard's connections at the end.
pub const TAILS: &str = "tails.json";
/// The simulated users handed to shards.
pub const POPULATION: &str = "population.json";

/// A shard folder that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// File trouble.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not the expected JSON.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ShardError> {
    let text = std::fs::read_to_string(path).map_err(|source| ShardError::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ShardError::Format {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), ShardError> {
    let text = serde_json::to_string(value).map_err(|e| ShardError::Format {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(|source| ShardError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Write the simulated users for shards to read.
pub fn write_population(path: &Path, users: &[Arc<SimUser>]) -> Result<(), ShardError> {
    let plain: Vec<&SimUser> = users.iter().map(|u| u.as_ref()).collect();
    write_json(path, &plain)
}

/// Read the simulated users written by [`write_population`].
pub fn read_population(path: &Path) -> Result<Vec<Arc<SimUser>>, ShardError> {
    let users: Vec<SimUser> = read_json(path)?;
    Ok(users.into_iter().map(Arc::new).collect())
}

/// Write a shard's raw totals and ledger into its folder.
pub fn write_shard_files(
    dir: &Path,
    total: &Recorder,
    ledger: &HashMap<i64, Vec<i64>>,
    tails: &[(i64, i64)],
) -> Result<(), ShardError> {
    write_json(&dir.join(TOTALS), &total.to_raw())?;
    write_json(&dir.join(LEDGER), ledger)?;
    write_json(&dir.join(TAILS), &tails)
}

/// Everything merged from shard folders.
pub struct Merged {
    /// Exact sum of the shards' totals.
    pub total: Recorder,
    /// Timelines added second by second (users and counts summed; percentiles are the
    /// worst shard's, an upper bound — the exact merged percentiles are in `total`).
    pub timeline: Vec<TimelineRow>,
    /// Acknowledged posts of every shard.
    pub ledger: HashMap<i64, Vec<i64>>,
    /// Resource samples of every shard, renamed `generator-<i>`.
    pub resources: Vec<Sample>,
    /// End-of-run tails of every shard's connections.
    pub tails: Vec<(i64, i64)>,
}

/// Merge shard folders.
pub fn merge(dirs: &[PathBuf]) -> Result<Merged, ShardError> {
    let mut total = Recorder::new();
    let mut timeline: Vec<TimelineRow> = Vec::new();
    let mut ledger: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut resources = Vec::new();
    let mut tails = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let path = dir.join(TOTALS);
        let raw: RawRecorder = read_json(&path)?;
        let r = Recorder::from_raw(&raw).map_err(|e| ShardError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        total.add(&r);
        let part: HashMap<i64, Vec<i64>> = read_json(&dir.join(LEDGER))?;
        for (room, seqs) in part {
            ledger.entry(room).or_default().extend(seqs);
        }
        tails.extend(read_json::<Vec<(i64, i64)>>(&dir.join(TAILS))?);
        for (k, row) in read_csv::<TimelineRow>(&dir.join("timeline.csv"))?
            .into_iter()
            .enumerate()
        {
            match timeline.get_mut(k) {
                Some(acc) => add_row(acc, &row),
                None => timeline.push(row),
            }
        }
        for mut s in read_csv::<Sample>(&dir.join("resources.csv"))? {
            if s.process == "generator" {
                s.process = format!("generator-{i}");
                resources.push(s);
            }
        }
    }
    Ok(Merged {
        total,
        timeline,
        ledger,
        resources,
        tails,
    })
}

fn add_row(acc: &mut TimelineRow, row: &TimelineRow) {
    acc.target_users += row.target_users;
    acc.users += row.users;
    acc.requests += row.requests;
    acc.errors += row.errors;
    acc.posts += row.posts;
    acc.deliveries += row.deliveries;
    acc.lost += row.lost;
    acc.duplicated += row.duplicated;
    acc.post_ack_p50_us = acc.post_ack_p50_us.max(row.post_ack_p50_us);
    acc.post_ack_p99_us = acc.post_ack_p99_us.max(row.post_ack_p99_us);
    acc.delivery_p99_us = acc.delivery_p99_us.max(row.delivery_p99_us);
}

fn read_csv<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, ShardError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| ShardError::Format {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    r.deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| ShardError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// One interval log for the merged folder: the first shard's header, then every shard's
/// intervals (the shards share their start, so their interval times line up; readers merge
/// intervals of the same tag and second).
pub fn merge_logs(dirs: &[PathBuf], out: &Path) -> Result<(), ShardError> {
    let mut text = String::new();
    for (i, dir) in dirs.iter().enumerate() {
        let path = dir.join("histograms.hlog");
        let part = std::fs::read_to_string(&path).map_err(|source| ShardError::Io {
            path: path.display().to_string(),
            source,
        })?;
        for line in part.lines() {
            if i == 0 || line.starts_with("Tag=") {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    std::fs::write(out, text).map_err(|source| ShardError::Io {
        path: out.display().to_string(),
        source,
    })
}

/// A collector carrying merged results (no interval log: the shards wrote theirs).
pub fn merged_collector(m: &Merged) -> Collector {
    // Without a log path nothing can fail.
    let mut c = Collector::new(None).expect("no log file to open");
    c.total = m.total.clone();
    c.timeline = m.timeline.clone();
    c
}

/// Milliseconds since the epoch, for `--start-at`.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Sleep until `ms` since the epoch (immediately when past).
pub async fn sleep_until_unix_ms(ms: u64) {
    let now = unix_ms(SystemTime::now());
    if ms > now {
        tokio::time::sleep(Duration::from_millis(ms - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_parse_and_partition() {
        let s: ShardId = "1/3".parse().expect("valid");
        assert!(s.owns(1) && s.owns(4) && !s.owns(0));
        assert!("3/3".parse::<ShardId>().is_err());
        assert!("x/2".parse::<ShardId>().is_err());
        assert!("2".parse::<ShardId>().is_err());
        let all: Vec<usize> = (0..3)
            .map(|i| {
                (0..30)
                    .filter(|n| ShardId { index: i, count: 3 }.owns(*n))
                    .count()
            })
            .collect();
        assert_eq!(all, vec![10, 10, 10]);
    }
}
