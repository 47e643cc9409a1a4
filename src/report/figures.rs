//! The charts of one run, derived from its results folder: latency over time per operation,
//! users and throughput over time, latency against concurrent users, resource use against
//! users per process and per role, errors and loss over time, database size.

use std::collections::BTreeMap;

use super::plot::{Chart, Series};
use super::results::Results;

/// Processes drawn one by one at most; the busiest are kept, the legend says so.
const MAX_PROCESSES: usize = 8;

/// A process's role: its name without the trailing number (`chat3` → `chat`, `fe1` → `fe`,
/// `generator` → `generator`), which groups the processes of a topology's usual names.
pub fn role(process: &str) -> &str {
    let r = process.trim_end_matches(|c: char| c.is_ascii_digit());
    let r = r.trim_end_matches(['-', '_']);
    if r.is_empty() {
        process
    } else {
        r
    }
}

fn series(name: &str, points: Vec<(f64, f64)>) -> Series {
    Series {
        name: name.to_string(),
        points,
        dashed: false,
    }
}

fn chart(id: &str, title: &str, x: &str, y: &str, log_y: bool, series: Vec<Series>) -> Chart {
    Chart {
        id: id.to_string(),
        title: title.to_string(),
        x_label: x.to_string(),
        y_label: y.to_string(),
        log_y,
        series,
    }
}

const SECONDS: &str = "seconds since the load started";
const USERS: &str = "connections signed in";

/// Every chart of a run, in reading order.
pub fn charts(r: &Results) -> Vec<Chart> {
    let mut out = vec![users(r), throughput(r)];
    out.extend(latency_over_time(r));
    out.push(latency_vs_users(r));
    out.extend(resources(r));
    out.push(errors(r));
    if r.resources.iter().any(|s| s.db_bytes > 0) {
        out.push(database(r));
    }
    out.extend(server(r));
    out
}

/// The servers' own metrics (scraped from `/metrics` during the run), one chart per panel.
fn server(r: &Results) -> Vec<Chart> {
    super::server_metrics::panels(&r.server_metrics)
        .into_iter()
        .map(|p| {
            let slug: String = p
                .title
                .split(" (")
                .next()
                .unwrap_or(p.title)
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let lines = p
                .series
                .into_iter()
                .map(|s| {
                    let name = if s.labels.is_empty() {
                        s.process
                    } else {
                        format!("{} {}", s.process, s.labels)
                    };
                    series(&name, s.points)
                })
                .collect();
            chart(
                &format!("server-{slug}"),
                &format!("Server: {}", p.title),
                SECONDS,
                p.y_label,
                false,
                lines,
            )
        })
        .collect()
}

fn timeline(
    r: &Results,
    f: impl Fn(&crate::metrics::collector::TimelineRow) -> f64,
) -> Vec<(f64, f64)> {
    r.timeline.iter().map(|row| (row.t_s, f(row))).collect()
}

fn users(r: &Results) -> Chart {
    chart(
        "users",
        "Connections over time",
        SECONDS,
        "connections",
        false,
        vec![
            series("signed in", timeline(r, |t| t.users as f64)),
            Series {
                dashed: true,
                ..series(
                    "asked by the load shape",
                    timeline(r, |t| t.target_users as f64),
                )
            },
        ],
    )
}

fn throughput(r: &Results) -> Chart {
    chart(
        "throughput",
        "Throughput over time",
        SECONDS,
        "per second",
        false,
        vec![
            series("requests", timeline(r, |t| t.requests as f64)),
            series("posts acknowledged", timeline(r, |t| t.posts as f64)),
            series("deliveries", timeline(r, |t| t.deliveries as f64)),
        ],
    )
}

fn quantile_series(
    seconds: &BTreeMap<u64, hdrhistogram::Histogram<u64>>,
    q: Option<f64>,
) -> Vec<(f64, f64)> {
    seconds
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(s, h)| {
            let us = match q {
                Some(q) => h.value_at_quantile(q),
                None => h.max(),
            };
            (*s as f64, us as f64 / 1000.0)
        })
        .collect()
}

fn operations(r: &Results) -> Vec<String> {
    r.latency
        .keys()
        .filter_map(|t| t.strip_suffix(".response"))
        .map(str::to_string)
        .collect()
}

fn latency_over_time(r: &Results) -> Vec<Chart> {
    let mut out = Vec::new();
    for op in operations(r) {
        let mut lines = Vec::new();
        for (kind, dashed) in [("response", false), ("service", true)] {
            let Some(seconds) = r.latency.get(&format!("{op}.{kind}")) else {
                continue;
            };
            if op == "delivery" && kind == "service" {
                continue;
            }
            for (name, q) in [("p50", Some(0.5)), ("p99", Some(0.99)), ("max", None)] {
                lines.push(Series {
                    name: format!("{kind} {name}"),
                    points: quantile_series(seconds, q),
                    dashed,
                });
            }
        }
        out.push(chart(
            &format!("latency-{op}"),
            &format!("{op}: latency over time"),
            SECONDS,
            "ms (log)",
            true,
            lines,
        ));
    }
    out
}

