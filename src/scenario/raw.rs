//! The scenario file as written: serde types that mirror the TOML one to one (unknown keys
//! are errors), plus the small value forms (`"500ms"`, `"10/s"`, `"medium"`). Nothing here
//! checks that values make sense together; that is the validator's job.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A scenario file as written. [`Scenario::load`] reads one and validates it into a
/// run plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario name (reports, folder names).
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Where the load goes (default: embedded).
    #[serde(default)]
    pub target: RawTarget,
    /// Who is simulated.
    pub population: RawPopulation,
    /// What they do.
    #[serde(default)]
    pub behaviour: RawBehaviour,
    /// How operations are paced.
    #[serde(default)]
    pub workload: RawWorkload,
    /// The load shape, phase by phase.
    #[serde(default)]
    pub load: Vec<RawShape>,
    /// Objectives: metric → `"< 50ms"`.
    #[serde(default)]
    pub slo: BTreeMap<String, String>,
    /// Where latency objectives are judged: `"run"` (default) or `"last_phase"`.
    pub slo_window: Option<String>,
    /// With `last_phase`: leave out this much of the phase's start (a ramp's backlog).
    pub slo_settle: Option<DurationValue>,
}

fn default_seed() -> u64 {
    1
}

/// `[target]`: which fields apply depends on `kind`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// `embedded` (default), `addresses` or `topology`.
    #[serde(default)]
    pub kind: TargetKind,
    /// `addresses`: client WebSocket URLs.
    pub urls: Option<Vec<String>>,
    /// `addresses` (and `topology`, to attach to a running pool): the tokens CSV of the
    /// provisioned users.
    pub tokens: Option<PathBuf>,
    /// `topology`: the topology file of the pool to start (or, with `tokens`, attach to).
    pub path: Option<PathBuf>,
    /// `embedded`: front-end processes in front of the chat server (0 = a single box).
    pub front_ends: Option<u32>,
    /// `embedded`: serve clients over TLS (`wss://`) with a certificate made for the run.
    pub tls: Option<bool>,
    /// `addresses`, `topology`: the CA (PEM) that signed the front ends' certificates, for
    /// `wss://`.
    pub ca: Option<PathBuf>,
}

/// The kinds of target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A single box started in-process.
    #[default]
    Embedded,
    /// A running server or pool.
    Addresses,
    /// A pool described by a topology file.
    Topology,
}

/// A built-in model to take numbers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ModelName {
    /// The Lync Server 2013 Persistent Chat performance user model.
    #[serde(rename = "lync2013")]
    Lync2013,
}

/// `[population]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPopulation {
    /// Users at full load.
    pub users: u32,
    /// Endpoints per user (default 1, or 1.5 with `model = "lync2013"`).
    pub endpoints_per_user: Option<f64>,
    /// Take the room classes from a model, scaled to `users`.
    pub model: Option<ModelName>,
    /// Room classes (when no model).
    #[serde(default)]
    pub rooms: Vec<RawRoomClass>,
}

/// `[[population.rooms]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoomClass {
    /// Class name.
    pub class: String,
    /// Members per room.
    pub size: u32,
    /// Rooms of the class each user is in.
    pub rooms_per_user: u32,
    /// Share of auditorium rooms (0–1).
    #[serde(default)]
    pub auditorium_share: f64,
    /// Share of open rooms (0–1).
    #[serde(default)]
    pub open_share: f64,
}

/// `[behaviour]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBehaviour {
    /// Take the operation rates from a model (more `ops` may be added).
    pub model: Option<ModelName>,
    /// Load level: scales every rate.
    #[serde(default)]
    pub level: Level,
    /// Messages of history asked for on each join (1–500).
    #[serde(default = "default_history")]
    pub history_on_join: u32,
    /// Wait this long for a reply before counting a timeout.
    #[serde(default = "default_timeout")]
    pub request_timeout: DurationValue,
    /// Size of each uploaded file in KiB (1–20,000).
    #[serde(default = "default_file_kb")]
    pub file_kb: u32,
    /// Operations with their rates.
    #[serde(default)]
    pub ops: Vec<RawOp>,
}

impl Default for RawBehaviour {
    fn default() -> Self {
        Self {
            model: None,
            level: Level::default(),
            history_on_join: default_history(),
            request_timeout: default_timeout(),
            file_kb: default_file_kb(),
            ops: Vec::new(),
        }
    }
}

fn default_history() -> u32 {
    30
}

fn default_file_kb() -> u32 {
    100
}

fn default_timeout() -> DurationValue {
    DurationValue(Duration::from_secs(10))
}

