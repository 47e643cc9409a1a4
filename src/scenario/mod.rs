//! Scenarios: TOML files in `scenarios/`, read in two stages — the raw file as written
//! ([`raw`]) and the validated [`plan::RunPlan`] the runner executes. Every error names the
//! file, line and field.

pub mod plan;

pub use plan::RunPlan;
