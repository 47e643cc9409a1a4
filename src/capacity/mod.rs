//! Capacity: `chatcap capacity` finds the users a scenario supports on a hardware profile
//! (stepped or feedback search, each step a normal results folder), says what bound it and
//! where latency bends, and fits a capacity model (`capacity.json`) that `chatcap plan`
//! sizes pools from (docs/CAPACITY.md).
//!
//! # Layout
//! - [`search`]: which user count to try next (no I/O).
//! - [`scale`]: a scenario scaled to a step's users.
//! - [`step`]: a step's results folder reduced to the figures capacity needs.
//! - [`bound`]: what bound a search; the knee of latency against users.
//! - [`fit`]: least-squares lines and medians.
//! - [`model`]: `capacity.json` and the model fitted from the steps.
//! - [`render`]: `capacity.md` and `capacity.html`.
//! - [`cmd`]: `chatcap capacity` (runs the steps as `chatcap run` children).
//! - [`plan`] and [`plan_cmd`]: `chatcap plan`, sizing from models.

pub mod bound;
pub mod cmd;
pub mod fit;
pub mod model;
pub mod plan;
pub mod plan_cmd;
pub mod render;
pub mod scale;
pub mod search;
pub mod step;
