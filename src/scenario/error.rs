//! Scenario errors. Every problem names the file, the line and the field path, so a user can
//! go straight to it; validation collects all problems of a file before giving up.

use std::path::PathBuf;

/// One thing wrong with a scenario file (the located problem shared with topology files).
pub use super::span::Problem;

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