/// Connections signed in at second `s` of the load (the timeline row closest to it).
fn users_at(r: &Results, s: f64) -> Option<f64> {
    r.timeline
        .iter()
        .min_by(|a, b| (a.t_s - s).abs().total_cmp(&(b.t_s - s).abs()))
        .map(|row| row.users as f64)
}

fn by_users(mut points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

fn latency_vs_users(r: &Results) -> Chart {
    let lines = operations(r)
        .into_iter()
        .filter_map(|op| {
            let seconds = r.latency.get(&format!("{op}.response"))?;
            let points = quantile_series(seconds, Some(0.99))
                .into_iter()
                // An interval starting at s ends at s + 1, where the timeline row is.
                .filter_map(|(s, ms)| Some((users_at(r, s + 1.0)?, ms)))
                .collect();
            Some(series(&format!("{op} p99"), by_users(points)))
        })
        .collect();
    chart(
        "latency-vs-users",
        "Latency (p99 per second) against concurrent users",
        USERS,
        "ms (log)",
        true,
        lines,
    )
}

type Measure = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crate::metrics::resources::Sample) -> f64,
);

const MEASURES: [Measure; 3] = [
    ("cpu", "CPU", "% of one core", |s| s.cpu_pct),
    ("memory", "Resident memory", "MiB", |s| {
        s.rss_bytes as f64 / 1_048_576.0
    }),
    ("fds", "Open descriptors", "descriptors", |s| s.fds as f64),
];

fn resources(r: &Results) -> Vec<Chart> {
    let mut out = Vec::new();
    for (id, what, unit, value) in MEASURES {
        // name → (second → value), per process and summed per role.
        let mut per_process: BTreeMap<&str, BTreeMap<u64, f64>> = BTreeMap::new();
        let mut per_role: BTreeMap<&str, BTreeMap<u64, f64>> = BTreeMap::new();
        for s in &r.resources {
            let second = s.t_s.round() as u64;
            per_process
                .entry(&s.process)
                .or_default()
                .insert(second, value(s));
            *per_role
                .entry(role(&s.process))
                .or_default()
                .entry(second)
                .or_default() += value(s);
        }
        let to_users = |m: &BTreeMap<u64, f64>| {
            by_users(
                m.iter()
                    .filter_map(|(s, v)| Some((users_at(r, *s as f64)?, *v)))
                    .collect(),
            )
        };
        let mut busiest: Vec<(&str, f64)> = per_process
            .iter()
            .map(|(p, m)| (*p, m.values().copied().fold(0.0, f64::max)))
            .collect();
        busiest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let shown = busiest.len().min(MAX_PROCESSES);
        let mut kept: Vec<&str> = busiest[..shown].iter().map(|(p, _)| *p).collect();
        kept.sort();
        let title = if shown < busiest.len() {
            format!(
                "{what} against users, per process ({shown} busiest of {})",
                busiest.len()
            )
        } else {
            format!("{what} against users, per process")
        };
        out.push(chart(
            &format!("{id}-process"),
            &title,
            USERS,
            unit,
            false,
            kept.iter()
                .map(|p| series(p, to_users(&per_process[p])))
                .collect(),
        ));
        out.push(chart(
            &format!("{id}-role"),
            &format!("{what} against users, per role (processes added up)"),
            USERS,
            unit,
            false,
            per_role
                .iter()
                .map(|(role, m)| series(role, to_users(m)))
                .collect(),
        ));
    }
    out
}

fn errors(r: &Results) -> Chart {
    chart(
        "errors",
        "Errors and loss over time",
        SECONDS,
        "per second",
        false,
        vec![
            series(
                "failed or timed-out requests",
                timeline(r, |t| t.errors as f64),
            ),
            series("deliveries lost", timeline(r, |t| t.lost as f64)),
            series(
                "deliveries duplicated",
                timeline(r, |t| t.duplicated as f64),
            ),
        ],
    )
}

fn database(r: &Results) -> Chart {
    let mut per_process: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for s in r.resources.iter().filter(|s| s.db_bytes > 0) {
        per_process
            .entry(&s.process)
            .or_default()
            .push((s.t_s, s.db_bytes as f64 / 1_048_576.0));
    }
    chart(
        "database",
        "Database size over time",
        SECONDS,
        "MiB",
        false,
        per_process
            .into_iter()
            .map(|(p, pts)| series(p, pts))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::role;

    #[test]
    fn roles_group_numbered_processes() {
        assert_eq!(role("chat3"), "chat");
        assert_eq!(role("fe12"), "fe");
        assert_eq!(role("generator"), "generator");
        assert_eq!(role("shard-2"), "shard");
        assert_eq!(role("7"), "7");
    }
}
