//! Stage two: a raw [`Scenario`] becomes a [`RunPlan`], or a list of problems that each name
//! file, line and field. Models are expanded here, rates get the load level, and the load
//! shape is handed to [`super::shape`]. Nothing is started or opened.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ctx::Ctx;
use super::error::ScenarioError;
use super::lync;
use super::plan::{OpKind, OpRate, Population, RoomClass, RunPlan, SloWindow, Target, Workload};
use super::raw::{ModelName, RawPopulation, RawTarget, Scenario, TargetKind, WorkloadModel};
use super::span::{FieldPath, Source};
use super::{shape, slo};

/// Checks `raw` (read from `src`) and builds the run plan.
pub(crate) fn validate(raw: &Scenario, src: &Source) -> Result<RunPlan, ScenarioError> {
    let file = src.file();
    let mut cx = Ctx::new(src);
    let root = FieldPath::root();

    if raw.name.trim().is_empty() {
        cx.err(&root.key("name"), "must not be empty");
    }
    let target = target(&mut cx, &raw.target, file);
    let population = population(&mut cx, &raw.population, raw.seed);
    let ops = ops(&mut cx, raw, &population.rooms);

    let b = root.key("behaviour");
    if !(1..=500).contains(&raw.behaviour.history_on_join) {
        cx.err(
            &b.key("history_on_join"),
            "must be 1–500 messages (Lync's DefaultChatHistory range)",
        );
    }
    if raw.behaviour.request_timeout.0.is_zero() {
        cx.err(&b.key("request_timeout"), "must be above 0");
    }
    if !(1..=20_000).contains(&raw.behaviour.file_kb) {
        cx.err(
            &b.key("file_kb"),
            "must be 1–20,000 KiB (the server's default MaxFileSizeKB is 20,000)",
        );
    }

    let w = root.key("workload");
    let workload = match (raw.workload.model, raw.workload.think_time) {
        (WorkloadModel::Open, None) => Workload::Open,
        (WorkloadModel::Open, Some(_)) => {
            cx.err(&w.key("think_time"), "only applies to model = \"closed\"");
            Workload::Open
        }
        (WorkloadModel::Closed, Some(t)) => Workload::Closed { think_time: t.0 },
        (WorkloadModel::Closed, None) => {
            cx.err(
                &w.key("model"),
                "model = \"closed\" needs think_time, e.g. \"30s\"",
            );
            Workload::Closed {
                think_time: Duration::ZERO,
            }
        }
    };

    let phases = shape::expand(&mut cx, &raw.load, population.users);

    let mut slos = Vec::new();
    for (metric, value) in &raw.slo {
        match slo::parse(metric, value) {
            Ok(s) => slos.push(s),
            Err(m) => cx.err(&root.key("slo").key(metric), m),
        }
    }

    let slo_window = match raw.slo_window.as_deref() {
        None | Some("run") => SloWindow::Run,
        Some("last_phase") => SloWindow::LastPhase,
        Some(other) => {
            cx.err(
                &root.key("slo_window"),
                format!("must be \"run\" or \"last_phase\", not {other:?}"),
            );
            SloWindow::Run
        }
    };

    let slo_settle = raw.slo_settle.map(|d| d.0).unwrap_or_default();
    if !slo_settle.is_zero() {
        let last = phases.last().map(|p| p.duration).unwrap_or_default();
        if slo_window != SloWindow::LastPhase {
            cx.err(
                &root.key("slo_settle"),
                "applies only with slo_window = \"last_phase\"",
            );
        } else if slo_settle >= last {
            cx.err(
                &root.key("slo_settle"),
                format!("must be shorter than the last phase ({} s)", last.as_secs()),
            );
        }
    }

    cx.finish()?;
    Ok(RunPlan {
        name: raw.name.trim().to_string(),
        description: raw.description.trim().to_string(),
        target,
        population,
        ops,
        history_on_join: raw.behaviour.history_on_join,
        slo_window,
        slo_settle,
        workload,
        phases,
        level: raw.behaviour.level.0,
        slos,
        request_timeout: raw.behaviour.request_timeout.0,
        file_kb: raw.behaviour.file_kb,
    })
}

/// Most front-end processes an embedded target starts.
const MAX_FRONT_ENDS: u32 = 8;

