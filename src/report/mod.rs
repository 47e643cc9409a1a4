//! Results of a run: one model ([`model::Summary`]) and its renderings — the results
//! folder (`summary.json`, `summary.md`, `timeline.csv`, `resources.csv`, the
//! HdrHistogram interval log written during the run) and the console table.
//!
//! # Layout
//! - [`latency`], [`model`]: the summary structure and metric lookup for SLOs.
//! - [`hlog`], [`window`]: the interval logs read back; latency over the last phase.
//! - [`render`]: Markdown / console table and the CSV files.
//! - [`results`]: a results folder read back and checked.
//! - [`plot`], [`figures`], [`html`], [`output`]: the charts of a run and `report.html`.
//! - this file: building the summary from a run and writing the folder.

pub mod compare;
pub mod figures;
pub mod hlog;
pub mod html;
pub mod latency;
pub mod model;
pub mod output;
pub mod plot;
pub mod render;
pub mod results;
pub mod server_metrics;
pub mod window;

use std::collections::BTreeMap;
use std::path::Path;

use model::{Machine, SloResult, Summary, UsersSummary, SCHEMA};

use crate::metrics::resources::summarise;
use crate::runner::reconcile::Reconciliation;
use crate::runner::Outcome;
use crate::scenario::plan::{RunPlan, SloWindow};

/// Facts about the run that the measurements do not carry.
pub struct RunInfo<'a> {
    /// The plan.
    pub plan: &'a RunPlan,
    /// The scenario file.
    pub scenario_file: String,
    /// Start time, unix seconds.
    pub started_unix: i64,
    /// After-run check, when done.
    pub reconciliation: Option<Reconciliation>,
    /// The generator's descriptor limit.
    pub fd_limit: u64,
    /// The run's interval logs (its own, or its shards'), for latency over a window.
    pub logs: Vec<std::path::PathBuf>,
    /// The hardware profile, as applied, when the run had one.
    pub profile: Option<crate::profile::ProfileRecord>,
}

/// Build the summary of a run and judge its SLOs.
pub fn summarise_run(outcome: &Outcome, info: RunInfo<'_>) -> Summary {
    let total = &outcome.collector.total;
    let duration_s = outcome.elapsed.as_secs_f64();
    let (operations, delivery, error_rate) = model::operations(total, duration_s);
    let target_peak = outcome
        .collector
        .timeline
        .iter()
        .map(|r| r.target_users)
        .max()
        .unwrap_or(0);
    let mut resources = BTreeMap::new();
    let names: std::collections::BTreeSet<&str> = outcome
        .resources
        .iter()
        .map(|s| s.process.as_str())
        .collect();
    for name in names {
        if let Some(s) = summarise(&outcome.resources, name) {
            resources.insert(name.to_string(), s);
        }
    }
    let mut summary = Summary {
        schema: SCHEMA.to_string(),
        scenario: info.plan.name.clone(),
        scenario_file: info.scenario_file,
        started_at: rfc3339(info.started_unix),
        ending: serde_json::to_value(outcome.ending)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        duration_s,
        users: UsersSummary {
            peak: outcome.peak_connections,
            target_peak,
            population: u64::from(info.plan.population.users),
            disconnects: total.disconnects,
        },
        operations,
        delivery,
        errors: total.errors_by_kind.clone(),
        error_rate,
        reconciliation: info.reconciliation,
        resources,
        slo: Vec::new(),
        machine: machine(info.fd_limit),
        slo_window: None,
        profile: info.profile,
    };
    if info.plan.slo_window == SloWindow::LastPhase {
        let from = info.plan.slo_window_start().as_secs_f64();
        match window::summarise(&info.logs, from) {
            Ok(w) => summary.slo_window = Some(w),
            // Judged over the whole run instead; said, not hidden.
            Err(e) => eprintln!(
                "warning: latency over the last phase unavailable ({e}); SLOs judged over the whole run"
            ),
        }
    }
    summary.slo = info
        .plan
        .slos
        .iter()
        .map(|slo| {
            let value = summary.metric(&slo.metric);
            SloResult {
                text: slo.text.clone(),
                value,
                unit: metric_unit(&slo.metric).to_string(),
                pass: slo.holds(value),
            }
        })
        .collect();
    summary
}

/// The base unit of an SLO metric path.
pub fn metric_unit(metric: &str) -> &'static str {
    if crate::scenario::slo::is_latency(metric) {
        "us"
    } else if metric == "error_rate" || metric.ends_with(".cpu") || metric.ends_with(".cpu_max") {
        "fraction"
    } else if metric.ends_with(".rss") || metric.ends_with(".rss_per_user") {
        "bytes"
    } else {
        "count"
    }
}

/// Write the results folder (the interval log is already there).
pub fn write_folder(dir: &Path, summary: &Summary, outcome: &Outcome) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json + "\n")?;
    std::fs::write(dir.join("summary.md"), render::markdown(summary))?;
    render::write_csv(&dir.join("timeline.csv"), &outcome.collector.timeline)?;
    render::write_csv(&dir.join("resources.csv"), &outcome.resources)?;
    Ok(())
}

/// The machine this runs on.
pub fn machine(fd_limit: u64) -> Machine {
    let mut sys = sysinfo::System::new();
    sys.refresh_cpu_all();
    sys.refresh_memory();
    Machine {
        cpu_model: sys
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_string())
            .unwrap_or_default(),
        cores: sys.cpus().len() as u64,
        memory_bytes: sys.total_memory(),
        kernel: sysinfo::System::kernel_version().unwrap_or_default(),
        hostname: sysinfo::System::host_name().unwrap_or_default(),
        fd_limit,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for unix seconds (UTC).
pub fn rfc3339(unix: i64) -> String {
    let (y, m, d, h, mi, s, _) = chatcap_server::model::civil(unix.saturating_mul(1_000_000));
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
