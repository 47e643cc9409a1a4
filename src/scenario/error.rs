//! Scenario errors. Every problem names the file, the line and the field path, so a user can
//! go straight to it; validation collects all problems of a file before giving up.

/// One thing wrong with a scenario file (the located problem shared with topology files).
pub use super::span::Problem;

/// Why a scenario could not become a run plan: the error every TOML file of ours has.
pub type ScenarioError = super::span::FileError;
