//! Recording: fixed metric ids, per-slot interval histograms, exact merging.
//!
//! Virtual users are many and small (a histogram is ~100 KB), so they do not own
//! histograms: they record into one of a few slots (chosen by user index), each behind its
//! own mutex, held for a few hundred nanoseconds. The collector swaps the slots out every
//! second; HdrHistogram addition makes the merge exact.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded, in µs (60 s); slower samples are clamped to it.
pub const MAX_US: u64 = 60_000_000;

/// Every measured operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// TCP + TLS (on `wss://`) + WebSocket handshake.
    Connect,
    /// The TLS handshake alone (`wss://` targets; part of `connect`).
    TlsHandshake,
    /// `sign_in` request → reply.
    SignIn,
    /// Batch join of all the user's rooms (with history).
    Join,
    /// History catch-up.
    History,
    /// Post → acknowledgement (durable).
    PostAck,
    /// Post → delivery to another member (sender's timestamp → receiver's clock).
    Delivery,
    /// Participant list.
    PollParticipants,
    /// Presence change.
    Presence,
    /// Search.
    Search,
    /// Directory listing.
    ListRooms,
    /// Leave and join one room again.
    Rejoin,
    /// Drop the connection, connect, sign in and batch-join again.
    Reconnect,
    /// Upload a file to a room (HTTP, the file web service).
    FileUpload,
    /// List a room's files and download one (HTTP, the file web service).
    FileDownload,
}

/// All metrics, in report order.
pub const ALL: [Metric; 15] = [
    Metric::Connect,
    Metric::TlsHandshake,
    Metric::SignIn,
    Metric::Join,
    Metric::History,
    Metric::PostAck,
    Metric::Delivery,
    Metric::PollParticipants,
    Metric::Presence,
    Metric::Search,
    Metric::ListRooms,
    Metric::Rejoin,
    Metric::Reconnect,
    Metric::FileUpload,
    Metric::FileDownload,
];

