//! `chatcap report`: a results folder rendered as `report.html` with every chart also as an
//! SVG file in `plots/`, or as one file in the format its extension names
//! (`.html`, `.md`, `.json`, `.csv`). Rendering is deterministic: the same folder gives the
//! same bytes.

use std::path::{Path, PathBuf};

use super::figures;
use super::html;
use super::render;
use super::results::{Results, ResultsError};

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The results folder is unusable.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// The output file's extension names no format.
    #[error("{0}: unknown report format; use .html, .md, .json or .csv")]
    Format(String),
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// What `--out` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The page with its charts.
    Html,
    /// The summary as Markdown (as printed at the end of a run).
    Markdown,
    /// `summary.json` as it is.
    Json,
    /// The operations table.
    Csv,
}

impl Format {
    /// The format a file's extension names.
    pub fn of(path: &Path) -> Result<Format, ReportError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("html" | "htm") => Ok(Format::Html),
            Some("md" | "markdown") => Ok(Format::Markdown),
            Some("json") => Ok(Format::Json),
            Some("csv") => Ok(Format::Csv),
            _ => Err(ReportError::Format(path.display().to_string())),
        }
    }
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(|source| ReportError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// The page of a read folder, and its charts' SVG.
fn page(r: &Results) -> (String, Vec<(super::plot::Chart, String)>) {
    let charts = html::drawn(figures::charts(r));
    (html::report(&r.summary, &charts), charts)
}

/// Write `DIR/report.html` and `DIR/plots/<chart>.svg`; returns the page's path.
pub fn write_folder_report(dir: &Path) -> Result<PathBuf, ReportError> {
    let r = Results::open(dir)?;
    let (page, charts) = page(&r);
    let plots = dir.join("plots");
    std::fs::create_dir_all(&plots).map_err(|source| ReportError::Write {
        path: plots.display().to_string(),
        source,
    })?;
    for (c, svg) in &charts {
        write(&plots.join(format!("{}.svg", c.id)), svg)?;
    }
    let out = dir.join("report.html");
    write(&out, page)?;
    Ok(out)
}

/// Write one file in the format of `out`'s extension.
pub fn write_one(dir: &Path, out: &Path) -> Result<(), ReportError> {
    let format = Format::of(out)?;
    let r = Results::open(dir)?;
    match format {
        Format::Html => write(out, page(&r).0),
        Format::Markdown => write(out, render::markdown(&r.summary)),
        Format::Json => {
            let json = serde_json::to_string_pretty(&r.summary).expect("a summary serialises");
            write(out, json + "\n")
        }
        Format::Csv => write(out, render::operations_csv(&r.summary)),
    }
}
