//! `chatcap run`: the command-line face of the load generator.

use std::path::{Path, PathBuf};

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::execute;
use super::options::{RunError, RunOptions};
use super::shard::ShardId;
use crate::profile::Profile;
use crate::scenario::{dry_run_table, Scenario};
use crate::usage::UsageError;

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (see scenarios/README.md).
    pub scenario: PathBuf,
    /// Results folder (default: reports/<time>-<scenario>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Validate the scenario and print the rates it derives next to the Lync 2013 model's;
    /// start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress line (the summary is still printed).
    #[arg(long, short)]
    pub quiet: bool,
    /// The binary that serves the embedded target and runs shards (default: this one).
    #[arg(long, hide = true)]
    pub server_binary: Option<PathBuf>,
    /// Settings file for the embedded server (`chatcap serve --config`), e.g. to change
    /// limits or turn on a test hook.
    #[arg(long)]
    pub server_config: Option<PathBuf>,
    /// Split the load over this many generator processes (default: as many as the
    /// open-file limit requires).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Run only shard i of N (0-based; e.g. `--shard $JOB_COMPLETION_INDEX/8`), with
    /// `--attach` and `--population`; writes raw totals for `chatcap merge`.
    #[arg(long, requires_all = ["attach", "population"])]
    pub shard: Option<ShardId>,
    /// Start the load at this time, ms since the epoch (shards of one run share it).
    #[arg(long)]
    pub start_at: Option<u64>,
    /// The target's WebSocket URLs (ws://IP:PORT/ws, comma-separated: users are spread
    /// over them), instead of the scenario's target.
    #[arg(long, value_delimiter = ',')]
    pub attach: Vec<String>,
    /// With --attach wss://…: the CA (PEM) that signed the target's certificate.
    #[arg(long, value_name = "PEM", requires = "attach")]
    pub attach_ca: Option<PathBuf>,
    /// Simulated users file (written by the parent run as population.json).
    #[arg(long)]
    pub population: Option<PathBuf>,
    /// Hardware profile the servers this run starts are limited to (docs/PROFILES.md): a
    /// file, or a name in scenarios/profiles/. Several, comma-separated, run the scenario
    /// once per profile into <out>/<profile>/ and print them side by side.
    #[arg(long, value_delimiter = ',', conflicts_with = "shard")]
    pub profile: Vec<String>,
}

/// An SLO was missed (exit code 1, after the report is written).
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} SLOs failed (see {folder})")]
pub struct SloFailed {
    /// Failed objectives.
    pub failed: usize,
    /// All objectives.
    pub total: usize,
    /// The results folder.
    pub folder: String,
}

/// Run the command.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let plan = Scenario::load(&args.scenario).map_err(|e| UsageError(e.to_string()))?;
    let mut profiles = load_profiles(&args.profile, &args.scenario)?;
    if args.dry_run {
        println!("{}", dry_run_table(&plan));
        return Ok(());
    }
    let server_binary = match args.server_binary {
        Some(p) => p,
        None => std::env::current_exe()?,
    };
    let sweep = profiles.len() > 1;
    let mut opts = RunOptions {
        scenario_file: args.scenario.clone(),
        out: args.out,
        server_binary,
        quiet: args.quiet,
        shard: args.shard,
        start_at_ms: args.start_at,
        attach: args.attach,
        attach_ca: args.attach_ca,
        population: args.population,
        shards: args.shards,
        server_config: args.server_config,
        profile: None,
    };
    let is_shard = opts.shard.is_some();
    let interrupt = CancellationToken::new();
    let on_signal = interrupt.clone();
    tokio::spawn(async move {
        crate::stop_signal::wait_for_stop_signal().await;
        eprintln!("stopping: finishing the run and writing what was measured…");
        on_signal.cancel();
    });
    if sweep {
        return run_sweep(&plan, &opts, &profiles, interrupt).await;
    }
    opts.profile = profiles.pop();
    let (summary, folder) = execute::run(plan, opts, interrupt)
        .await
        .map_err(run_error)?;
    if is_shard {
        println!("shard results: {}", folder.display());
        return Ok(());
    }
    println!("{}", crate::report::render::markdown(&summary));
    println!("results: {}", folder.display());
    render_report(&folder);
    let failed = summary.slo.iter().filter(|s| !s.pass).count();
    if failed > 0 {
        return Err(SloFailed {
            failed,
            total: summary.slo.len(),
            folder: folder.display().to_string(),
        }
        .into());
    }
    Ok(())
}

