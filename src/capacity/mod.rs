//! Capacity: `chatcap capacity` finds the users a scenario supports on a hardware profile
//! (stepped or feedback search, each step a normal results folder), says what bound it and
//! where latency bends, and fits a capacity model (`capacity.json`) that `chatcap plan`
//! sizes pools from (docs/CAPACITY.md).
//!
//! # Layout
//! - [`search`]: which user count to try next (no I/O).
//! - [`scale`]: a scenario scaled to a step's users.
//! - [`fit`]: least-squares lines and medians.

pub mod fit;
pub mod scale;
pub mod search;
