//! `chatcap capacity SCENARIO …` and `chatcap capacity model RESULTS…`: the command-line
//! face of the search. Each step is a `chatcap run` child process on a scaled copy of the
//! scenario (the same code path as any run, its own results folder); this module writes
//! the copies, runs and stops the children, reports progress and writes the summary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use super::model::{self, CapacityFile, SearchResult};
use super::scale::{self, Overrides};
use super::search::{Mode, Search, Spec, Stop};
use super::step::{Step, Verdict};
use crate::report::results::Results;
use crate::scenario::Scenario;
use crate::usage::UsageError;

/// Options of `capacity`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CapacityArgs {
    /// `model`: build a capacity model from existing results folders.
    #[command(subcommand)]
    pub command: Option<CapacityCommand>,
    /// The scenario to search with (scaled to each step's users).
    #[arg(required = true)]
    pub scenario: Option<PathBuf>,
    /// Hardware profile the servers are limited to (docs/PROFILES.md).
    #[arg(long)]
    pub profile: Option<String>,
    /// `stepped` (start, start+step, … to the first failure) or `feedback` (climb while
    /// healthy, then bisect to the tolerance).
    #[arg(long, value_enum, default_value_t = Mode::Stepped)]
    pub mode: Mode,
    /// Folder of the search (default: reports/<time>-capacity-<scenario>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Users of the first step (default: a tenth of the scenario's users).
    #[arg(long)]
    pub start: Option<u32>,
    /// Users added after a passing step (default: the start).
    #[arg(long)]
    pub step: Option<u32>,
    /// Never try more users than this (default: 1,000,000).
    #[arg(long, default_value_t = 1_000_000)]
    pub max: u32,
    /// Feedback mode: stop when the last pass and the first failure are this close
    /// (share of the failure: "5%" or 0.05).
    #[arg(long, default_value = "5%", value_parser = parse_share)]
    pub tolerance: f64,
    /// Run the whole search this many times (confidence: each result, median, spread).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeats: u32,
    /// Every hold of a step lasts this long (e.g. "30s"; default: as the scenario says).
    #[arg(long, value_parser = crate::scenario::raw::parse_duration)]
    pub hold: Option<Duration>,
    /// Every ramp signs users in at this rate (e.g. "100/s"; default: as the scenario says).
    #[arg(long, value_parser = crate::scenario::raw::parse_rate)]
    pub ramp_rate: Option<f64>,
    /// Judge objectives from this long after the hold starts (`slo_settle`).
    #[arg(long, value_parser = crate::scenario::raw::parse_duration)]
    pub settle: Option<Duration>,
    /// Settings file for the embedded server of every step.
    #[arg(long)]
    pub server_config: Option<PathBuf>,
    /// The binary that runs the steps (default: this one).
    #[arg(long, hide = true)]
    pub binary: Option<PathBuf>,
}

