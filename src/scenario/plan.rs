//! The validated run plan: what a scenario file means once every field is checked and every
//! load shape is turned into one list of phases. The runner reads only this type.

use std::time::Duration;

use serde::Serialize;

/// Where the load goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// Provision the population into SQLite in a temporary folder and start the server on
    /// it: a single box (`front_ends` = 0), or a chat server with `front_ends` front-end
    /// processes sharing one port.
    Embedded {
        /// Front-end processes (0: chat server and front end in one process).
        front_ends: u32,
        /// Clients connect over TLS (`wss://`), to a certificate made for the run.
        tls: bool,
    },
    /// A running server or pool: client WebSocket URLs (users are spread over them) and
    /// the tokens file written by `chatcap provision` for the same population.
    Addresses {
        /// `ws://host:port/ws` URLs.
        urls: Vec<String>,
        /// CSV `id,name,token` of the provisioned users.
        tokens: std::path::PathBuf,
        /// The CA that signed the servers' certificates (`wss://` URLs).
        ca: Option<std::path::PathBuf>,
    },
    /// A pool described by a topology file: started by the run (as `chatcap pool up`
    /// does), or — with `tokens` — a running pool the run attaches to.
    Topology {
        /// The topology file.
        path: std::path::PathBuf,
        /// With a tokens CSV (`chatcap provision`): attach to the running pool.
        tokens: Option<std::path::PathBuf>,
        /// The CA that signed the front ends' certificates, when they serve `wss://`.
        ca: Option<std::path::PathBuf>,
    },
}

/// One class of rooms in the population.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomClass {
    /// Class name (`small`, `medium`, `large`, …).
    pub name: String,
    /// Members per room.
    pub size: u32,
    /// Rooms of this class each user is a member of.
    pub rooms_per_user: u32,
    /// Share of the class's rooms that are auditoriums (0–1).
    pub auditorium_share: f64,
    /// Share of the class's rooms that are open (0–1).
    pub open_share: f64,
}

impl RoomClass {
    /// Rooms of this class for `users` users: `users × rooms_per_user / size`, rounded up.
    pub fn rooms(&self, users: u32) -> u64 {
        (users as u64 * self.rooms_per_user as u64).div_ceil(self.size.max(1) as u64)
    }
}

/// Who is simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Population {
    /// Users (at full load; phases say how many are connected when).
    pub users: u32,
    /// Endpoints (connections) per user, on average (1.5 in the Lync model).
    pub endpoints_per_user: f64,
    /// Rooms by size class.
    pub rooms: Vec<RoomClass>,
    /// Seed for every random choice (memberships, schedules).
    pub seed: u64,
}

/// An operation a virtual user performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Post to one of the user's rooms (of `room_class`, when given).
    Post,
    /// Ask for the participant list of a visible room.
    PollParticipants,
    /// Change presence (notifies contacts).
    Presence,
    /// Search messages.
    Search,
    /// Catch up a room's history by sequence number.
    History,
    /// Leave a room and join it again (history on join).
    Rejoin,
    /// Drop the connection, reconnect, sign in and batch-join again.
    Reconnect,
    /// List rooms in the directory.
    ListRooms,
    /// Upload a file to a room (not served yet: the runner rejects it at start).
    FileUpload,
    /// Download a file from a room (not served yet: the runner rejects it at start).
    FileDownload,
}

impl OpKind {
    /// Every operation, in declaration order.
    pub const ALL: [OpKind; 10] = [
        OpKind::Post,
        OpKind::PollParticipants,
        OpKind::Presence,
        OpKind::Search,
        OpKind::History,
        OpKind::Rejoin,
        OpKind::Reconnect,
        OpKind::ListRooms,
        OpKind::FileUpload,
        OpKind::FileDownload,
    ];

    /// The operation called `name` (as in [`OpKind::name`]).
    pub fn from_name(name: &str) -> Option<OpKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the operation acts on one of the user's rooms (so `room_class` applies).
    pub fn is_room_op(self) -> bool {
        matches!(
            self,
            OpKind::Post
                | OpKind::PollParticipants
                | OpKind::History
                | OpKind::Rejoin
                | OpKind::FileUpload
                | OpKind::FileDownload
        )
    }

    /// The name used in reports and SLOs.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Post => "post",
            OpKind::PollParticipants => "poll_participants",
            OpKind::Presence => "presence",
            OpKind::Search => "search",
            OpKind::History => "history",
            OpKind::Rejoin => "rejoin",
            OpKind::Reconnect => "reconnect",
            OpKind::ListRooms => "list_rooms",
            OpKind::FileUpload => "file_upload",
            OpKind::FileDownload => "file_download",
        }
    }
}

