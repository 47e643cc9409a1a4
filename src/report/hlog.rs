//! The run's HdrHistogram interval logs read back (`histograms.hlog`, its own or every
//! shard's): one interval per tag per second, each a full histogram, so that any window or
//! any second is an exact merge of recorded histograms, never an average of percentiles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::metrics::recorder::{decode, new_histogram};

/// Why the interval logs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// No interval log in the folder (nor in its `shard-*` folders).
    #[error("no histograms.hlog in {0} or its shard folders")]
    NoLog(String),
    /// A log could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not an interval of the log's format.
    #[error("{path}:{line}: {reason}")]
    Bad {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
}

/// One interval of one tag (`<operation>.<response|service>`).
pub struct Interval {
    /// The tag.
    pub tag: String,
    /// Start, seconds from the start of the load.
    pub start_s: f64,
    /// What was recorded in it, µs.
    pub histogram: Histogram<u64>,
}

/// The interval logs of a results folder: its own, or its shards'.
pub fn logs(dir: &Path) -> Result<Vec<PathBuf>, LogError> {
    let own = dir.join("histograms.hlog");
    if own.exists() {
        return Ok(vec![own]);
    }
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| LogError::Io {
            path: dir.display().to_string(),
            source,
        })?
        .flatten()
        .map(|e| e.path().join("histograms.hlog"))
        .filter(|p| {
            p.exists()
                && p.parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|n| n.to_string_lossy().starts_with("shard-"))
        })
        .collect();
    shards.sort();
    if shards.is_empty() {
        return Err(LogError::NoLog(dir.display().to_string()));
    }
    Ok(shards)
}

/// Every interval of one log, in file order.
pub fn read(path: &Path) -> Result<Vec<Interval>, LogError> {
    let text = std::fs::read_to_string(path).map_err(|source| LogError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("Tag=") else {
            continue;
        };
        let bad = |reason: String| LogError::Bad {
            path: path.display().to_string(),
            line: i + 1,
            reason,
        };
        let fields: Vec<&str> = rest.splitn(5, ',').collect();
        let [tag, start, _len, _max, encoded] = fields.as_slice() else {
            return Err(bad(
                "expected Tag=<tag>,<start>,<length>,<max>,<histogram>".into()
            ));
        };
        let start_s: f64 = start
            .parse()
            .map_err(|_| bad(format!("start {start:?} is not a number")))?;
        let histogram = decode(tag, encoded).map_err(|e| bad(e.to_string()))?;
        out.push(Interval {
            tag: tag.to_string(),
            start_s,
            histogram,
        });
    }
    Ok(out)
}

/// The intervals of several logs (a run's shards) merged per tag and whole second of the
/// start: tag → second → histogram.
pub fn per_second(
    logs: &[PathBuf],
) -> Result<BTreeMap<String, BTreeMap<u64, Histogram<u64>>>, LogError> {
    let mut out: BTreeMap<String, BTreeMap<u64, Histogram<u64>>> = BTreeMap::new();
    for path in logs {
        for iv in read(path)? {
            let second = iv.start_s.max(0.0).round() as u64;
            let slot = out
                .entry(iv.tag)
                .or_default()
                .entry(second)
                .or_insert_with(new_histogram);
            slot.add(&iv.histogram).map_err(|e| LogError::Bad {
                path: path.display().to_string(),
                line: 0,
                reason: format!("{e:?}"),
            })?;
        }
    }
    Ok(out)
}