fn target(cx: &mut Ctx, raw: &RawTarget, file: &Path) -> Target {
    let t = FieldPath::root().key("target");
    let base = file.parent().unwrap_or(Path::new(""));
    let resolve = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        }
    };
    let allowed: &[&str] = match raw.kind {
        TargetKind::Embedded => &["front_ends", "tls"],
        TargetKind::Addresses => &["urls", "tokens", "ca"],
        TargetKind::Topology => &["path", "tokens", "ca"],
    };
    let given = [
        ("urls", raw.urls.is_some()),
        ("tokens", raw.tokens.is_some()),
        ("path", raw.path.is_some()),
        ("front_ends", raw.front_ends.is_some()),
        ("tls", raw.tls.is_some()),
        ("ca", raw.ca.is_some()),
    ];
    for (key, present) in given {
        if present && !allowed.contains(&key) {
            cx.err(
                &t.key(key),
                format!("does not apply to kind = \"{}\"", kind_name(raw.kind)),
            );
        }
    }
    match raw.kind {
        TargetKind::Embedded => {
            let front_ends = raw.front_ends.unwrap_or(0);
            if front_ends > MAX_FRONT_ENDS {
                cx.err(
                    &t.key("front_ends"),
                    format!("must be 0–{MAX_FRONT_ENDS} (0: a single box), not {front_ends}"),
                );
            }
            Target::Embedded {
                front_ends,
                tls: raw.tls.unwrap_or(false),
            }
        }
        TargetKind::Topology => match &raw.path {
            Some(p) => Target::Topology {
                path: resolve(p),
                tokens: raw.tokens.as_ref().map(resolve),
                ca: raw.ca.as_ref().map(resolve),
            },
            None => {
                cx.err(
                    &t.key("kind"),
                    "kind = \"topology\" needs path = \"<topology file>\"",
                );
                Target::Embedded {
                    front_ends: 0,
                    tls: false,
                }
            }
        },
        TargetKind::Addresses => {
            let urls = raw.urls.clone().unwrap_or_default();
            if urls.is_empty() {
                cx.err(
                    &t.key(if raw.urls.is_some() { "urls" } else { "kind" }),
                    "kind = \"addresses\" needs urls = [\"ws://host:port/ws\", …]",
                );
            }
            for (i, u) in urls.iter().enumerate() {
                if !(u.starts_with("ws://") || u.starts_with("wss://")) {
                    cx.err(
                        &t.key("urls").index(i),
                        format!("`{u}` is not a ws:// or wss:// URL"),
                    );
                }
            }
            let tokens = raw.tokens.as_ref().map(resolve).unwrap_or_default();
            if raw.tokens.is_none() {
                cx.err(
                    &t.key("kind"),
                    "kind = \"addresses\" needs tokens = \"<tokens CSV from chatcap provision>\"",
                );
            }
            let ca = raw.ca.as_ref().map(resolve);
            if ca.is_none() && urls.iter().any(|u| u.starts_with("wss://")) {
                cx.err(
                    &t.key("urls"),
                    "wss:// URLs need ca = \"<PEM file of the CA that signed the servers' certificates>\"",
                );
            }
            Target::Addresses { urls, tokens, ca }
        }
    }
}

fn kind_name(k: TargetKind) -> &'static str {
    match k {
        TargetKind::Embedded => "embedded",
        TargetKind::Addresses => "addresses",
        TargetKind::Topology => "topology",
    }
}

fn population(cx: &mut Ctx, raw: &RawPopulation, seed: u64) -> Population {
    let p = FieldPath::root().key("population");
    if raw.users == 0 {
        cx.err(&p.key("users"), "must be at least 1");
    }
    let default_endpoints = match raw.model {
        Some(ModelName::Lync2013) => lync::ENDPOINTS_PER_USER,
        None => 1.0,
    };
    let endpoints_per_user = raw.endpoints_per_user.unwrap_or(default_endpoints);
    if !(1.0..=16.0).contains(&endpoints_per_user) {
        cx.err(
            &p.key("endpoints_per_user"),
            "must be 1–16 (an average: 1.5 means half the users have two)",
        );
    }
    let rooms = match raw.model {
        Some(ModelName::Lync2013) => {
            if !raw.rooms.is_empty() {
                cx.err(
                    &p.key("rooms"),
                    "give either model = \"lync2013\" or [[population.rooms]], not both",
                );
            }
            lync::room_classes(raw.users)
        }
        None => {
            if raw.rooms.is_empty() {
                cx.err(&p, "needs room classes: [[population.rooms]] class/size/rooms_per_user, or model = \"lync2013\"");
            }
            let mut names = BTreeSet::new();
            let mut out = Vec::new();
            for (i, r) in raw.rooms.iter().enumerate() {
                let rp = p.key("rooms").index(i);
                let name = r.class.trim();
                if name.is_empty() {
                    cx.err(&rp.key("class"), "must not be empty");
                } else if !names.insert(name.to_string()) {
                    cx.err(&rp.key("class"), format!("class `{name}` is defined twice"));
                }
                if r.size < 2 {
                    cx.err(&rp.key("size"), "a room needs at least 2 members");
                } else if raw.users > 0 && r.size > raw.users {
                    cx.err(
                        &rp.key("size"),
                        format!(
                            "rooms of {} members cannot be filled by {} users",
                            r.size, raw.users
                        ),
                    );
                }
                if r.rooms_per_user == 0 {
                    cx.err(
                        &rp.key("rooms_per_user"),
                        "must be at least 1 (leave the class out instead)",
                    );
                }
                for (key, share) in [
                    ("auditorium_share", r.auditorium_share),
                    ("open_share", r.open_share),
                ] {
                    if !(0.0..=1.0).contains(&share) {
                        cx.err(&rp.key(key), format!("{share} is not a share: must be 0–1"));
                    }
                }
                out.push(RoomClass {
                    name: name.to_string(),
                    size: r.size,
                    rooms_per_user: r.rooms_per_user,
                    auditorium_share: r.auditorium_share,
                    open_share: r.open_share,
                });
            }
            // Each user must fit in `rooms_per_user` distinct rooms of the class.
            for (i, c) in out.iter().enumerate() {
                if c.size >= 2 && c.size <= raw.users && c.rooms_per_user > 0 {
                    let n = c.rooms(raw.users);
                    if n < c.rooms_per_user as u64 {
                        cx.err(
                            &p.key("rooms").index(i).key("rooms_per_user"),
                            format!("{} users × {} / {} members gives {n} rooms, fewer than the {} each user must be in", raw.users, c.rooms_per_user, c.size, c.rooms_per_user),
                        );
                    }
                }
            }
            out
        }
    };
    Population {
        users: raw.users,
        endpoints_per_user,
        rooms,
        seed,
    }
}

