//! The dry run: what a plan amounts to at its peak (rooms, posts, polls, presence, sign-ins,
//! deliveries per second), printed next to the Lync 2013 model's published figures scaled to
//! the plan's users. Pure arithmetic on a [`RunPlan`]; `chatcap run --dry-run` prints it.

use std::fmt::Write as _;
use std::time::Duration;

use super::lync;
use super::plan::{OpKind, RoomClass, RunPlan, Workload};

/// What one room class amounts to at peak.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassRates {
    /// Class name.
    pub name: String,
    /// Members per room.
    pub size: u32,
    /// Rooms: users × rooms_per_user / size, rounded up.
    pub rooms: u64,
    /// Posts per second in the class's rooms.
    pub posts_per_s: f64,
    /// Messages delivered per second: posts × (size − 1) × endpoints per user.
    pub deliveries_per_s: f64,
}

/// What a plan amounts to at its peak number of users.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedRates {
    /// Peak users.
    pub users: u32,
    /// Endpoints per user.
    pub endpoints_per_user: f64,
    /// Per room class.
    pub classes: Vec<ClassRates>,
    /// Posts per second, all classes.
    pub posts_per_s: f64,
    /// Participant-list polls per second.
    pub polls_per_s: f64,
    /// Participants returned per second: polls × min(25, room size).
    pub participants_polled_per_s: f64,
    /// Presence changes per second.
    pub presence_per_s: f64,
    /// Fastest sign-in rate of the load shape (users per second; infinite for a jump).
    pub sign_ins_per_s: f64,
    /// Deliveries per second, all classes.
    pub deliveries_per_s: f64,
    /// Every operation's total rate per second, in [`OpKind`] order.
    pub ops_per_s: Vec<(OpKind, f64)>,
}

/// Share of a user's rooms in each class (how ops without a room class spread).
fn class_weights(rooms: &[RoomClass]) -> Vec<f64> {
    let total: f64 = rooms.iter().map(|c| c.rooms_per_user as f64).sum();
    rooms
        .iter()
        .map(|c| {
            if total > 0.0 {
                c.rooms_per_user as f64 / total
            } else {
                0.0
            }
        })
        .collect()
}

/// Computes the plan's rates at its peak users.
pub fn derived_rates(plan: &RunPlan) -> DerivedRates {
    let users = plan.peak_users();
    let rooms = &plan.population.rooms;
    let endpoints = plan.population.endpoints_per_user;
    let weights = class_weights(rooms);
    let per_s = |per_user_per_hour: f64| per_user_per_hour * users as f64 / 3600.0;
    // Spreads a rate over the classes: all to the named class, or by membership.
    let spread = |rate: f64, class: &Option<String>| -> Vec<f64> {
        rooms
            .iter()
            .zip(&weights)
            .map(|(c, w)| match class {
                Some(name) if *name == c.name => rate,
                Some(_) => 0.0,
                None => rate * w,
            })
            .collect()
    };

    let mut posts = vec![0.0; rooms.len()];
    let mut polls_per_s = 0.0;
    let mut participants = 0.0;
    let mut ops_per_s: Vec<(OpKind, f64)> = Vec::new();
    for op in &plan.ops {
        let rate = per_s(op.per_user_per_hour);
        match ops_per_s.iter_mut().find(|(k, _)| *k == op.op) {
            Some((_, r)) => *r += rate,
            None => ops_per_s.push((op.op, rate)),
        }
        match op.op {
            OpKind::Post => {
                for (p, r) in posts.iter_mut().zip(spread(rate, &op.room_class)) {
                    *p += r;
                }
            }
            OpKind::PollParticipants => {
                polls_per_s += rate;
                for (c, r) in rooms.iter().zip(spread(rate, &op.room_class)) {
                    participants += r * c.size.min(lync::PARTICIPANTS_PER_POLL) as f64;
                }
            }
            _ => {}
        }
    }
    ops_per_s.sort_by_key(|(k, _)| *k);
    let rate_of = |k: OpKind| {
        ops_per_s
            .iter()
            .find(|(o, _)| *o == k)
            .map_or(0.0, |(_, r)| *r)
    };

    let classes: Vec<ClassRates> = rooms
        .iter()
        .zip(&posts)
        .map(|(c, &p)| ClassRates {
            name: c.name.clone(),
            size: c.size,
            rooms: c.rooms(users),
            posts_per_s: p,
            deliveries_per_s: p * (c.size.saturating_sub(1)) as f64 * endpoints,
        })
        .collect();

    let sign_ins_per_s = plan
        .phases
        .iter()
        .filter(|p| p.to > p.from)
        .map(|p| {
            if p.duration.is_zero() {
                f64::INFINITY
            } else {
                (p.to - p.from) as f64 / p.duration.as_secs_f64()
            }
        })
        .fold(0.0, f64::max);

    DerivedRates {
        users,
        endpoints_per_user: endpoints,
        posts_per_s: posts.iter().sum(),
        deliveries_per_s: classes.iter().map(|c| c.deliveries_per_s).sum(),
        classes,
        polls_per_s,
        participants_polled_per_s: participants,
        presence_per_s: rate_of(OpKind::Presence),
        sign_ins_per_s,
        ops_per_s,
    }
}