/// `capacity` subcommands.
#[derive(Debug, Subcommand)]
pub enum CapacityCommand {
    /// A capacity model from results folders of runs of one scenario at several user
    /// counts (each folder is one step; the highest passing one is the supported users).
    Model {
        /// Results folders (written by `chatcap run`).
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// Folder for capacity.json, capacity.md and capacity.html.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// "5%" → 0.05; "0.05" → 0.05.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a share: write e.g. \"5%\" or 0.05"))?;
    if !(0.0..1.0).contains(&v) {
        return Err(format!("`{s}`: must be at least 0% and below 100%"));
    }
    Ok(v)
}

/// `chatcap capacity`.
pub async fn run(args: CapacityArgs) -> anyhow::Result<()> {
    if let Some(CapacityCommand::Model { results, out }) = args.command {
        return model_from(&results, out.as_deref());
    }
    let Some(scenario) = args.scenario.clone() else {
        return Err(UsageError("a scenario file is required".into()).into());
    };
    let plan = Scenario::load(&scenario).map_err(|e| UsageError(e.to_string()))?;
    let text = std::fs::read_to_string(&scenario)
        .map_err(|e| UsageError(format!("{}: {e}", scenario.display())))?;
    let profile = match &args.profile {
        Some(p) => {
            let file = crate::profile::Profile::find(p, &scenario).map_err(UsageError)?;
            crate::profile::Profile::load(&file).map_err(|e| UsageError(e.to_string()))?;
            Some(file)
        }
        None => None,
    };
    let users = plan.population.users;
    let start = args.start.unwrap_or((users / 10).max(1));
    if start == 0 || args.step == Some(0) {
        return Err(UsageError("--start and --step must be at least 1".into()).into());
    }
    if start > args.max {
        return Err(UsageError(format!("--start {start} is above --max {}", args.max)).into());
    }
    let overrides = Overrides {
        hold: args.hold,
        ramp_rate: args.ramp_rate,
        settle: args.settle,
    };
    // The scaled copy must be a valid scenario before anything starts.
    let first = scale::scaled(&text, &scenario, start, &overrides)
        .map_err(|e| UsageError(e.to_string()))?;
    Scenario::parse(&first, &scenario).map_err(|e| {
        UsageError(format!(
            "the scenario scaled to {start} users is not valid: {e}"
        ))
    })?;
    let now = chatcap_server::auth::unix_now();
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "{}-capacity-{}",
            crate::report::rfc3339(now)
                .replace(['-', ':'], "")
                .replace('T', "-")
                .trim_end_matches('Z'),
            plan.name
        ))
    });
    std::fs::create_dir_all(&out)
        .map_err(|e| UsageError(format!("cannot create {}: {e}", out.display())))?;
    let spec = Spec {
        mode: args.mode,
        start,
        step: args.step.unwrap_or(start),
        max: args.max,
        tolerance: args.tolerance,
    };
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        crate::stop_signal::wait_for_stop_signal().await;
        eprintln!("stopping: ending the current step and writing what was found…");
        on_signal.cancel();
    });
    let runner = StepRunner {
        binary: match &args.binary {
            Some(b) => b.clone(),
            None => std::env::current_exe()?,
        },
        scenario: scenario.clone(),
        text,
        overrides,
        profile,
        server_config: args.server_config.clone(),
        stop: stop.clone(),
    };
    let mut searches = Vec::new();
    for k in 1..=args.repeats {
        let dir = if args.repeats == 1 {
            out.clone()
        } else {
            out.join(format!("search-{k}"))
        };
        let label = format!("search {k}/{}", args.repeats);
        searches.push(one_search(&runner, spec, &dir, &label).await?);
        if stop.is_cancelled() {
            break;
        }
    }
    let file = model::build(
        plan.name.clone(),
        scenario.display().to_string(),
        Some(args.mode),
        (args.mode == Mode::Feedback).then_some(args.tolerance),
        crate::report::rfc3339(now),
        stop.is_cancelled(),
        searches,
    );
    super::render::write(&out, &file)?;
    println!("{}", super::render::headline(&file));
    println!("capacity: {}", out.join("capacity.html").display());
    Ok(())
}

/// Runs steps as `chatcap run` children.
struct StepRunner {
    binary: PathBuf,
    scenario: PathBuf,
    text: String,
    overrides: Overrides,
    profile: Option<PathBuf>,
    server_config: Option<PathBuf>,
    stop: CancellationToken,
}

