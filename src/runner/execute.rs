//! One run from start to end: ready the target, drive the load shape with a live progress
//! line, reconcile, stop the target, and write the results folder. Ctrl-C (the
//! `interrupt` token) ends the load early; what was measured is still written.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::options::{RunError, RunOptions};
use super::shard::ShardId;
use super::target::{self, Target};
use super::watch::ServerWatch;
use super::{drive, Outcome, Shared};
use crate::metrics::collector::{Collector, TimelineRow};
use crate::metrics::resources::ProcessProbe;
use crate::profile::{Confinement, ProfileRecord};
use crate::report::model::Summary;
use crate::report::{self, RunInfo};
use crate::scenario::plan::{RunPlan, Target as PlanTarget};

/// Loopback source addresses connections are spread over.
const SOURCE_SPREAD: u8 = 8;

/// Descriptors kept free in each generator process for everything but connections.
const FD_RESERVE: u64 = 1024;

/// The default results folder for a plan started at `unix`.
pub fn default_out(plan: &RunPlan, unix: i64) -> PathBuf {
    let stamp = report::rfc3339(unix)
        .replace([':', '-'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_string();
    PathBuf::from("reports").join(format!("{stamp}-{}", plan.name))
}

/// Run `plan`; returns the summary and the folder it was written to.
pub async fn run(
    plan: RunPlan,
    opts: RunOptions,
    interrupt: CancellationToken,
) -> Result<(Summary, PathBuf), RunError> {
    let started_unix = chatcap_server::auth::unix_now();
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| default_out(&plan, started_unix));
    std::fs::create_dir_all(&out).map_err(|source| RunError::Write {
        path: out.display().to_string(),
        source,
    })?;
    let fd_limit = super::net::raise_fd_limit();

    if let Some(shard) = opts.shard {
        return run_shard(plan, opts, shard, out, started_unix, fd_limit, interrupt).await;
    }
    let connections =
        super::connections_for(plan.peak_users(), plan.population.endpoints_per_user) as u64;
    let shards = opts.shards.unwrap_or_else(|| {
        connections.div_ceil(fd_limit.saturating_sub(FD_RESERVE).max(1000)) as usize
    });
    // Dropped last: the servers are stopped before their cgroups are removed (and on an
    // early return, whatever is left inside is killed).
    let confinement = confine(&plan, &opts);
    let mut target = ready_target(&plan, &opts, &out, confinement.clone()).await?;
    let profile = profile_record(&opts, confinement.as_deref(), &target);
    let mut watch = ServerWatch::new(&target).await;
    if shards > 1 {
        let outcome = super::spawn::run_local_shards(
            &plan, &opts, &target, &mut watch, &out, shards, interrupt,
        )
        .await;
        watch.stop().await;
        let outcome = outcome?;
        let reconciliation = reconcile(&target, &outcome).await;
        target.stop().await;
        return finish(
            &plan,
            &opts,
            &out,
            outcome,
            Checked {
                reconciliation,
                profile,
            },
            started_unix,
            fd_limit,
        );
    }
    let mut probes = vec![ProcessProbe::new("generator", std::process::id(), None)];
    probes.extend(watch.take_probes());
    let shared = Arc::new(
        Shared::new(plan.clone(), target.endpoints(), SOURCE_SPREAD)
            .with_tls(target.tls.as_ref().map(|t| t.connector.clone())),
    );
    let collector =
        Collector::new(Some(&out.join("histograms.hlog"))).map_err(|source| RunError::Write {
            path: out.display().to_string(),
            source,
        })?;
    let mut live = Live::new(&plan, opts.quiet);
    // `drive` counts its time from now too: the scrapes' `t_s` match the timeline's.
    watch.start_scraping(&out, tokio::time::Instant::now());
    let outcome = drive(
        shared,
        target.users.clone(),
        collector,
        probes,
        None,
        interrupt,
        &mut |row, plan| live.update(row, plan),
    )
    .await;
    live.finish();
    watch.stop().await;

    let reconciliation = reconcile(&target, &outcome).await;
    target.stop().await;
    finish(
        &plan,
        &opts,
        &out,
        outcome,
        Checked {
            reconciliation,
            profile,
        },
        started_unix,
        fd_limit,
    )
}

/// The profile's limits, applied now when this run starts the servers (an embedded target,
/// or a pool from a topology); warnings on stderr for each limit that could not be.
fn confine(plan: &RunPlan, opts: &RunOptions) -> Option<Arc<Confinement>> {
    let profile = opts.profile.as_ref()?;
    let starts_servers = match &plan.target {
        PlanTarget::Embedded { .. } => true,
        PlanTarget::Topology { tokens, .. } => tokens.is_none(),
        PlanTarget::Addresses { .. } => false,
    };
    if !starts_servers {
        return None;
    }
    let c = Confinement::create(profile);
    for l in c.record(&[]).missed() {
        let why = l.note.as_deref().unwrap_or("no way to apply it here");
        eprintln!(
            "warning: profile {}: {} {} NOT APPLIED: {why}",
            profile.name, l.limit, l.asked
        );
    }
    Some(Arc::new(c))
}

/// What the results record of the profile: the limits as applied to the servers started
/// (checked on each process now), or all of them missed for a target started elsewhere.
fn profile_record(
    opts: &RunOptions,
    confinement: Option<&Confinement>,
    target: &Target,
) -> Option<ProfileRecord> {
    let profile = opts.profile.as_ref()?;
    Some(match confinement {
        Some(c) => c.record(&target.pids()),
        None => {
            let why = "the target was not started by this run; limit it where it runs";
            eprintln!("warning: profile {}: {why}", profile.name);
            ProfileRecord::not_applied(profile, why)
        }
    })
}

async fn reconcile(target: &Target, outcome: &Outcome) -> Option<super::reconcile::Reconciliation> {
    let token = target.admin_token.as_ref()?;
    if outcome.ledger.is_empty() {
        return None;
    }
    let trust = target.tls.as_ref().map(|t| &t.connector);
    match super::reconcile::check(&target.url, trust, token, &outcome.ledger).await {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "reconciliation failed");
            None
        }
    }
}

