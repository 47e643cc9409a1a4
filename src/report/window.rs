//! Latency over a window of the run — the steady state after a ramp — read back from the
//! HdrHistogram interval logs the run wrote (its own, or every shard's), so that the
//! figures are exact merges of the recorded histograms, not averages of percentiles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::model::Latency;
use crate::metrics::recorder::{decode, new_histogram};

/// One operation's latency over the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WindowOp {
    /// Completed operations whose interval started in the window.
    pub count: u64,
    /// From the intended start.
    pub response: Latency,
    /// From the send.
    pub service: Latency,
}

/// Latency of every operation over the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WindowSummary {
    /// Start of the window, seconds from the start of the load.
    pub from_s: f64,
    /// Operation → latency.
    pub operations: BTreeMap<String, WindowOp>,
}

/// Why the interval logs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
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

/// The interval logs of a results folder: its own, or its shards'.
pub fn logs(dir: &Path) -> Result<Vec<PathBuf>, WindowError> {
    let own = dir.join("histograms.hlog");
    if own.exists() {
        return Ok(vec![own]);
    }
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| WindowError::Io {
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
        return Err(WindowError::NoLog(dir.display().to_string()));
    }
    Ok(shards)
}

/// Merge every interval that starts at or after `from_s` in `logs`.
pub fn summarise(logs: &[PathBuf], from_s: f64) -> Result<WindowSummary, WindowError> {
    let mut merged: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for path in logs {
        let text = std::fs::read_to_string(path).map_err(|source| WindowError::Io {
            path: path.display().to_string(),
            source,
        })?;
        for (i, line) in text.lines().enumerate() {
            let Some(rest) = line.strip_prefix("Tag=") else {
                continue;
            };
            let bad = |reason: String| WindowError::Bad {
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
            let start: f64 = start
                .parse()
                .map_err(|_| bad(format!("start {start:?} is not a number")))?;
            if start < from_s {
                continue;
            }
            let h = decode(tag, encoded).map_err(|e| bad(e.to_string()))?;
            let total = merged.entry(tag.to_string()).or_insert_with(new_histogram);
            total.add(&h).map_err(|e| bad(format!("{e:?}")))?;
        }
    }
    let mut operations: BTreeMap<String, WindowOp> = BTreeMap::new();
    for (tag, h) in &merged {
        let Some((op, kind)) = tag.rsplit_once('.') else {
            continue;
        };
        let entry = operations.entry(op.to_string()).or_default();
        match kind {
            "response" => {
                entry.count = h.len();
                entry.response = Latency::of(h);
            }
            "service" => entry.service = Latency::of(h),
            _ => {}
        }
    }
    operations.retain(|_, o| o.count > 0);
    Ok(WindowSummary { from_s, operations })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_before_the_window_are_left_out_and_shards_add_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let line = |tag: &str, start: f64, values: &[u64]| {
            let mut h = new_histogram();
            for v in values {
                h.record(*v).expect("record");
            }
            let raw = crate::metrics::recorder::encode(&h);
            format!("Tag={tag},{start:.3},1.000,0.000,{raw}\n")
        };
        for (shard, early, late) in [("shard-0", 900_000, 1_000), ("shard-1", 800_000, 3_000)] {
            let folder = dir.path().join(shard);
            std::fs::create_dir_all(&folder).expect("mkdir");
            let text = format!(
                "#[comment]\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n{}{}{}",
                line("post_ack.response", 1.0, &[early]),
                line("post_ack.response", 10.0, &[late]),
                line("post_ack.service", 10.0, &[late / 2]),
            );
            std::fs::write(folder.join("histograms.hlog"), text).expect("write");
        }
        let logs = logs(dir.path()).expect("the shards' logs");
        assert_eq!(logs.len(), 2);
        let w = summarise(&logs, 5.0).expect("summary");
        let op = &w.operations["post_ack"];
        assert_eq!(op.count, 2, "one late interval from each shard");
        assert!(op.response.max_us < 3_100, "{op:?}");
        assert!(
            op.response.p50_us >= 990 && op.response.p50_us <= 1_010,
            "{op:?}"
        );
        assert!(op.service.max_us < 1_600);
        let all = summarise(&logs, 0.0).expect("whole run");
        assert_eq!(all.operations["post_ack"].count, 4);
    }

    #[test]
    fn a_folder_without_logs_and_a_bad_line_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(matches!(logs(dir.path()), Err(WindowError::NoLog(_))));
        let path = dir.path().join("histograms.hlog");
        std::fs::write(&path, "Tag=post_ack.response,abc,1,0,xyz\n").expect("write");
        let err = summarise(&[path], 0.0).expect_err("bad start");
        assert!(err.to_string().contains(":1:"), "{err}");
    }
}
