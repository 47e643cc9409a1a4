//! Load shapes → phases. Every shape a file can name (ramp, hold, step, spike, soak) becomes
//! the one representation the runner knows: a list of [`Phase`]s, each moving the number of
//! connected users linearly from `from` to `to`. Shapes follow each other: each starts from
//! the users the previous one left connected (0 at the start).

use std::time::Duration;

use super::ctx::Ctx;
use super::plan::Phase;
use super::raw::{DurationValue, RateValue, RawShape};
use super::span::FieldPath;

fn phase(name: impl Into<String>, from: u32, to: u32, duration: Duration) -> Phase {
    Phase {
        name: name.into(),
        from,
        to,
        duration,
    }
}

/// Expands `shapes` for a population of `users`; problems go to `cx`.
pub(crate) fn expand(cx: &mut Ctx, shapes: &[RawShape], users: u32) -> Vec<Phase> {
    let load = FieldPath::root().key("load");
    let mut phases = Vec::new();
    let mut cur = 0u32;
    let problems_before = cx.problem_count();
    let too_many = |to: u64| format!("{to} users is more than population.users ({users})");
    for (i, shape) in shapes.iter().enumerate() {
        let at = load.index(i);
        match shape {
            RawShape::Ramp(r) => {
                let p = at.key("ramp");
                if r.to > users {
                    cx.err(&p.key("to"), too_many(r.to.into()));
                }
                let Some(d) = ramp_time(cx, &p, cur, r.to, r.over, r.rate, None) else {
                    continue;
                };
                if d.is_zero() {
                    cx.err(&p, "a ramp must take time (use a spike or a step to jump)");
                }
                if r.to == cur && r.rate.is_some() {
                    cx.err(
                        &p.key("to"),
                        format!("already {cur} users: nothing to ramp (use hold)"),
                    );
                }
                phases.push(phase("ramp", cur, r.to, d));
                cur = r.to;
            }
            RawShape::Hold(h) | RawShape::Soak(h) => {
                let (name, p) = match shape {
                    RawShape::Soak(_) => ("soak", at.key("soak")),
                    _ => ("hold", at.key("hold")),
                };
                if h.for_.0.is_zero() {
                    cx.err(&p.key("for"), "must be above 0");
                }
                phases.push(phase(name, cur, cur, h.for_.0));
            }
            RawShape::Step(s) => {
                let p = at.key("step");
                let top = cur as u64 + s.by as u64 * s.times as u64;
                if s.by == 0 {
                    cx.err(&p.key("by"), "must be at least 1");
                }
                if s.times == 0 {
                    cx.err(&p.key("times"), "must be at least 1");
                }
                if top > users as u64 {
                    cx.err(
                        &p.key("by"),
                        format!(
                            "{} steps of {} from {cur} reach {}",
                            s.times,
                            s.by,
                            too_many(top)
                        ),
                    );
                }
                if s.every.0.is_zero() {
                    cx.err(&p.key("every"), "must be above 0");
                }
                let to = cur.saturating_add(s.by);
                let Some(r) = ramp_time(cx, &p, cur, to, s.over, s.rate, Some(Duration::ZERO))
                else {
                    continue;
                };
                if r > s.every.0 {
                    let key = if s.rate.is_some() { "rate" } else { "over" };
                    cx.err(
                        &p.key(key),
                        format!(
                            "each step's ramp ({r:?}) must fit in `every` ({:?})",
                            s.every.0
                        ),
                    );
                    continue;
                }
                if top > users as u64 || s.by == 0 {
                    continue;
                }
                for n in 1..=s.times {
                    let to = cur + s.by;
                    phases.push(phase(format!("step {n} ramp"), cur, to, r));
                    if s.every.0 > r {
                        phases.push(phase(format!("step {n} hold"), to, to, s.every.0 - r));
                    }
                    cur = to;
                }
            }
            RawShape::Spike(s) => {
                let p = at.key("spike");
                if s.to > users {
                    cx.err(&p.key("to"), too_many(s.to.into()));
                }
                if s.to <= cur {
                    cx.err(
                        &p.key("to"),
                        format!("must be above the {cur} users already connected"),
                    );
                }
                if s.hold.0.is_zero() {
                    cx.err(&p.key("hold"), "must be above 0");
                }
                let back = s.back_over.unwrap_or(s.over).0;
                phases.push(phase("spike", cur, s.to, s.over.0));
                phases.push(phase("spike hold", s.to, s.to, s.hold.0));
                phases.push(phase("spike back", s.to, cur, back));
            }
        }
    }
    if shapes.is_empty() {
        cx.err(&load, "no load shape: add e.g. load = [{ ramp = { to = 100, over = \"30s\" } }, { hold = { for = \"1m\" } }]");
    } else if cx.problem_count() == problems_before && phases.iter().all(|p| p.from.max(p.to) == 0)
    {
        cx.err(
            &load,
            "the load never connects a user: start with a ramp, step or spike",
        );
    }
    phases
}

/// How long a move from `from` to `to` takes: `over`, or the distance at `rate`, or
/// `default`; `None` after recording a problem.
fn ramp_time(
    cx: &mut Ctx,
    p: &FieldPath,
    from: u32,
    to: u32,
    over: Option<DurationValue>,
    rate: Option<RateValue>,
    default: Option<Duration>,
) -> Option<Duration> {
    match (over, rate, default) {
        (Some(_), Some(_), _) => {
            cx.err(&p.key("rate"), "give `over` or `rate`, not both");
            None
        }
        (Some(o), None, _) => Some(o.0),
        (None, Some(r), _) => Some(Duration::from_secs_f64(from.abs_diff(to) as f64 / r.0)),
        (None, None, Some(d)) => Some(d),
        (None, None, None) => {
            cx.err(p, "needs `over` (a duration, e.g. \"30s\") or `rate` (users per second, e.g. \"10/s\")");
            None
        }
    }
}
