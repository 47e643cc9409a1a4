//! Local shards: the parent `chatcap run` writes the simulated users to a file, starts one
//! child `chatcap run --shard i/N` per shard with a common start time, samples the server
//! and the children once a second while they run (and scrapes the server's `/metrics`),
//! forwards Ctrl-C, and merges their
//! folders when they are done.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::options::{RunError, RunOptions};
use super::shard::{self, merge, merged_collector, POPULATION};
use super::target::Target;
use super::watch::ServerWatch;
use super::{Ending, Outcome};
use crate::scenario::plan::RunPlan;

/// Time the children get to start before the load begins.
const START_DELAY: Duration = Duration::from_secs(3);

fn io_err(path: &Path, source: std::io::Error) -> RunError {
    RunError::Write {
        path: path.display().to_string(),
        source,
    }
}

/// Run the plan split over `count` child processes; returns the merged outcome.
pub async fn run_local_shards(
    plan: &RunPlan,
    opts: &RunOptions,
    target: &Target,
    watch: &mut ServerWatch,
    out: &Path,
    count: usize,
    interrupt: CancellationToken,
) -> Result<Outcome, RunError> {
    let population = out.join(POPULATION);
    shard::write_population(&population, &target.users)
        .map_err(|e| io_err(&population, std::io::Error::other(e.to_string())))?;
    let start_at = shard::unix_ms(SystemTime::now() + START_DELAY);
    let urls: Vec<String> = target.endpoints().into_iter().map(|(_, url)| url).collect();
    let attach = urls.join(",");
    let mut children: Vec<Child> = Vec::new();
    let mut dirs = Vec::new();
    for i in 0..count {
        let dir = out.join(format!("shard-{i}"));
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let log = std::fs::File::create(dir.join("shard.log")).map_err(|e| io_err(&dir, e))?;
        let log2 = log.try_clone().map_err(|e| io_err(&dir, e))?;
        let mut cmd = Command::new(&opts.server_binary);
        cmd.arg("run");
        if let Some(tls) = &target.tls {
            cmd.arg("--attach-ca").arg(&tls.ca);
        }
        let child = cmd
            .arg(&opts.scenario_file)
            .args([
                "--quiet",
                "--shard",
                &format!("{i}/{count}"),
                "--start-at",
                &start_at.to_string(),
                "--attach",
                &attach,
            ])
            .arg("--population")
            .arg(&population)
            .arg("--out")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| io_err(&opts.server_binary, e))?;
        children.push(child);
        dirs.push(dir);
    }
    let mut probes = watch.take_probes();
    shard::sleep_until_unix_ms(start_at).await;
    let start = Instant::now();
    watch.start_scraping(out, start);
    let mut resources = Vec::new();
    let mut ending = Ending::Completed;
    let mut forwarded = false;
    if !opts.quiet {
        eprintln!(
            "running {count} generator shards (logs in {}/shard-*/shard.log)",
            out.display()
        );
    }
    loop {
        let done = children
            .iter_mut()
            .all(|c| matches!(c.try_wait(), Ok(Some(_))));
        if done {
            break;
        }
        if interrupt.is_cancelled() && !forwarded {
            forwarded = true;
            ending = Ending::Interrupted;
            for c in &children {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
            }
        }
        let t = start.elapsed().as_secs_f64();
        resources.extend(probes.iter_mut().filter_map(|p| p.sample(t)));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = interrupt.cancelled(), if !forwarded => {}
        }
    }
    for (i, c) in children.iter_mut().enumerate() {
        match c.wait() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                return Err(RunError::Unsupported(format!(
                    "shard {i} failed ({status}); see {}",
                    dirs[i].join("shard.log").display()
                )))
            }
            Err(e) => return Err(io_err(&dirs[i], e)),
        }
    }
    let merged =
        merge(&dirs).map_err(|e| RunError::Unsupported(format!("merging shard results: {e}")))?;
    resources.extend(merged.resources.iter().cloned());
    let peak = merged.timeline.iter().map(|r| r.users).max().unwrap_or(0);
    Ok(Outcome {
        collector: merged_collector(&merged),
        peak_connections: peak,
        elapsed: start.elapsed().min(plan.duration()),
        ending,
        ledger: merged.ledger,
        resources,
        tails: merged.tails,
    })
}
