//! `chatcap compliance export`: one export run of the compliance service's XML adapter
//! against the databases of a server (running or not), then exit.
//!
//! It claims events exactly as a running server's exporter does, so it may run while
//! servers of the pool export too: no event is written to two files. Settings come from the
//! same TOML file as `chatcap serve` (`--config`), overridden by flags.

use std::path::PathBuf;

use anyhow::Context;
use chatcap_server::compliance::exporter::DEFAULT_MAX_PER_FILE;
use chatcap_server::compliance::{export_once, output_dir, ExportOptions};
use chatcap_server::config::ServeConfig;
use chatcap_server::serve::open_store;
use chatcap_server::store::Schema;
use clap::{Args, Subcommand};

use crate::usage::UsageError;

/// `compliance` subcommands.
#[derive(Debug, Subcommand)]
pub enum ComplianceCommand {
    /// Export every unexported compliance event now (one XML file per batch of
    /// --max-per-file events), print how many and where, and exit.
    Export(ExportArgs),
}

/// Options of `compliance export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// TOML settings file of the server (as `chatcap serve --config`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Folder of the SQLite databases.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Content database URL (sqlite:PATH or postgres://…): user and room names.
    #[arg(long, env = "CHATCAP_DATABASE")]
    pub database: Option<String>,
    /// Compliance database URL; default as `chatcap serve` (next to the content database).
    #[arg(long)]
    pub compliance_database: Option<String>,
    /// Where the XML files go; default `compliance.output_dir`, else `<data_dir>/compliance`.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Most events per file.
    #[arg(long, default_value_t = DEFAULT_MAX_PER_FILE)]
    pub max_per_file: u32,
}

/// Run a `compliance` subcommand.
pub async fn run(cmd: ComplianceCommand) -> anyhow::Result<()> {
    match cmd {
        ComplianceCommand::Export(args) => export(args).await,
    }
}

fn config(args: &ExportArgs) -> anyhow::Result<ServeConfig> {
    let mut cfg = crate::settings::settings_file(args.config.as_deref())?;
    if let Some(v) = &args.data_dir {
        cfg.data_dir = v.clone();
    }
    if let Some(v) = &args.database {
        cfg.database = Some(v.clone());
    }
    if let Some(v) = &args.compliance_database {
        cfg.compliance_database = Some(v.clone());
    }
    if let Some(v) = &args.output_dir {
        cfg.compliance.output_dir = Some(v.clone());
    }
    if args.max_per_file == 0 {
        return Err(UsageError("--max-per-file must be at least 1".into()).into());
    }
    cfg.validate().map_err(UsageError)?;
    Ok(cfg)
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let cfg = config(&args)?;
    let content = open_store(&cfg.database_url(), Schema::Content).await?;
    let compliance = open_store(&cfg.compliance_url(), Schema::Compliance).await?;
    let out_dir = output_dir(&cfg);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut opts = ExportOptions::new(out_dir);
    opts.max_per_file = args.max_per_file;
    let result = export_once(&compliance, &content, None, &opts).await;
    compliance.close().await;
    content.close().await;
    let report = result?;
    if report.files.is_empty() {
        println!("nothing to export: every recorded event is exported already");
    } else {
        println!(
            "exported {} events in {} file(s):",
            report.events,
            report.files.len()
        );
        for f in &report.files {
            println!("  {}", f.display());
        }
    }
    Ok(())
}
