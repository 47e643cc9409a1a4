//! What bounded a search, read from its first failing step: the failed objective that
//! missed by the most (a latency objective, errors, loss, CPU, memory), and the resource
//! that ran out if one did (a server process's CPU at its limit, memory at the profile's
//! limit, open files at the process limit, connections not all signed in). Also the knee of
//! latency against users. Pure functions of [`Step`]s.

use serde::{Deserialize, Serialize};

use super::step::{Step, Verdict};

/// A resource counts as exhausted at this share of its limit.
const NEAR: f64 = 0.9;

/// What bound the supported users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bound {
    /// `latency`, `errors`, `loss`, `cpu`, `memory`, `open_files`, `connections`,
    /// `objective` (another objective), `run_error`, or `none` (nothing failed).
    pub kind: String,
    /// The objective that failed by the most, as written.
    pub slo: Option<String>,
    /// One sentence for people.
    pub detail: String,
    /// Every objective that failed at the first failing step.
    pub failed: Vec<String>,
}

/// The kind of bound an objective's metric stands for.
pub fn slo_kind(metric: &str) -> &'static str {
    let last = metric.rsplit('.').next().unwrap_or(metric);
    if crate::scenario::slo::is_latency(metric) {
        "latency"
    } else if metric == "error_rate" || last == "errors" {
        "errors"
    } else if metric.starts_with("delivery.") || metric.starts_with("reconcile.") {
        "loss"
    } else if last == "cpu" || last == "cpu_max" || last == "cpu_us_per_request" {
        "cpu"
    } else if last == "rss" || last == "rss_per_user" {
        "memory"
    } else {
        "objective"
    }
}

/// How far a failed objective missed: measured ÷ threshold for upper bounds (∞ for a
/// threshold of 0), threshold ÷ measured for lower bounds.
fn miss(text: &str, value: Option<f64>) -> f64 {
    let Some((metric, rule)) = text.split_once(' ') else {
        return 1.0;
    };
    let (Ok(slo), Some(v)) = (crate::scenario::slo::parse(metric, rule), value) else {
        return 1.0;
    };
    let lower = rule.trim_start().starts_with('>');
    let (a, b) = if lower {
        (slo.threshold, v)
    } else {
        (v, slo.threshold)
    };
    if b > 0.0 {
        a / b
    } else {
        f64::INFINITY
    }
}

/// The bound read from `fail`, the lowest failing step (`None`: nothing failed).
pub fn bound(fail: Option<&Step>) -> Bound {
    let Some(step) = fail else {
        return Bound {
            kind: "none".into(),
            slo: None,
            detail: "no step failed: the bound is above the largest step tried".into(),
            failed: Vec::new(),
        };
    };
    if step.verdict == Verdict::Error {
        return Bound {
            kind: "run_error".into(),
            slo: None,
            detail: format!(
                "the run at {} users did not finish: {}",
                step.users,
                step.error.as_deref().unwrap_or("no results")
            ),
            failed: Vec::new(),
        };
    }
    let worst = step
        .failed
        .iter()
        .max_by(|a, b| miss(&a.text, a.value).total_cmp(&miss(&b.text, b.value)));
    let failed: Vec<String> = step.failed.iter().map(|f| f.text.clone()).collect();
    let slo = worst.map(|w| w.text.clone());
    let slo_kind = slo
        .as_deref()
        .map(|t| slo_kind(t.split(' ').next().unwrap_or(t)))
        .unwrap_or("objective");
    let (kind, detail) = match resource(step) {
        Some((kind, why)) => (kind, why),
        None => (
            slo_kind,
            format!(
                "at {} users {} failed",
                step.users,
                slo.as_deref().unwrap_or("an objective")
            ),
        ),
    };
    let detail = match (&slo, kind == slo_kind) {
        (Some(s), false) => format!("{detail}; {s} failed"),
        _ => detail,
    };
    Bound {
        kind: kind.into(),
        slo,
        detail,
        failed,
    }
}

/// A resource the step ran out of, with the sentence saying so.
fn resource(step: &Step) -> Option<(&'static str, String)> {
    let cpus = step.server_cpus();
    let at = step.users;
    for (name, p) in step.servers() {
        if cpus > 0.0 && p.cpu_cores >= NEAR * cpus {
            return Some((
                "cpu",
                format!(
                    "at {at} users {name} used {:.0}% of the {cpus} CPUs the servers had",
                    100.0 * p.cpu_cores / cpus
                ),
            ));
        }
        if let Some(limit) = step.memory_limit {
            if p.rss_bytes as f64 >= NEAR * limit as f64 {
                return Some((
                    "memory",
                    format!(
                        "at {at} users {name} reached {} of its {} memory limit",
                        crate::profile::record::size(p.rss_bytes),
                        crate::profile::record::size(limit)
                    ),
                ));
            }
        }
    }
    // The generator's own descriptors are no bound: it splits itself into shards before
    // one process reaches its limit, and connections it could not open show below.
    for (name, p) in step.servers() {
        if step.fd_limit > 0 && p.fds as f64 >= NEAR * step.fd_limit as f64 {
            return Some((
                "open_files",
                format!(
                    "at {at} users {name} held {} open files of its limit of {}",
                    p.fds, step.fd_limit
                ),
            ));
        }
    }
    if step.peak_connections < step.target_connections {
        return Some((
            "connections",
            format!(
                "at {at} users only {} of {} connections signed in",
                step.peak_connections, step.target_connections
            ),
        ));
    }
    None
}