impl Metric {
    /// Name in reports, SLOs and histogram tags.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Connect => "connect",
            Metric::TlsHandshake => "tls_handshake",
            Metric::SignIn => "sign_in",
            Metric::Join => "join",
            Metric::History => "history",
            Metric::PostAck => "post_ack",
            Metric::Delivery => "delivery",
            Metric::PollParticipants => "poll_participants",
            Metric::Presence => "presence",
            Metric::Search => "search",
            Metric::ListRooms => "list_rooms",
            Metric::Rejoin => "rejoin",
            Metric::Reconnect => "reconnect",
            Metric::FileUpload => "file_upload",
            Metric::FileDownload => "file_download",
        }
    }

    /// The metric of a name.
    pub fn from_name(name: &str) -> Option<Metric> {
        ALL.into_iter().find(|m| m.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A duration in whole microseconds, as recorders take it (saturating at `u64::MAX`).
pub fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// A new empty histogram with the project's bounds (1 µs – 60 s, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants known to be valid.
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// One metric's histograms and counts.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Time from the actual send to the reply.
    pub service: Histogram<u64>,
    /// Time from the intended start to the reply (includes waiting for a late schedule).
    pub response: Histogram<u64>,
    /// Failed operations (error replies).
    pub errors: u64,
    /// Operations that got no reply in time.
    pub timeouts: u64,
}

impl OpStats {
    fn new() -> Self {
        Self {
            service: new_histogram(),
            response: new_histogram(),
            errors: 0,
            timeouts: 0,
        }
    }

    /// Successful operations.
    pub fn count(&self) -> u64 {
        self.response.len()
    }

    fn add(&mut self, other: &OpStats) {
        // Same bounds on both sides: addition cannot fail.
        let _ = self.service.add(&other.service);
        let _ = self.response.add(&other.response);
        self.errors += other.errors;
        self.timeouts += other.timeouts;
    }

    fn reset(&mut self) {
        self.service.reset();
        self.response.reset();
        self.errors = 0;
        self.timeouts = 0;
    }
}

/// Everything recorded over some time: per-metric stats and correctness counters.
#[derive(Debug, Clone)]
pub struct Recorder {
    ops: Vec<OpStats>,
    /// Error replies by code (`busy`, `forbidden`, …, `timeout`, `disconnect`).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Messages a receiver never got (sequence gaps that stayed open).
    pub lost: u64,
    /// Messages a receiver got twice.
    pub duplicated: u64,
    /// Messages that arrived after a later one (gap filled late).
    pub out_of_order: u64,
    /// Deliveries received.
    pub deliveries: u64,
    /// Connections the server closed or that failed.
    pub disconnects: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// Empty.
    pub fn new() -> Self {
        Self {
            ops: ALL.iter().map(|_| OpStats::new()).collect(),
            errors_by_kind: BTreeMap::new(),
            lost: 0,
            duplicated: 0,
            out_of_order: 0,
            deliveries: 0,
            disconnects: 0,
        }
    }

    /// Record a success: service and response times in µs.
    pub fn ok(&mut self, m: Metric, service_us: u64, response_us: u64) {
        let s = &mut self.ops[m.index()];
        s.service.saturating_record(service_us.clamp(1, MAX_US));
        s.response.saturating_record(response_us.clamp(1, MAX_US));
    }

    /// Record a delivery latency in µs.
    pub fn delivery(&mut self, latency_us: u64) {
        self.deliveries += 1;
        self.ok(Metric::Delivery, latency_us, latency_us);
    }

    /// Record an error reply of `kind` for `m`.
    pub fn error(&mut self, m: Metric, kind: &str) {
        self.ops[m.index()].errors += 1;
        *self.errors_by_kind.entry(kind.to_string()).or_default() += 1;
    }

    /// Record a timeout of `m`.
    pub fn timeout(&mut self, m: Metric) {
        self.ops[m.index()].timeouts += 1;
        *self
            .errors_by_kind
            .entry("timeout".to_string())
            .or_default() += 1;
    }

    /// Stats of one metric.
    pub fn op(&self, m: Metric) -> &OpStats {
        &self.ops[m.index()]
    }

    /// Add everything of `other` (exact).
    pub fn add(&mut self, other: &Recorder) {
        for (a, b) in self.ops.iter_mut().zip(&other.ops) {
            a.add(b);
        }
        for (k, v) in &other.errors_by_kind {
            *self.errors_by_kind.entry(k.clone()).or_default() += v;
        }
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
        self.deliveries += other.deliveries;
        self.disconnects += other.disconnects;
    }

    /// Empty everything, keeping the allocations.
    pub fn reset(&mut self) {
        for s in &mut self.ops {
            s.reset();
        }
        self.errors_by_kind.clear();
        self.lost = 0;
        self.duplicated = 0;
        self.out_of_order = 0;
        self.deliveries = 0;
        self.disconnects = 0;
    }

    /// Successful operations of every metric but deliveries.
    pub fn requests_ok(&self) -> u64 {
        ALL.iter()
            .filter(|m| **m != Metric::Delivery)
            .map(|m| self.op(*m).count())
            .sum()
    }

    /// Failed and timed-out operations.
    pub fn requests_failed(&self) -> u64 {
        self.ops.iter().map(|s| s.errors + s.timeouts).sum()
    }
}

/// The recording slots shared by all virtual users of a process.
pub struct Recorders {
    slots: Vec<Mutex<Recorder>>,
}

impl Recorders {
    /// `n` slots (a few per core is plenty).
    pub fn new(n: usize) -> Self {
        Self {
            slots: (0..n.max(1)).map(|_| Mutex::new(Recorder::new())).collect(),
        }
    }

    /// The slot of user `vu`, locked. Hold it briefly: never across `.await`.
    pub fn slot(&self, vu: usize) -> MutexGuard<'_, Recorder> {
        self.slots[vu % self.slots.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Take everything recorded since the last call, merged, leaving the slots empty.
    pub fn swap(&self, into: &mut Recorder) {
        into.reset();
        for slot in &self.slots {
            let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
            into.add(&s);
            s.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_slots_equals_recording_in_one() {
        let slots = Recorders::new(3);
        let mut single = Recorder::new();
        for i in 0..3000u64 {
            let v = (i * 7919) % 50_000 + 1;
            slots.slot(i as usize).ok(Metric::PostAck, v, v + 10);
            single.ok(Metric::PostAck, v, v + 10);
        }
        slots.slot(1).error(Metric::Search, "busy");
        single.error(Metric::Search, "busy");
        let mut merged = Recorder::new();
        slots.swap(&mut merged);
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.op(Metric::PostAck).response.value_at_quantile(q),
                single.op(Metric::PostAck).response.value_at_quantile(q)
            );
        }
        assert_eq!(merged.op(Metric::PostAck).count(), 3000);
        assert_eq!(merged.errors_by_kind.get("busy"), Some(&1));
        let mut again = Recorder::new();
        slots.swap(&mut again);
        assert_eq!(
            again.op(Metric::PostAck).count(),
            0,
            "a swap empties the slots"
        );
    }
}

/// A recorder as stored on disk (`totals.json` of a shard): histograms as base64
/// V2-deflate, counters as numbers. Reading it back and adding is exact.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RawRecorder {
    /// Per metric name: [service, response] histograms, errors, timeouts.
    pub ops: BTreeMap<String, RawOp>,
    /// Errors by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// See [`Recorder::lost`].
    pub lost: u64,
    /// See [`Recorder::duplicated`].
    pub duplicated: u64,
    /// See [`Recorder::out_of_order`].
    pub out_of_order: u64,
    /// See [`Recorder::deliveries`].
    pub deliveries: u64,
    /// See [`Recorder::disconnects`].
    pub disconnects: u64,
}

/// One metric of a [`RawRecorder`].
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RawOp {
    /// Service-time histogram, base64 V2-deflate.
    pub service: String,
    /// Response-time histogram, base64 V2-deflate.
    pub response: String,
    /// Error replies.
    pub errors: u64,
    /// Timeouts.
    pub timeouts: u64,
}

/// A stored recorder that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable stored histogram for {metric}: {reason}")]
pub struct RawError {
    /// The metric.
    pub metric: String,
    /// Why.
    pub reason: String,
}

/// The stored form of a histogram (base64 of the compressed V2 serialisation).
pub fn encode(h: &Histogram<u64>) -> String {
    use base64::Engine;
    use hdrhistogram::serialization::Serializer;
    let mut buf = Vec::new();
    // Serialising into a Vec cannot fail for a valid histogram.
    let _ = hdrhistogram::serialization::V2DeflateSerializer::new().serialize(h, &mut buf);
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// A histogram from its stored form (base64 of the V2 serialisation, compressed or not),
/// as written in `totals.json` and in the interval log.
pub fn decode(metric: &str, text: &str) -> Result<Histogram<u64>, RawError> {
    use base64::Engine;
    let err = |reason: String| RawError {
        metric: metric.to_string(),
        reason,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| err(e.to_string()))?;
    let h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| err(format!("{e:?}")))?;
    let mut out = new_histogram();
    out.add(&h).map_err(|e| err(format!("{e:?}")))?;
    Ok(out)
}

impl Recorder {
    /// The stored form.
    pub fn to_raw(&self) -> RawRecorder {
        RawRecorder {
            ops: ALL
                .iter()
                .map(|m| {
                    let s = self.op(*m);
                    (
                        m.name().to_string(),
                        RawOp {
                            service: encode(&s.service),
                            response: encode(&s.response),
                            errors: s.errors,
                            timeouts: s.timeouts,
                        },
                    )
                })
                .collect(),
            errors_by_kind: self.errors_by_kind.clone(),
            lost: self.lost,
            duplicated: self.duplicated,
            out_of_order: self.out_of_order,
            deliveries: self.deliveries,
            disconnects: self.disconnects,
        }
    }

    /// Back from the stored form (metrics this build does not know are refused).
    pub fn from_raw(raw: &RawRecorder) -> Result<Recorder, RawError> {
        let mut r = Recorder::new();
        for (name, op) in &raw.ops {
            let m = Metric::from_name(name).ok_or_else(|| RawError {
                metric: name.clone(),
                reason: "unknown metric".into(),
            })?;
            let s = &mut r.ops[m.index()];
            s.service = decode(name, &op.service)?;
            s.response = decode(name, &op.response)?;
            s.errors = op.errors;
            s.timeouts = op.timeouts;
        }
        r.errors_by_kind = raw.errors_by_kind.clone();
        r.lost = raw.lost;
        r.duplicated = raw.duplicated;
        r.out_of_order = raw.out_of_order;
        r.deliveries = raw.deliveries;
        r.disconnects = raw.disconnects;
        Ok(r)
    }
}

#[cfg(test)]
mod raw_tests {
    use super::*;

    #[test]
    fn two_shards_stored_and_merged_equal_one_run() {
        let mut one = Recorder::new();
        let mut shards = [Recorder::new(), Recorder::new()];
        for i in 0..20_000u64 {
            let v = (i * 104_729) % 2_000_000 + 1;
            one.ok(Metric::PostAck, v / 2 + 1, v);
            one.delivery(v / 3 + 1);
            shards[(i % 2) as usize].ok(Metric::PostAck, v / 2 + 1, v);
            shards[(i % 2) as usize].delivery(v / 3 + 1);
        }
        one.lost = 3;
        shards[1].lost = 3;
        one.error(Metric::Join, "forbidden");
        shards[0].error(Metric::Join, "forbidden");
        let mut merged = Recorder::new();
        for s in &shards {
            let text = serde_json::to_string(&s.to_raw()).expect("serialise");
            let back: RawRecorder = serde_json::from_str(&text).expect("parse");
            merged.add(&Recorder::from_raw(&back).expect("decode"));
        }
        for m in [Metric::PostAck, Metric::Delivery] {
            for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
                assert_eq!(
                    merged.op(m).response.value_at_quantile(q),
                    one.op(m).response.value_at_quantile(q)
                );
                assert_eq!(
                    merged.op(m).service.value_at_quantile(q),
                    one.op(m).service.value_at_quantile(q)
                );
            }
            assert_eq!(merged.op(m).count(), one.op(m).count());
        }
        assert_eq!(
            merged.to_raw(),
            one.to_raw(),
            "every histogram and counter is equal"
        );
    }
}