/// One weighted operation of the behaviour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpRate {
    /// The operation.
    pub op: OpKind,
    /// Times per user per hour, after the load level is applied (open model: Poisson rate;
    /// closed model: weight).
    pub per_user_per_hour: f64,
    /// For room operations ([`OpKind::is_room_op`]: post, poll, history, rejoin, files): the
    /// room class to pick the room from (None: any joined room).
    pub room_class: Option<String>,
}

/// How operations are paced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Workload {
    /// Each user's operations arrive on their own Poisson schedule, whatever the server
    /// does; latency is measured from the intended start (no coordinated omission).
    Open,
    /// Each user does one operation, waits for its reply, thinks, and picks the next by
    /// weight.
    Closed {
        /// Mean think time between operations.
        think_time: Duration,
    },
}

/// Where latency objectives are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SloWindow {
    /// Over the whole run.
    #[default]
    Run,
    /// Over the last phase of the load shape only (the steady state after a ramp).
    LastPhase,
}

/// One phase of the load shape: the number of connected users moves linearly from `from`
/// to `to` over `duration`. Ramps, holds, steps, spikes and soaks all become these.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// Name for reports (`ramp`, `hold`, `step 2`, `spike`, …).
    pub name: String,
    /// Users connected at the start of the phase.
    pub from: u32,
    /// Users connected at the end of the phase.
    pub to: u32,
    /// Length.
    #[serde(with = "secs")]
    pub duration: Duration,
}

mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// How a threshold compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Cmp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
}

/// One service-level objective, e.g. `post_ack.p99 < 50ms`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slo {
    /// As written, for reports.
    pub text: String,
    /// The metric path: `post_ack.p99`, `delivery.lost`, `error_rate`, `server.cpu`, …
    pub metric: String,
    /// Comparison.
    pub cmp: Cmp,
    /// Threshold in the metric's base unit (µs for latencies, a fraction for rates and
    /// percentages, a count otherwise).
    pub threshold: f64,
}

impl Slo {
    /// Whether a measured value (None: not measured) meets the objective.
    pub fn holds(&self, value: Option<f64>) -> bool {
        value.is_some_and(|v| match self.cmp {
            Cmp::Lt => v < self.threshold,
            Cmp::Le => v <= self.threshold,
            Cmp::Gt => v > self.threshold,
            Cmp::Ge => v >= self.threshold,
            Cmp::Eq => (v - self.threshold).abs() < f64::EPSILON,
        })
    }
}

/// Everything a run needs, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunPlan {
    /// Scenario name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Where the load goes.
    pub target: Target,
    /// Who is simulated.
    pub population: Population,
    /// What they do.
    pub ops: Vec<OpRate>,
    /// Messages of history asked for on each join.
    pub history_on_join: u32,
    /// Pacing.
    pub workload: Workload,
    /// Load shape.
    pub phases: Vec<Phase>,
    /// Load level factor applied to `ops` rates (High 1.0, Medium 0.6, Low 0.3, custom).
    pub level: f64,
    /// Objectives.
    pub slos: Vec<Slo>,
    /// How long to wait for a reply before counting a timeout.
    pub request_timeout: Duration,
    /// Size of each uploaded file in KiB.
    pub file_kb: u32,
    /// Where latency objectives are judged.
    pub slo_window: SloWindow,
    /// With `LastPhase`: the part of the phase's start left out.
    pub slo_settle: Duration,
}

impl RunPlan {
    /// Total length of the load shape.
    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// When latency objectives start to be judged, from the start of the load: zero for
    /// the whole run, the start of the last phase for `last_phase`.
    pub fn slo_window_start(&self) -> Duration {
        match (self.slo_window, self.phases.last()) {
            (SloWindow::LastPhase, Some(last)) => {
                self.duration().saturating_sub(last.duration) + self.slo_settle
            }
            _ => Duration::ZERO,
        }
    }

    /// Most users connected at once.
    pub fn peak_users(&self) -> u32 {
        self.phases
            .iter()
            .map(|p| p.from.max(p.to))
            .max()
            .unwrap_or(0)
    }

    /// Users that should be connected `t` after the start.
    pub fn users_at(&self, t: Duration) -> u32 {
        let mut start = Duration::ZERO;
        for p in &self.phases {
            let end = start + p.duration;
            if t < end {
                let f = if p.duration.is_zero() {
                    1.0
                } else {
                    (t - start).as_secs_f64() / p.duration.as_secs_f64()
                };
                return (p.from as f64 + (p.to as f64 - p.from as f64) * f).round() as u32;
            }
            start = end;
        }
        self.phases.last().map(|p| p.to).unwrap_or(0)
    }
}
