//! Reading a scenario file in its two stages: the TOML into the raw [`Scenario`] (syntax
//! problems), then the validator into a [`RunPlan`] (every other problem). The raw types
//! only mirror the file; this is where the stages meet.

use std::path::Path;

use super::error::{Problem, ScenarioError};
use super::plan::RunPlan;
use super::raw::Scenario;
use super::span::Source;
use super::validate::validate;

impl Scenario {
    /// Reads and validates a scenario file. Relative paths in it (tokens, topology) are
    /// taken relative to the file's folder.
    pub fn load(path: impl AsRef<Path>) -> Result<RunPlan, ScenarioError> {
        let path = path.as_ref();
        let text = super::span::read("scenario", path)?;
        Self::parse(&text, path)
    }

    /// Validates scenario `text`, as if read from `file` (used in messages and to resolve
    /// relative paths).
    pub fn parse(text: &str, file: &Path) -> Result<RunPlan, ScenarioError> {
        let src = Source::new(file, text);
        let raw: Scenario = toml::from_str(text).map_err(|e| {
            let problem = src.syntax_problem(&e);
            ScenarioError::Syntax(Problem {
                message: friendlier(&problem.message),
                ..problem
            })
        })?;
        validate(&raw, &src)
    }
}

/// Rewords the toml messages that do not speak the scenario format.
fn friendlier(message: &str) -> String {
    if message.starts_with("wanted exactly 1 element") {
        "each load entry has exactly one shape: ramp, hold, step, spike or soak".to_string()
    } else {
        message.to_string()
    }
}
