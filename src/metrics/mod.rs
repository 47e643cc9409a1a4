//! Measurements of a run: latency histograms per operation (service time and response
//! time from the intended start, side by side), correctness counters, and the per-second
//! timeline.
//!
//! # Layout
//! - [`recorder`]: what virtual users record into — a few slots, each a mutex-guarded set
//!   of interval histograms; the collector swaps them every second and merges exactly.
//! - [`collector`]: the once-a-second task: swap, merge into run totals, write the
//!   HdrHistogram interval log, append a timeline row.
//! - [`resources`]: CPU, memory, descriptors and threads of the processes, from `/proc`,
//!   and the database size.
//! - [`prom_text`]: the Prometheus text format, parsed (what the servers' `/metrics` say).
//! - [`server_metrics`]: the rows of `server_metrics.csv` (the servers' metrics over time).
//!
//! This module only counts; it never talks to the server and never renders reports.

pub mod collector;
pub mod prom_text;
pub mod recorder;
pub mod resources;
pub mod server_metrics;

pub use recorder::{micros, Metric, Recorder, Recorders};