fn ops(cx: &mut Ctx, raw: &Scenario, rooms: &[RoomClass]) -> Vec<OpRate> {
    let b = FieldPath::root().key("behaviour");
    let level = raw.behaviour.level.0;
    if !level.is_finite() || level <= 0.0 || level > 100.0 {
        cx.err(
            &b.key("level"),
            format!(
                "{level} is not a level: use \"low\", \"medium\", \"high\" or a factor above 0"
            ),
        );
    }
    let mut ops = match raw.behaviour.model {
        Some(ModelName::Lync2013) => lync::ops(),
        None => Vec::new(),
    };
    // Model ops that name classes the population does not have are dropped, not errors:
    // a custom population may keep only some of the model's classes.
    ops.retain(|o| {
        o.room_class
            .as_ref()
            .is_none_or(|c| rooms.iter().any(|r| &r.name == c))
    });
    let model_ops = ops.len();
    for (i, r) in raw.behaviour.ops.iter().enumerate() {
        let op_path = b.key("ops").index(i);
        let Some(op) = OpKind::from_name(r.op.trim()) else {
            let names: Vec<_> = OpKind::ALL.iter().map(|k| k.name()).collect();
            cx.err(
                &op_path.key("op"),
                format!(
                    "unknown operation `{}`; expected one of {}",
                    r.op,
                    names.join(", ")
                ),
            );
            continue;
        };
        if !r.per_user_per_hour.is_finite() || r.per_user_per_hour < 0.0 {
            cx.err(&op_path.key("per_user_per_hour"), "must be a number ≥ 0");
        }
        if let Some(class) = &r.room_class {
            if !op.is_room_op() {
                cx.err(
                    &op_path.key("room_class"),
                    format!("`{}` does not act on a room", op.name()),
                );
            } else if !rooms.iter().any(|c| &c.name == class) {
                let names: Vec<_> = rooms.iter().map(|c| c.name.as_str()).collect();
                cx.err(
                    &op_path.key("room_class"),
                    format!(
                        "no room class `{class}`; the population has {}",
                        names.join(", ")
                    ),
                );
            }
        }
        let dup = ops
            .iter()
            .position(|o| o.op == op && o.room_class == r.room_class);
        match dup {
            Some(j) if j < model_ops => cx.err(
                &op_path.key("op"),
                format!(
                    "`{}` is already set by behaviour.model; remove the model or this entry",
                    op.name()
                ),
            ),
            Some(_) => cx.err(
                &op_path.key("op"),
                format!("`{}` with the same room_class is listed twice", op.name()),
            ),
            None => {}
        }
        ops.push(OpRate {
            op,
            per_user_per_hour: r.per_user_per_hour,
            room_class: r.room_class.clone(),
        });
    }
    if !ops.iter().any(|o| o.per_user_per_hour > 0.0) {
        cx.err(
            &b,
            "no operation with a rate above 0: add [[behaviour.ops]] or model = \"lync2013\"",
        );
    }
    for o in &mut ops {
        o.per_user_per_hour *= level;
    }
    ops
}