/// Where p99 latency starts rising faster than linearly with users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    /// The operation whose p99 is read.
    pub operation: String,
    /// Users at the knee: the last step before the slope at least doubles.
    pub users: u32,
    /// p99 there, µs.
    pub p99_us: u64,
}

/// The knee of `operation`'s p99 against users over `steps` (any verdict; needs three
/// steps): the first step after which the slope to the next step is more than twice the
/// slope over the steps before it (and rises by more than 1 ms).
pub fn knee(steps: &[Step], operation: &str) -> Option<Knee> {
    let mut pts: Vec<(u32, u64)> = steps
        .iter()
        .filter(|s| matches!(s.verdict, Verdict::Pass | Verdict::Fail))
        .filter_map(|s| s.p99_us.get(operation).map(|p| (s.users, *p)))
        .collect();
    pts.sort();
    pts.dedup_by_key(|p| p.0);
    if pts.len() < 3 {
        return None;
    }
    let slope = |a: (u32, u64), b: (u32, u64)| (b.1 as f64 - a.1 as f64) / (b.0 - a.0) as f64;
    for i in 1..pts.len() - 1 {
        let before = slope(pts[0], pts[i]).max(0.0);
        let after = slope(pts[i], pts[i + 1]);
        let rise = pts[i + 1].1 as f64 - pts[i].1 as f64;
        if after > 2.0 * before && rise > 1_000.0 {
            return Some(Knee {
                operation: operation.into(),
                users: pts[i].0,
                p99_us: pts[i].1,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::step::{FailedSlo, ProcessFigures};

    fn step(users: u32, p99_ms: u64, failed: &[(&str, f64)]) -> Step {
        let mut s = Step::error(users, String::new(), Verdict::Pass, String::new());
        s.error = None;
        s.cores = 2;
        s.fd_limit = 20_000;
        s.p99_us.insert("post_ack".into(), p99_ms * 1000);
        s.processes.insert(
            "server".into(),
            ProcessFigures {
                cpu_cores: 0.5,
                rss_bytes: 1 << 20,
                fds: 100,
            },
        );
        if !failed.is_empty() {
            s.verdict = Verdict::Fail;
        }
        s.failed = failed
            .iter()
            .map(|(t, v)| FailedSlo {
                text: t.to_string(),
                value: Some(*v),
            })
            .collect();
        s
    }

    #[test]
    fn the_worst_miss_names_the_bound() {
        let s = step(
            400,
            80,
            &[
                ("post_ack.p99 < 50ms", 80_000.0),
                ("delivery.p99 < 250ms", 260_000.0),
            ],
        );
        let b = bound(Some(&s));
        assert_eq!(b.kind, "latency");
        assert_eq!(b.slo.as_deref(), Some("post_ack.p99 < 50ms"));
        assert_eq!(b.failed.len(), 2);
        let lossy = step(
            400,
            10,
            &[("delivery.lost == 0", 3.0), ("users.peak < 300", 400.0)],
        );
        assert_eq!(bound(Some(&lossy)).kind, "loss");
        assert_eq!(bound(None).kind, "none");
    }

    #[test]
    fn a_saturated_server_is_a_cpu_bound() {
        let mut s = step(400, 80, &[("post_ack.p99 < 50ms", 80_000.0)]);
        s.processes.get_mut("server").unwrap().cpu_cores = 1.95;
        let b = bound(Some(&s));
        assert_eq!(b.kind, "cpu", "{b:?}");
        assert!(
            b.detail.contains("post_ack.p99 < 50ms failed"),
            "{}",
            b.detail
        );
    }

    #[test]
    fn open_files_bind_a_server_not_the_generator() {
        let mut s = step(12_000, 80, &[("post_ack.p99 < 50ms", 80_000.0)]);
        let figures = |fds| ProcessFigures {
            cpu_cores: 0.3,
            rss_bytes: 1 << 20,
            fds,
        };
        s.processes.insert("generator".into(), figures(18_015));
        assert_eq!(bound(Some(&s)).kind, "latency");
        s.processes.insert("frontend-1".into(), figures(19_500));
        let b = bound(Some(&s));
        assert_eq!(b.kind, "open_files", "{b:?}");
        assert!(b.detail.contains("frontend-1 held 19500"), "{}", b.detail);
    }

    #[test]
    fn the_knee_is_where_the_slope_doubles() {
        let steps = [
            step(100, 2, &[]),
            step(200, 3, &[]),
            step(300, 4, &[]),
            step(400, 20, &[]),
        ];
        let k = knee(&steps, "post_ack").expect("a knee");
        assert_eq!((k.users, k.p99_us), (300, 4_000));
        assert!(knee(&steps[..2], "post_ack").is_none());
        assert!(knee(&steps[..3], "post_ack").is_none());
    }
}
