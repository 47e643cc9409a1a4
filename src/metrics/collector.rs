//! Once a second: take what the virtual users recorded, add it to the run's totals, write
//! each metric's interval histogram to the HdrHistogram interval log, and append one row
//! to the timeline.
//!
//! The interval log is the standard text format (`Tag=<metric>.<service|response>,start,
//! length,max,base64 V2-deflate histogram`), readable by HdrHistogram's own tools.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::recorder::{Metric, Recorder, Recorders, ALL};

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimelineRow {
    /// Seconds since the start of the load.
    pub t_s: f64,
    /// Connections the load shape asked for.
    pub target_users: u64,
    /// Connections signed in and joined.
    pub users: u64,
    /// Successful requests in this second.
    pub requests: u64,
    /// Failed or timed-out requests in this second.
    pub errors: u64,
    /// Posts acknowledged.
    pub posts: u64,
    /// Deliveries received.
    pub deliveries: u64,
    /// post→ack p50 and p99 (response time), µs.
    pub post_ack_p50_us: u64,
    /// See above.
    pub post_ack_p99_us: u64,
    /// post→delivery p99, µs.
    pub delivery_p99_us: u64,
    /// Messages found missing in this second.
    pub lost: u64,
    /// Messages received twice in this second.
    pub duplicated: u64,
}

/// Accumulates the run.
pub struct Collector {
    interval: Recorder,
    /// Everything so far.
    pub total: Recorder,
    /// One row per tick.
    pub timeline: Vec<TimelineRow>,
    hlog: Option<std::io::BufWriter<std::fs::File>>,
    last_t: Duration,
}

fn q(h: &Histogram<u64>, quantile: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(quantile)
    }
}

impl Collector {
    /// A collector writing its interval log to `hlog_path` (if given).
    pub fn new(hlog_path: Option<&std::path::Path>) -> std::io::Result<Self> {
        let hlog = match hlog_path {
            Some(p) => {
                let mut w = std::io::BufWriter::new(std::fs::File::create(p)?);
                let start = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64();
                writeln!(w, "#[Histograms of chatcap: latency in microseconds, tags <metric>.<service|response>]")?;
                writeln!(w, "#[StartTime: {start:.3} (seconds since epoch)]")?;
                writeln!(w, "#[BaseTime: {start:.3} (seconds since epoch)]")?;
                writeln!(w, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")?;
                Some(w)
            }
            None => None,
        };
        Ok(Self {
            interval: Recorder::new(),
            total: Recorder::new(),
            timeline: Vec::new(),
            hlog,
            last_t: Duration::ZERO,
        })
    }

    /// Take the slots' last second at time `t` (since the start of the load).
    pub fn tick(
        &mut self,
        recorders: &Recorders,
        t: Duration,
        users: u64,
        target_users: u64,
    ) -> &TimelineRow {
        recorders.swap(&mut self.interval);
        self.total.add(&self.interval);
        if let Err(e) = self.write_hlog(t) {
            tracing::warn!(error = %e, "cannot write the histogram log; continuing without it");
            self.hlog = None;
        }
        let i = &self.interval;
        let post = i.op(Metric::PostAck);
        let row = TimelineRow {
            t_s: t.as_secs_f64(),
            target_users,
            users,
            requests: i.requests_ok(),
            errors: i.requests_failed(),
            posts: post.count(),
            deliveries: i.deliveries,
            post_ack_p50_us: q(&post.response, 0.5),
            post_ack_p99_us: q(&post.response, 0.99),
            delivery_p99_us: q(&i.op(Metric::Delivery).response, 0.99),
            lost: i.lost,
            duplicated: i.duplicated,
        };
        self.timeline.push(row);
        self.last_t = t;
        self.timeline.last().expect("just pushed")
    }

    fn write_hlog(&mut self, t: Duration) -> std::io::Result<()> {
        let Some(w) = self.hlog.as_mut() else {
            return Ok(());
        };
        let start = self.last_t.as_secs_f64();
        let len = (t.saturating_sub(self.last_t)).as_secs_f64();
        let mut ser = V2DeflateSerializer::new();
        for m in ALL {
            let stats = self.interval.op(m);
            for (kind, h) in [("response", &stats.response), ("service", &stats.service)] {
                if h.is_empty() || (m == Metric::Delivery && kind == "service") {
                    continue;
                }
                let mut buf = Vec::new();
                ser.serialize(h, &mut buf)
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
                writeln!(
                    w,
                    "Tag={}.{kind},{start:.3},{len:.3},{:.3},{}",
                    m.name(),
                    h.max() as f64 / 1000.0,
                    STANDARD.encode(&buf)
                )?;
            }
        }
        w.flush()
    }
}