/// `[[behaviour.ops]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOp {
    /// Operation name (`post`, `poll_participants`, …).
    pub op: String,
    /// Times per user per hour at level high.
    pub per_user_per_hour: f64,
    /// Room class to pick rooms from (room operations only).
    pub room_class: Option<String>,
}

/// `[workload]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    /// `open` (default) or `closed`.
    #[serde(default)]
    pub model: WorkloadModel,
    /// `closed`: mean think time between operations.
    pub think_time: Option<DurationValue>,
}

/// The workload models.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadModel {
    /// Arrivals on a schedule.
    #[default]
    Open,
    /// Users with think time.
    Closed,
}

/// One entry of `load`: exactly one shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawShape {
    /// Move to `to` users, over a time or at a rate.
    Ramp(RawRamp),
    /// Stay put.
    Hold(RawHold),
    /// Add `by` users `times` times, one step `every`.
    Step(RawStep),
    /// Jump to `to`, hold, come back.
    Spike(RawSpike),
    /// A long hold, named so in reports.
    Soak(RawHold),
}

/// `ramp = { to, over | rate }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRamp {
    /// Users at the end.
    pub to: u32,
    /// How long the ramp takes.
    pub over: Option<DurationValue>,
    /// Or: how fast users sign in (or leave).
    pub rate: Option<RateValue>,
}

/// `hold = { for }` and `soak = { for }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHold {
    /// How long.
    #[serde(rename = "for")]
    pub for_: DurationValue,
}

/// `step = { by, every, times, over | rate }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Users added per step.
    pub by: u32,
    /// Time from one step's start to the next.
    pub every: DurationValue,
    /// Number of steps.
    pub times: u32,
    /// Ramp time within each step (default 0: a jump).
    pub over: Option<DurationValue>,
    /// Or: sign-in rate within each step.
    pub rate: Option<RateValue>,
}

/// `spike = { to, over, hold, back_over }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpike {
    /// Users at the top.
    pub to: u32,
    /// Time to get there.
    pub over: DurationValue,
    /// Time at the top.
    pub hold: DurationValue,
    /// Time to come back (default: `over`).
    pub back_over: Option<DurationValue>,
}

/// A duration written `"500ms"`, `"10s"`, `"2m"`, `"1h"`, `"1h30m"`, `"1.5s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

/// A rate written `"10/s"`, `"600/m"`, `"36000/h"`; stored per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateValue(pub f64);

/// A load level: `"low"` (0.3), `"medium"` (0.6), `"high"` (1.0) or a factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level(pub f64);

impl Default for Level {
    fn default() -> Self {
        Level(1.0)
    }
}

/// Parses `"500ms"`, `"2m30s"`, `"1.5h"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration; write e.g. \"500ms\", \"10s\", \"2m\", \"1h\"");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let unit_len = rest[num_len..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len() - num_len);
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        let secs = match &rest[num_len..num_len + unit_len] {
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * secs;
        rest = &rest[num_len + unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Parses `"10/s"`, `"600/m"`, `"36000/h"` into a rate per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let bad = || format!("`{s}` is not a rate; write e.g. \"10/s\", \"600/m\", \"100/h\"");
    let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
    let n: f64 = n.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    if !n.is_finite() || n <= 0.0 {
        return Err(format!("`{s}`: a rate must be above 0"));
    }
    Ok(n / per)
}

/// Parses a level name.
pub fn parse_level(s: &str) -> Result<f64, String> {
    match s {
        "low" => Ok(0.3),
        "medium" => Ok(0.6),
        "high" => Ok(1.0),
        _ => Err(format!(
            "unknown level `{s}`; expected \"low\", \"medium\", \"high\" or a factor such as 0.8"
        )),
    }
}

/// A visitor for values written as strings and parsed by `parse`.
struct StrVisitor<F>(&'static str, F);

impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for StrVisitor<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.1)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor("a duration such as \"10s\"", |s: &str| {
            parse_duration(s).map(DurationValue)
        }))
    }
}

impl<'de> Deserialize<'de> for RateValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor("a rate such as \"10/s\"", |s: &str| {
            parse_rate(s).map(RateValue)
        }))
    }
}

struct LevelVisitor;

impl Visitor<'_> for LevelVisitor {
    type Value = Level;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"low\", \"medium\", \"high\" or a factor such as 0.8")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Level, E> {
        parse_level(v).map(Level).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Level, E> {
        Ok(Level(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Level, E> {
        Ok(Level(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Level, E> {
        Ok(Level(v as f64))
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LevelVisitor)
    }
}
