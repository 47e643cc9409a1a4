//! Scenario errors. Every problem names the file, the line and the field path, so a user can
//! go straight to it; validation collects all problems of a file before giving up.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The scenario file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// Field path, e.g. `load[2].ramp.over` (`(top level)` for the document).
    pub field: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.field,
            self.message
        )
    }
}

/// Why a scenario could not become a run plan.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{}: cannot read scenario file: {source}", file.display())]
    Read {
        /// The scenario file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML, or a value of the wrong type or form (unknown key, `"10 parsecs"` for a
    /// duration, …).
    #[error("{0}")]
    Syntax(Problem),
    /// Well-formed, but not a runnable scenario (one entry per problem found).
    #[error("{}", list(.0))]
    Invalid(Vec<Problem>),
}

impl ScenarioError {
    /// Every problem, whatever the stage.
    pub fn problems(&self) -> Vec<&Problem> {
        match self {
            ScenarioError::Read { .. } => Vec::new(),
            ScenarioError::Syntax(p) => vec![p],
            ScenarioError::Invalid(ps) => ps.iter().collect(),
        }
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
