//! Scenarios: TOML files in `scenarios/`, read in two stages — the raw file as written
//! ([`raw::Scenario`]) and the validated [`plan::RunPlan`] the runner executes. Every error
//! names the file, line and field. The format is documented in `scenarios/README.md`.
//!
//! # Layout
//! - [`load`]: `Scenario::load` and `Scenario::parse`: the file through both stages.
//! - [`raw`]: serde types mirroring the file, value forms (durations, rates, levels).
//! - `validate` (private): raw → plan, collecting every problem in a `ctx` (private);
//!   [`shape`] turns load shapes into phases, [`slo`] reads thresholds.
//! - [`lync`]: the Lync 2013 user model that `model = "lync2013"` stands for.
//! - [`derived`]: the dry-run explanation of a plan's rates.
//! - [`span`]: field paths and byte spans → lines; the server crate's
//!   [`chatcap_server::toml_spans`], shared with pool topology files.

mod ctx;
pub mod derived;
pub mod error;
pub mod load;
pub mod lync;
pub mod plan;
pub mod raw;
pub mod shape;
pub mod slo;
mod validate;

pub use chatcap_server::toml_spans as span;

#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod tests;

pub use derived::{derived_rates, dry_run_table, DerivedRates};
pub use error::{Problem, ScenarioError};
pub use plan::RunPlan;
pub use raw::Scenario;