/// `x` with thousands separators and `decimals` decimals.
fn num(x: f64, decimals: usize) -> String {
    if x.is_infinite() {
        return "instant".to_string();
    }
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = s.split_once('.').map_or((s.as_str(), ""), |(i, f)| (i, f));
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if x < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// `1h 2m 3s` style.
fn human(d: Duration) -> String {
    let total = d.as_secs_f64();
    if total < 60.0 {
        return format!("{}s", num(total, if total.fract() == 0.0 { 0 } else { 1 }));
    }
    let s = total.round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    for (v, u) in [(h, "h"), (m, "m"), (s, "s")] {
        if v > 0 {
            let _ = write!(out, "{}{v}{u}", if out.is_empty() { "" } else { " " });
        }
    }
    out
}

/// The dry-run explanation: the plan's shape and its rates at peak, next to the Lync 2013
/// model's published figures scaled to the plan's peak users.
pub fn dry_run_table(plan: &RunPlan) -> String {
    let d = derived_rates(plan);
    let f = d.users as f64 / lync::USERS as f64;
    let mut out = String::new();
    let model = match &plan.workload {
        Workload::Open => "open model".to_string(),
        Workload::Closed { think_time } => {
            format!("closed model, think time {}", human(*think_time))
        }
    };
    let _ = writeln!(
        out,
        "{}: {} users at peak, {} endpoints per user, level {:.2}, {model}",
        plan.name,
        num(d.users as f64, 0),
        num(d.endpoints_per_user, 2),
        plan.level
    );
    let _ = writeln!(
        out,
        "load: {} phases, {} in all",
        plan.phases.len(),
        human(plan.duration())
    );
    for p in &plan.phases {
        let _ = writeln!(
            out,
            "  {:<16} {:>9} → {:<9} over {}",
            p.name,
            num(p.from as f64, 0),
            num(p.to as f64, 0),
            human(p.duration)
        );
    }
    let _ = writeln!(out);
    let head = format!(
        "Lync 2013 model × {:.3} ({} users)",
        f,
        num(d.users as f64, 0)
    );
    let _ = writeln!(out, "{:<32} {:>14}   {}", "at peak", "this plan", head);
    let mut row = |label: String, plan_v: String, reference: Option<String>| {
        let _ = writeln!(
            out,
            "{label:<32} {plan_v:>14}   {:>14}",
            reference.unwrap_or_else(|| "—".into())
        );
    };
    // A class compares with the model's only if it is the model's (same name and size).
    let model_class = |name: &str| {
        let c = d.classes.iter().find(|c| c.name == name)?;
        lync::CLASSES
            .iter()
            .find(|m| m.name == name && m.size.min(d.users) == c.size)
    };
    for c in &d.classes {
        let reference = model_class(&c.name).map(|m| num((m.rooms as f64 * f).ceil(), 0));
        row(
            format!("rooms {} ({} members)", c.name, num(c.size as f64, 0)),
            num(c.rooms as f64, 0),
            reference,
        );
    }
    for c in &d.classes {
        let reference = model_class(&c.name).map(|m| num(m.posts_per_s * f, 2));
        row(
            format!("posts/s {}", c.name),
            num(c.posts_per_s, 2),
            reference,
        );
    }
    row(
        "posts/s total".into(),
        num(d.posts_per_s, 2),
        Some(num(lync::published::POSTS_PER_S * f, 2)),
    );
    let polls_ref = lync::published::PARTICIPANTS_POLLED_PER_S / lync::PARTICIPANTS_PER_POLL as f64;
    row(
        "participant polls/s".into(),
        num(d.polls_per_s, 2),
        Some(num(polls_ref * f, 2)),
    );
    row(
        "participants polled/s".into(),
        num(d.participants_polled_per_s, 0),
        Some(num(lync::published::PARTICIPANTS_POLLED_PER_S * f, 0)),
    );
    row(
        "presence changes/s".into(),
        num(d.presence_per_s, 2),
        Some(num(lync::published::PRESENCE_PER_S * f, 2)),
    );
    row(
        "sign-ins/s (peak ramp)".into(),
        num(d.sign_ins_per_s, 2),
        Some(num(lync::published::SIGN_INS_PER_S * f, 2)),
    );
    row(
        "deliveries/s".into(),
        num(d.deliveries_per_s, 0),
        Some(format!(
            "≈{}",
            num(lync::published::DELIVERIES_PER_S * f, 0)
        )),
    );
    for (k, r) in &d.ops_per_s {
        if !matches!(
            k,
            OpKind::Post | OpKind::PollParticipants | OpKind::Presence
        ) {
            row(format!("{}/s", k.name()), num(*r, 2), None);
        }
    }
    if !plan.slos.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "SLOs: {}",
            plan.slos
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}
