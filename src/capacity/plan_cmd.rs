//! `chatcap plan --users N --from CAPACITY.json… [--profile P] [--headroom 30%]`: reads
//! capacity models, picks the one measured on the planned profile (or scales one by users
//! per core), and prints the sizing as a table, or writes it as Markdown or JSON (`--out`,
//! by extension).

use std::path::{Path, PathBuf};

use clap::Args;

use super::model::{CapacityFile, SCHEMA};
use super::plan::{self, Target};
use crate::usage::UsageError;

/// Options of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Users to serve.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub users: u64,
    /// Capacity models (capacity.json written by `chatcap capacity`).
    #[arg(long = "from", required = true, num_args = 1..)]
    pub from: Vec<PathBuf>,
    /// Only models of this scenario (a scenario file or its name).
    #[arg(long)]
    pub scenario: Option<String>,
    /// Plan for this hardware profile (default: the model's own hardware).
    #[arg(long)]
    pub profile: Option<String>,
    /// Share of every machine kept free ("30%" or 0.3).
    #[arg(long, default_value = "30%", value_parser = super::cmd::parse_share)]
    pub headroom: f64,
    /// Cores of a load-generator machine (default: the measuring machine's).
    #[arg(long)]
    pub generator_cores: Option<f64>,
    /// Write the plan here instead: x.md (Markdown) or x.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn usage(m: String) -> anyhow::Error {
    UsageError(m).into()
}

/// Read and check a capacity model.
pub fn load(path: &Path) -> Result<CapacityFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    match v.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA) => {}
        other => {
            return Err(format!(
                "{}: not a chatcap capacity model (schema {other:?}, expected {SCHEMA:?})",
                path.display()
            ))
        }
    }
    let c: CapacityFile = serde_json::from_value(v).map_err(|e| {
        format!(
            "{}: not a capacity model of its schema: {e}",
            path.display()
        )
    })?;
    if c.model.users_per_core.is_nan() || c.model.users_per_core <= 0.0 {
        return Err(format!(
            "{}: no supported users (no step passed), nothing to plan from",
            path.display()
        ));
    }
    Ok(c)
}

/// `chatcap plan`.
pub fn run(args: PlanArgs) -> anyhow::Result<()> {
    let mut models = Vec::new();
    for f in &args.from {
        models.push(load(f).map_err(usage)?);
    }
    if let Some(s) = &args.scenario {
        let name = if Path::new(s).is_file() {
            crate::scenario::Scenario::load(s)
                .map_err(|e| usage(e.to_string()))?
                .name
        } else {
            s.clone()
        };
        models.retain(|m| m.scenario == name || m.scenario.starts_with(&format!("{name}-")));
        if models.is_empty() {
            return Err(usage(format!(
                "no model given with --from is of scenario {name:?}"
            )));
        }
    }
    let (profile_name, cpus) = match &args.profile {
        Some(p) => {
            let file =
                crate::profile::Profile::find(p, Path::new("scenarios/x.toml")).map_err(usage)?;
            let prof = crate::profile::Profile::load(&file).map_err(|e| usage(e.to_string()))?;
            let cpus = prof.cpu_capacity();
            (Some(prof.name), cpus)
        }
        None => (None, None),
    };
    // A model measured on the planned profile wins; otherwise the first, scaled.
    let chosen = models
        .iter()
        .find(|m| profile_name.is_some() && m.profile == profile_name)
        .unwrap_or(&models[0]);
    let cpus = cpus.or_else(|| {
        // An unlimited profile: the whole machine the model was measured on.
        profile_name
            .as_ref()
            .map(|_| chosen.model.machine_cores as f64)
    });
    let p = plan::plan(
        chosen,
        &Target {
            users: args.users,
            profile: profile_name,
            cpus,
            headroom: args.headroom,
            generator_cores: args.generator_cores,
        },
    );
    match &args.out {
        None => print!("{}", plan::text(&p)),
        Some(out) => {
            let body = match out.extension().and_then(|e| e.to_str()) {
                Some("md") => plan::markdown(&p),
                Some("json") => serde_json::to_string_pretty(&p)? + "\n",
                _ => {
                    return Err(usage(format!(
                        "{}: the extension names the format: .md or .json",
                        out.display()
                    )))
                }
            };
            std::fs::write(out, body)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))?;
            print!("{}", plan::text(&p));
            println!("plan: {}", out.display());
        }
    }
    Ok(())
}