/// A run error as the command reports it: what the build cannot do is a usage error.
fn run_error(e: RunError) -> anyhow::Error {
    match e {
        RunError::Unsupported(m) => anyhow::Error::new(UsageError(m)),
        other => anyhow::Error::new(other),
    }
}

/// The profiles `--profile` names, read and validated (a bad one is a usage error naming
/// file, line and field).
fn load_profiles(args: &[String], scenario: &Path) -> anyhow::Result<Vec<Profile>> {
    let mut profiles: Vec<Profile> = Vec::new();
    for arg in args {
        let file = Profile::find(arg, scenario).map_err(UsageError)?;
        let p = Profile::load(&file).map_err(|e| UsageError(e.to_string()))?;
        if profiles.iter().any(|q| q.name == p.name) {
            return Err(UsageError(format!(
                "{}: profile name {:?} given twice (each run's folder is named after it)",
                file.display(),
                p.name
            ))
            .into());
        }
        profiles.push(p);
    }
    Ok(profiles)
}

/// `--profile a,b,c`: one run per profile, then the table side by side.
async fn run_sweep(
    plan: &crate::scenario::RunPlan,
    opts: &RunOptions,
    profiles: &[Profile],
    interrupt: CancellationToken,
) -> anyhow::Result<()> {
    let base = opts
        .out
        .clone()
        .unwrap_or_else(|| execute::default_out(plan, chatcap_server::auth::unix_now()));
    let runs = super::sweep::sweep(plan, opts, profiles, &base, interrupt)
        .await
        .map_err(run_error)?;
    println!("{}", super::sweep::table(&runs));
    println!("results: {}", base.display());
    let failed: usize = runs
        .iter()
        .map(|(s, _)| s.slo.iter().filter(|r| !r.pass).count())
        .sum();
    if failed > 0 {
        return Err(SloFailed {
            failed,
            total: runs.iter().map(|(s, _)| s.slo.len()).sum(),
            folder: base.display().to_string(),
        }
        .into());
    }
    Ok(())
}

/// Options of `merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard result folders (each written by `chatcap run --shard i/N`).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Folder for the merged results.
    #[arg(long)]
    pub out: PathBuf,
    /// The scenario file (default: the one named in the first shard's summary.json).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
}

/// Merge shard folders into one report (exact histogram sums).
pub async fn merge(args: MergeArgs) -> anyhow::Result<()> {
    let scenario = match args.scenario {
        Some(p) => p,
        None => {
            let path = args.dirs[0].join("summary.json");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            let s: crate::report::model::Summary = serde_json::from_str(&text)
                .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            PathBuf::from(s.scenario_file)
        }
    };
    let plan = Scenario::load(&scenario).map_err(|e| UsageError(e.to_string()))?;
    let merged = super::shard::merge(&args.dirs).map_err(|e| UsageError(e.to_string()))?;
    let peak = merged.timeline.iter().map(|r| r.users).max().unwrap_or(0);
    let elapsed =
        std::time::Duration::from_secs_f64(merged.timeline.last().map(|r| r.t_s).unwrap_or(0.0))
            .min(plan.duration());
    let mut outcome = super::Outcome {
        collector: super::shard::merged_collector(&merged),
        peak_connections: peak,
        elapsed,
        ending: super::Ending::Completed,
        ledger: merged.ledger,
        resources: merged.resources,
        tails: merged.tails,
    };
    outcome.collector.total.lost += super::tail_losses(&outcome.ledger, &outcome.tails);
    let info = crate::report::RunInfo {
        plan: &plan,
        scenario_file: scenario.display().to_string(),
        started_unix: chatcap_server::auth::unix_now(),
        reconciliation: None,
        fd_limit: super::net::raise_fd_limit(),
        logs: args
            .dirs
            .iter()
            .map(|d| d.join("histograms.hlog"))
            .collect(),
        profile: None,
    };
    let summary = crate::report::summarise_run(&outcome, info);
    crate::report::write_folder(&args.out, &summary, &outcome)?;
    super::shard::merge_logs(&args.dirs, &args.out.join("histograms.hlog"))?;
    println!("{}", crate::report::render::markdown(&summary));
    println!("merged results: {}", args.out.display());
    render_report(&args.out);
    Ok(())
}

/// Write the folder's report.html; the run's results stand without it, so a failure is
/// said, not fatal.
fn render_report(folder: &std::path::Path) {
    match crate::report::output::write_folder_report(folder) {
        Ok(page) => println!("report: {}", page.display()),
        Err(e) => eprintln!("warning: report.html not written: {e}"),
    }
}
