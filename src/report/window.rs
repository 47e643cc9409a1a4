//! Latency over a window of the run — the steady state after a ramp — read back from the
//! HdrHistogram interval logs the run wrote (its own, or every shard's), so that the
//! figures are exact merges of the recorded histograms, not averages of percentiles.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::hlog::{read, LogError};
use super::latency::Latency;
use crate::metrics::recorder::new_histogram;

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

/// Merge every interval that starts at or after `from_s` in `logs`.
pub fn summarise(logs: &[PathBuf], from_s: f64) -> Result<WindowSummary, LogError> {
    let mut merged: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for path in logs {
        for iv in read(path)?.into_iter().filter(|iv| iv.start_s >= from_s) {
            let total = merged.entry(iv.tag).or_insert_with(new_histogram);
            total.add(&iv.histogram).map_err(|e| LogError::Bad {
                path: path.display().to_string(),
                line: 0,
                reason: format!("{e:?}"),
            })?;
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
    use crate::report::hlog::logs;

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
        assert!(matches!(logs(dir.path()), Err(LogError::NoLog(_))));
        let path = dir.path().join("histograms.hlog");
        std::fs::write(&path, "Tag=post_ack.response,abc,1,0,xyz\n").expect("write");
        let err = summarise(&[path], 0.0).expect_err("bad start");
        assert!(err.to_string().contains(":1:"), "{err}");
    }
}
