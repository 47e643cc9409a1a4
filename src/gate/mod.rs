//! `chatcap gate RUN [--baseline RUN] [--rules FILE] [--junit FILE]`: the CI regression gate.
//! It checks a results folder against the scenario's objectives, the rules' thresholds and,
//! with a baseline run, how far each figure moved; prints every check and why a failed one
//! failed; writes JUnit XML. Exit code 0 pass, 1 fail, 2 unusable input (a missing or
//! corrupt run, a bad rules file).
//!
//! # Layout
//! - [`rules`]: the rules file and the default tolerances.
//! - [`check`]: the checks and their verdicts.
//! - [`junit`]: JUnit XML.

pub mod check;
pub mod junit;
pub mod rules;

use std::path::PathBuf;

use clap::Args;

use crate::report::results::Results;
use crate::usage::UsageError;
use check::Check;
use rules::Rules;

/// Options of `gate`.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// The results folder to judge (written by `chatcap run` or `chatcap merge`).
    pub run: PathBuf,
    /// A results folder to compare with: figures may not move past the tolerances of the
    /// rules' `[regression]` table (default: throughput −10 %, each operation's p99 +25 %,
    /// no new loss or duplicate, each process's memory per user +10 %).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Rules file (TOML): `[slo]` thresholds in the scenarios' syntax
    /// (`"post_ack.p99" = "< 50ms"`) and `[regression]` tolerances (`throughput = "-10%"`,
    /// `"post_ack.p99" = "+25%"`, `"delivery.lost" = "+0"`). See docs/GATE.md.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Also write the verdicts as JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

/// The gate failed: some checks did not hold (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("gate failed: {failed} of {total} checks")]
pub struct GateFailed {
    /// Failed checks.
    pub failed: usize,
    /// All checks.
    pub total: usize,
}

fn table(checks: &[Check]) -> String {
    let head = ["check", "kind", "measured", "limit", "verdict"];
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.kind.name().to_string(),
                c.measured.clone(),
                c.limit.clone(),
                if c.pass { "pass" } else { "FAIL" }.to_string(),
            ]
        })
        .collect();
    crate::report::render::text_table(&head, &rows)
}

/// `chatcap gate`.
pub fn run(args: GateArgs) -> anyhow::Result<()> {
    let unusable = |e: String| anyhow::Error::new(UsageError(e));
    let rules = match &args.rules {
        Some(p) => Rules::load(p).map_err(|e| unusable(e.to_string()))?,
        None => Rules::default(),
    };
    let run = Results::open(&args.run).map_err(|e| unusable(e.to_string()))?;
    let baseline = args
        .baseline
        .as_deref()
        .map(Results::open)
        .transpose()
        .map_err(|e| unusable(format!("baseline: {e}")))?;
    let checks = check::checks(&run.summary, baseline.as_ref().map(|b| &b.summary), &rules);
    if checks.is_empty() {
        return Err(unusable(format!(
            "{}: nothing to check: the scenario sets no objectives, and no --rules or --baseline was given",
            args.run.display()
        )));
    }
    print!("{}", table(&checks));
    if let Some(path) = &args.junit {
        let suite = format!("chatcap gate: {}", run.summary.scenario);
        let xml = junit::xml(
            &suite,
            &args.run.display().to_string(),
            &run.summary.started_at,
            &checks,
        );
        std::fs::write(path, xml)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.pass).collect();
    if failed.is_empty() {
        println!("gate: pass ({} checks)", checks.len());
        return Ok(());
    }
    println!("gate: FAIL, {} of {} checks:", failed.len(), checks.len());
    for c in &failed {
        println!(
            "  {} ({}): measured {}, limit {}",
            c.name,
            c.kind.name(),
            c.measured,
            c.limit
        );
    }
    Err(GateFailed {
        failed: failed.len(),
        total: checks.len(),
    }
    .into())
}
