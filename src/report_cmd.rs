//! `chatcap report` and `chatcap compare`: results folders rendered as pages, tables and
//! charts after the fact (a run renders its own report at its end the same way).

use std::path::PathBuf;

use clap::Args;

use crate::report::compare;
use crate::report::output::{self, Format, ReportError};
use crate::report::results::Results;
use crate::usage::UsageError;

/// Options of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results folder (written by `chatcap run` or `chatcap merge`).
    pub dir: PathBuf,
    /// Write one file instead, its format from its extension: .html (the page), .md (the
    /// summary), .json (summary.json), .csv (the operations table). Default: DIR/report.html
    /// and every chart as DIR/plots/<chart>.svg.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Options of `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Results folders; the first is the baseline the others are compared with.
    #[arg(required = true, num_args = 2..)]
    pub dirs: Vec<PathBuf>,
    /// Also write the comparison to this file, its format from its extension: .html (table
    /// and overlaid charts), .md, .json.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn usage(e: ReportError) -> anyhow::Error {
    match e {
        ReportError::Write { .. } => e.into(),
        e => UsageError(e.to_string()).into(),
    }
}

/// `chatcap report DIR [--out FILE]`.
pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    match args.out {
        Some(out) => {
            output::write_one(&args.dir, &out).map_err(usage)?;
            println!("report: {}", out.display());
        }
        None => {
            let page = output::write_folder_report(&args.dir).map_err(usage)?;
            println!("report: {}", page.display());
        }
    }
    Ok(())
}

/// `chatcap compare DIR DIR… [--out FILE]`.
pub fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let format = args
        .out
        .as_deref()
        .map(Format::of)
        .transpose()
        .map_err(usage)?;
    if format == Some(Format::Csv) {
        return Err(UsageError("compare writes .html, .md or .json, not .csv".into()).into());
    }
    let runs = args
        .dirs
        .iter()
        .map(|d| Results::open(d).map_err(|e| usage(e.into())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let c = compare::compare(&runs);
    print!("{}", compare::text(&c));
    if let (Some(out), Some(format)) = (&args.out, format) {
        let text = match format {
            Format::Html => compare::page(&c, &runs),
            Format::Markdown => compare::markdown(&c),
            _ => serde_json::to_string_pretty(&c).expect("a comparison serialises") + "\n",
        };
        std::fs::write(out, text).map_err(|source| {
            usage(ReportError::Write {
                path: out.display().to_string(),
                source,
            })
        })?;
        println!("comparison: {}", out.display());
    }
    Ok(())
}