/// One shard of a split run: attach to the target, run our slice, write raw results.
async fn run_shard(
    plan: RunPlan,
    opts: RunOptions,
    shard: ShardId,
    out: PathBuf,
    started_unix: i64,
    fd_limit: u64,
    interrupt: CancellationToken,
) -> Result<(Summary, PathBuf), RunError> {
    let Some(population) = opts.population.clone().filter(|_| !opts.attach.is_empty()) else {
        return Err(RunError::Unsupported(
            "--shard needs --attach URL[,URL…] and --population FILE".into(),
        ));
    };
    let mut endpoints = Vec::new();
    for url in &opts.attach {
        let addr = target::addr_of_url(url).map_err(RunError::Unsupported)?;
        endpoints.push((addr, url.clone()));
    }
    let users = super::shard::read_population(&population)
        .map_err(|e| RunError::Unsupported(e.to_string()))?;
    let tls = match &opts.attach_ca {
        Some(ca) => Some(
            chatcap_server::tls::trusting(ca)
                .map_err(|e| RunError::Unsupported(format!("--attach-ca: {e}")))?,
        ),
        None if opts.attach.iter().any(|u| u.starts_with("wss://")) => {
            return Err(RunError::Unsupported(
                "--attach wss://… needs --attach-ca FILE (the CA that signed the target's certificate)"
                    .into(),
            ))
        }
        None => None,
    };
    let shared = Arc::new(Shared::new(plan.clone(), endpoints, SOURCE_SPREAD).with_tls(tls));
    let collector =
        Collector::new(Some(&out.join("histograms.hlog"))).map_err(|source| RunError::Write {
            path: out.display().to_string(),
            source,
        })?;
    if let Some(ms) = opts.start_at_ms {
        tokio::select! { _ = super::shard::sleep_until_unix_ms(ms) => {}, _ = interrupt.cancelled() => {} }
    }
    let probes = vec![ProcessProbe::new("generator", std::process::id(), None)];
    let mut live = Live::new(&plan, opts.quiet);
    let outcome = drive(
        shared,
        Arc::new(users),
        collector,
        probes,
        Some(shard),
        interrupt,
        &mut |row, plan| live.update(row, plan),
    )
    .await;
    live.finish();
    super::shard::write_shard_files(
        &out,
        &outcome.collector.total,
        &outcome.ledger,
        &outcome.tails,
    )
    .map_err(|e| RunError::Write {
        path: out.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
    finish(
        &plan,
        &opts,
        &out,
        outcome,
        Checked::default(),
        started_unix,
        fd_limit,
    )
}

/// A progress bar for provisioning, and the callback that moves it.
fn provision_progress(
    quiet: bool,
) -> (
    ProgressBar,
    impl Fn(chatcap_server::provision::Progress) + Sync,
) {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let b = bar.clone();
    let progress = move |p: chatcap_server::provision::Progress| match p {
        chatcap_server::provision::Progress::Stage { name, total } => {
            b.set_message(format!("provision {name}"));
            b.set_length(total);
            b.set_position(0);
        }
        chatcap_server::provision::Progress::Advance(n) => b.inc(n),
    };
    (bar, progress)
}

async fn ready_target(
    plan: &RunPlan,
    opts: &RunOptions,
    out: &Path,
    confine: Option<Arc<Confinement>>,
) -> Result<Target, RunError> {
    match &plan.target {
        PlanTarget::Embedded { .. } => {
            let (bar, progress) = provision_progress(opts.quiet);
            let t = target::embedded(
                plan,
                &opts.server_binary,
                opts.server_config.as_deref(),
                &out.join("server-data"),
                out,
                confine.as_deref(),
                &progress,
            )
            .await?;
            bar.finish_and_clear();
            Ok(t)
        }
        PlanTarget::Addresses { urls, tokens, ca } => {
            Ok(target::addresses(urls, tokens, ca.as_deref())?)
        }
        PlanTarget::Topology { path, tokens, ca } => {
            let topology = chatcap_server::topology::Topology::load(path)
                .map_err(|e| RunError::Unsupported(e.to_string()))?;
            match tokens {
                Some(tokens) => {
                    // With a CA the running pool's front ends are taken to serve wss://.
                    let urls: Vec<String> = topology
                        .front_ends
                        .iter()
                        .map(|f| match ca {
                            Some(_) => f.ws_url().replacen("ws://", "wss://", 1),
                            None => f.ws_url(),
                        })
                        .collect();
                    Ok(target::addresses(&urls, tokens, ca.as_deref())?)
                }
                None => {
                    let (bar, progress) = provision_progress(opts.quiet);
                    let t = target::pool(
                        plan,
                        topology,
                        &opts.server_binary,
                        &out.join("pool"),
                        confine,
                        ca.as_deref(),
                        &progress,
                    )
                    .await?;
                    bar.finish_and_clear();
                    Ok(t)
                }
            }
        }
    }
}

/// What a run checked besides the load: acknowledged posts against history, and the
/// profile's limits on the servers.
#[derive(Default)]
struct Checked {
    reconciliation: Option<super::reconcile::Reconciliation>,
    profile: Option<ProfileRecord>,
}

fn finish(
    plan: &RunPlan,
    opts: &RunOptions,
    out: &Path,
    mut outcome: Outcome,
    checked: Checked,
    started_unix: i64,
    fd_limit: u64,
) -> Result<(Summary, PathBuf), RunError> {
    let Checked {
        reconciliation,
        profile,
    } = checked;
    // A shard sees only its own acknowledgements; the merge does this for the whole run.
    if opts.shard.is_none() {
        outcome.collector.total.lost += super::tail_losses(&outcome.ledger, &outcome.tails);
    }
    let info = RunInfo {
        plan,
        scenario_file: opts.scenario_file.display().to_string(),
        started_unix,
        reconciliation,
        fd_limit,
        logs: report::hlog::logs(out).unwrap_or_default(),
        profile,
    };
    let summary = report::summarise_run(&outcome, info);
    report::write_folder(out, &summary, &outcome).map_err(|source| RunError::Write {
        path: out.display().to_string(),
        source,
    })?;
    Ok((summary, out.to_path_buf()))
}

/// The live progress line: a bar on a terminal, a plain line every 5 s otherwise.
struct Live {
    bar: Option<ProgressBar>,
    plain: bool,
    last_plain: f64,
}

impl Live {
    fn new(plan: &RunPlan, quiet: bool) -> Self {
        if quiet {
            return Self {
                bar: None,
                plain: false,
                last_plain: 0.0,
            };
        }
        if !std::io::stderr().is_terminal() {
            return Self {
                bar: None,
                plain: true,
                last_plain: -10.0,
            };
        }
        let bar = ProgressBar::new(plan.duration().as_secs().max(1));
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:25}] {pos}/{len}s {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Self {
            bar: Some(bar),
            plain: false,
            last_plain: 0.0,
        }
    }

    fn line(row: &TimelineRow, plan: &RunPlan) -> String {
        let mut t = Duration::ZERO;
        let mut phase = "";
        for p in &plan.phases {
            t += p.duration;
            phase = &p.name;
            if row.t_s < t.as_secs_f64() {
                break;
            }
        }
        format!(
            "{phase} · users {}/{} · {} req/s · {} posts/s · post p99 {:.1} ms · {} errors",
            row.users,
            row.target_users,
            row.requests,
            row.posts,
            row.post_ack_p99_us as f64 / 1000.0,
            row.errors
        )
    }

    fn update(&mut self, row: &TimelineRow, plan: &RunPlan) {
        if let Some(bar) = &self.bar {
            bar.set_position(row.t_s as u64);
            bar.set_message(Self::line(row, plan));
        } else if self.plain && row.t_s - self.last_plain >= 5.0 {
            self.last_plain = row.t_s;
            eprintln!("[{:>5.0} s] {}", row.t_s, Self::line(row, plan));
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