async fn one_search(
    r: &StepRunner,
    spec: Spec,
    dir: &Path,
    label: &str,
) -> anyhow::Result<SearchResult> {
    let mut search = Search::new(spec);
    let mut steps: Vec<Step> = Vec::new();
    while let Some(users) = search.next_users() {
        let n = steps.len() + 1;
        eprintln!("[{label}] step {n}: {users} users…");
        let step = r.run(dir, n, users).await?;
        let supported = |s: &Search| s.supported().map_or("none yet".into(), |u| u.to_string());
        match step.verdict {
            Verdict::Interrupted => {
                search.interrupt();
                eprintln!("[{label}] step {n}: {users} users: interrupted (not counted)");
            }
            v => {
                search.record(users, v == Verdict::Pass);
                let cpu: f64 = step.servers().map(|(_, p)| p.cpu_cores).sum();
                let why = if step.failed.is_empty() {
                    step.error.clone().unwrap_or_default()
                } else {
                    step.failed
                        .iter()
                        .map(|f| f.text.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                eprintln!(
                    "[{label}] step {n}: {users} users: {} (post_ack p99 {:.1} ms, server CPU {:.0}%) {why} · supported so far: {}",
                    format!("{v:?}").to_lowercase(),
                    step.p99_us.get("post_ack").copied().unwrap_or(0) as f64 / 1e3,
                    100.0 * cpu,
                    supported(&search)
                );
            }
        }
        steps.push(step);
    }
    let stop = search.stopped().unwrap_or(Stop::Interrupted);
    Ok(SearchResult::of(steps, stop))
}

impl StepRunner {
    /// Run step `n` at `users` into `dir/step-NNN-USERS`.
    async fn run(&self, dir: &Path, n: usize, users: u32) -> anyhow::Result<Step> {
        let name = format!("step-{n:03}-{users}");
        let step_dir = dir.join(&name);
        let file = dir.join(format!("{name}.toml"));
        let text = scale::scaled(&self.text, &self.scenario, users, &self.overrides)
            .map_err(|e| UsageError(e.to_string()))?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(&file, text)?;
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.arg("run")
            .arg(&file)
            .arg("--out")
            .arg(&step_dir)
            .arg("-q");
        if let Some(p) = &self.profile {
            cmd.arg("--profile").arg(p);
        }
        if let Some(c) = &self.server_config {
            cmd.arg("--server-config").arg(c);
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let status = tokio::select! {
            s = child.wait() => s?,
            _ = self.stop.cancelled() => {
                // The child stops as `run` does on Ctrl-C: it finishes and writes a
                // partial folder. (A terminal's Ctrl-C reached it already; SIGTERM to
                // this process alone did not.)
                if let Some(pid) = child.id() {
                    let _ = std::process::Command::new("kill")
                        .args(["-TERM", &pid.to_string()])
                        .status();
                }
                match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
                    Ok(s) => s?,
                    Err(_) => {
                        child.kill().await?;
                        child.wait().await?
                    }
                }
            }
        };
        if status.code() == Some(2) {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(UsageError(format!(
                "step {n} ({users} users) refused its input: {}",
                tail.lines().last().unwrap_or("")
            ))
            .into());
        }
        let shown = step_dir.display().to_string();
        Ok(match Results::open(&step_dir) {
            Ok(res) => {
                let mut s = Step::measure(&res);
                s.users = users;
                if self.stop.is_cancelled() {
                    s.verdict = Verdict::Interrupted;
                }
                s
            }
            Err(e) if self.stop.is_cancelled() => {
                Step::error(users, shown, Verdict::Interrupted, e.to_string())
            }
            Err(e) => Step::error(
                users,
                shown,
                Verdict::Error,
                format!("{status}; {e} (log: {})", log.display()),
            ),
        })
    }
}

/// `capacity model RESULTS…`.
fn model_from(dirs: &[PathBuf], out: Option<&Path>) -> anyhow::Result<()> {
    let mut steps = Vec::new();
    let mut scenario = None;
    for d in dirs {
        let r = Results::open(d).map_err(|e| UsageError(e.to_string()))?;
        if scenario.is_none() {
            // A search's step is named after its users (`scale::scaled`): the model is
            // of the scenario, not of that step.
            let name = &r.summary.scenario;
            let step = format!("-{}u", r.summary.users.population);
            scenario = Some(name.strip_suffix(&step).unwrap_or(name).to_string());
        }
        steps.push(Step::measure(&r));
    }
    steps.sort_by_key(|s| s.users);
    let sources: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let file: CapacityFile = model::build(
        scenario.unwrap_or_default(),
        sources.join(", "),
        None,
        None,
        crate::report::rfc3339(chatcap_server::auth::unix_now()),
        false,
        vec![SearchResult::of(steps, Stop::Settled)],
    );
    match out {
        Some(dir) => {
            super::render::write(dir, &file)?;
            println!("{}", super::render::headline(&file));
            println!("capacity: {}", dir.join("capacity.json").display());
        }
        None => print!("{}", super::render::markdown(&file)),
    }
    Ok(())
}
