//! A results folder read back for `report` and `compare`: `summary.json`, `timeline.csv`,
//! `resources.csv` and the interval logs, each checked. A truncated, foreign or older folder
//! is an error that names the file and what is wrong, never a panic or an empty report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::de::DeserializeOwned;

use super::hlog::{self, LogError};
use super::model::{Summary, SCHEMA};
use super::server_metrics;
use crate::metrics::collector::TimelineRow;
use crate::metrics::resources::Sample;
use crate::metrics::server_metrics::{Row, FILE};

/// The oldest summary schema version this chatcap reads.
const OLDEST_READABLE: u32 = 1;

/// Why a results folder cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The path is not a folder.
    #[error("{0}: not a results folder (no such folder)")]
    NoFolder(String),
    /// A file every results folder has is missing.
    #[error("{0}: missing; a chatcap results folder has summary.json, timeline.csv, resources.csv and histograms.hlog (or shard-*/histograms.hlog)")]
    Missing(String),
    /// The file is not what chatcap writes.
    #[error("{file}: not a chatcap run summary ({reason})")]
    Foreign {
        /// The file.
        file: String,
        /// What was found instead.
        reason: String,
    },
    /// Written by a chatcap too old (or too new) for this one.
    #[error("{file}: schema {found}, this chatcap reads {SCHEMA} back to version {OLDEST_READABLE}; re-run the scenario or report it with the chatcap that wrote it")]
    Version {
        /// The file.
        file: String,
        /// The schema it names.
        found: String,
    },
    /// The file ends early or does not parse.
    #[error("{file}: {reason}")]
    Bad {
        /// The file.
        file: String,
        /// What is wrong, with the line when known.
        reason: String,
    },
    /// The interval logs.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// A results folder, read.
pub struct Results {
    /// Where it is.
    pub dir: PathBuf,
    /// `summary.json`.
    pub summary: Summary,
    /// `timeline.csv`, one row per second.
    pub timeline: Vec<TimelineRow>,
    /// `resources.csv`, one row per process per second.
    pub resources: Vec<Sample>,
    /// Latency per tag (`<op>.<response|service>`) per second of the load.
    pub latency: BTreeMap<String, BTreeMap<u64, Histogram<u64>>>,
    /// `server_metrics.csv` (empty when the run scraped no server).
    pub server_metrics: Vec<Row>,
}

impl Results {
    /// Read and check `dir`.
    pub fn open(dir: &Path) -> Result<Results, ResultsError> {
        if !dir.is_dir() {
            return Err(ResultsError::NoFolder(dir.display().to_string()));
        }
        let summary = read_summary(&dir.join("summary.json"))?;
        let timeline = read_csv(&dir.join("timeline.csv"))?;
        let resources = read_csv(&dir.join("resources.csv"))?;
        let latency = hlog::per_second(&hlog::logs(dir)?)?;
        let server_metrics = server_metrics::read(dir)
            .map_err(|e| ResultsError::Bad {
                file: dir.join(FILE).display().to_string(),
                reason: e.to_string(),
            })?
            .unwrap_or_default();
        Ok(Results {
            dir: dir.to_path_buf(),
            summary,
            timeline,
            resources,
            latency,
            server_metrics,
        })
    }

    /// A short name for tables and legends: the folder's name, and the hardware profile
    /// the servers ran under when the folder's name does not already say it.
    pub fn label(&self) -> String {
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.dir.display().to_string());
        match &self.summary.profile {
            Some(p) if !name.contains(&p.name) => format!("{name} [{}]", p.name),
            _ => name,
        }
    }
}

fn read_text(path: &Path) -> Result<String, ResultsError> {
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ResultsError::Missing(path.display().to_string()),
        _ => ResultsError::Bad {
            file: path.display().to_string(),
            reason: e.to_string(),
        },
    })
}

fn read_summary(path: &Path) -> Result<Summary, ResultsError> {
    let file = path.display().to_string();
    let text = read_text(path)?;
    let bad = |e: serde_json::Error| ResultsError::Bad {
        file: file.clone(),
        reason: if e.is_eof() {
            format!(
                "truncated: the JSON ends early (line {}, column {})",
                e.line(),
                e.column()
            )
        } else {
            format!("line {}, column {}: {e}", e.line(), e.column())
        },
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(bad)?;
    let Some(schema) = value.get("schema").and_then(|s| s.as_str()) else {
        return Err(ResultsError::Foreign {
            file,
            reason: "no \"schema\" field".into(),
        });
    };
    let (current_name, current) = split_schema(SCHEMA).expect("SCHEMA is name/version");
    match split_schema(schema) {
        Some((name, v)) if name == current_name => {
            if v < OLDEST_READABLE || v > current {
                return Err(ResultsError::Version {
                    file,
                    found: schema.to_string(),
                });
            }
        }
        _ => {
            return Err(ResultsError::Foreign {
                file,
                reason: format!("schema {schema:?}"),
            })
        }
    }
    serde_json::from_value(value).map_err(|e| ResultsError::Bad {
        file: file.clone(),
        reason: format!("not the summary of its schema: {e}"),
    })
}

fn split_schema(s: &str) -> Option<(&str, u32)> {
    let (name, v) = s.rsplit_once('/')?;
    Some((name, v.parse().ok()?))
}

fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ResultsError> {
    let file = path.display().to_string();
    let text = read_text(path)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for row in reader.deserialize() {
        rows.push(row.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            let reason = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!(
                    "line {line}: {len} fields where the header has {expected_len} (truncated or not written by this chatcap)"
                ),
                _ => format!("line {line}: {e}"),
            };
            ResultsError::Bad {
                file: file.clone(),
                reason,
            }
        })?);
    }
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(ResultsError::Bad {
            file,
            reason: format!(
                "truncated: the last line ({}) has no line end",
                text.lines().count()
            ),
        });
    }
    Ok(rows)
}
