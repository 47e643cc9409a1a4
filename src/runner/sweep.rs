//! A profile sweep (`chatcap run SCENARIO --profile a,b,c`): the scenario run once per
//! hardware profile, one after another, into sibling folders `<out>/<profile>/`, and their
//! key figures side by side (printed, and written to `<out>/profiles.md`). Ctrl-C ends the
//! run in progress (its folder is written) and starts no further one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::execute;
use super::options::{RunError, RunOptions};
use crate::profile::record::{size, Method};
use crate::profile::Profile;
use crate::report::model::Summary;
use crate::scenario::plan::RunPlan;

/// The file the side-by-side table is written to, in the sweep's folder.
pub const TABLE_FILE: &str = "profiles.md";

/// Run `plan` once per profile, each into `base/<profile name>/`; the summaries and
/// folders of the runs done, in profile order.
pub async fn sweep(
    plan: &RunPlan,
    opts: &RunOptions,
    profiles: &[Profile],
    base: &Path,
    interrupt: CancellationToken,
) -> Result<Vec<(Summary, PathBuf)>, RunError> {
    let mut runs = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        if interrupt.is_cancelled() {
            break;
        }
        if !opts.quiet {
            eprintln!(
                "profile {}/{}: {} ({})",
                i + 1,
                profiles.len(),
                p.name,
                p.description
            );
        }
        let mut o = opts.clone();
        o.profile = Some(p.clone());
        o.out = Some(base.join(&p.name));
        runs.push(execute::run(plan.clone(), o, interrupt.clone()).await?);
    }
    let table = table(&runs);
    std::fs::write(base.join(TABLE_FILE), &table).map_err(|source| RunError::Write {
        path: base.display().to_string(),
        source,
    })?;
    Ok(runs)
}

/// One row of the table: a label and a cell per run.
type Row = (&'static str, fn(&Summary) -> String);

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// A limit's cell: its value as asked, marked when it was not applied.
fn limit(s: &Summary, name: &str) -> String {
    let Some(p) = &s.profile else {
        return "-".into();
    };
    match p.limits.iter().find(|l| l.limit == name) {
        Some(l) if l.how == Method::NotApplied => format!("{} (NOT APPLIED)", l.asked),
        Some(l) => format!("{} ({})", l.asked, l.how.label()),
        None => "-".into(),
    }
}

/// Resources summed over the server processes (every process but the generators).
fn servers(s: &Summary, f: fn(&crate::metrics::resources::ProcessSummary) -> f64) -> f64 {
    s.resources
        .iter()
        .filter(|(name, _)| !name.starts_with("generator"))
        .map(|(_, r)| f(r))
        .sum()
}

const ROWS: &[Row] = &[
    ("cpus", |s| limit(s, "cpus")),
    ("cpu quota", |s| limit(s, "cpu_quota")),
    ("memory", |s| limit(s, "memory")),
    ("worker threads", |s| limit(s, "worker_threads")),
    ("ending", |s| s.ending.clone()),
    ("peak connections", |s| s.users.peak.to_string()),
    ("posts acked/s", |s| {
        let rate = s.operations.get("post_ack").map_or(0.0, |o| o.rate_per_s);
        format!("{rate:.1}")
    }),
    ("post_ack p50 ms", |s| {
        s.operations
            .get("post_ack")
            .map_or("-".into(), |o| ms(o.response.p50_us))
    }),
    ("post_ack p99 ms", |s| {
        s.operations
            .get("post_ack")
            .map_or("-".into(), |o| ms(o.response.p99_us))
    }),
    ("delivery p99 ms", |s| {
        s.operations
            .get("delivery")
            .map_or("-".into(), |o| ms(o.response.p99_us))
    }),
    ("error rate %", |s| format!("{:.4}", s.error_rate * 100.0)),
    ("servers CPU avg %", |s| {
        format!("{:.1}", servers(s, |r| r.cpu_avg_pct))
    }),
    ("servers CPU max %", |s| {
        format!("{:.1}", servers(s, |r| r.cpu_max_pct))
    }),
    ("servers RSS max", |s| {
        size(servers(s, |r| r.rss_max_bytes as f64) as u64)
    }),
    ("SLOs met", |s| {
        let met = s.slo.iter().filter(|r| r.pass).count();
        format!("{met}/{}", s.slo.len())
    }),
];

/// The runs' key figures side by side, as Markdown: a column per profile.
pub fn table(runs: &[(Summary, PathBuf)]) -> String {
    let mut out = String::new();
    let name = |s: &Summary| s.profile.as_ref().map_or("-".into(), |p| p.name.clone());
    let header: Vec<String> = runs.iter().map(|(s, _)| name(s)).collect();
    let scenario = runs.first().map_or("", |(s, _)| s.scenario.as_str());
    let _ = writeln!(out, "# chatcap profile sweep: {scenario}\n");
    let _ = writeln!(out, "| | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(runs.len()));
    for (label, cell) in ROWS {
        let cells: Vec<String> = runs.iter().map(|(s, _)| cell(s)).collect();
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    }
    let _ = writeln!(out);
    for (s, folder) in runs {
        let _ = writeln!(out, "- {}: {}", name(s), folder.display());
    }
    let missed: Vec<String> = runs
        .iter()
        .filter_map(|(s, _)| s.profile.as_ref())
        .filter(|p| p.missed().next().is_some())
        .map(|p| p.name.clone())
        .collect();
    if !missed.is_empty() {
        let _ = writeln!(
            out,
            "\n**Some limits were not applied** (profiles {}): see each run's summary.md.",
            missed.join(", ")
        );
    }
    out
}
