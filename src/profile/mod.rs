//! Hardware profiles: files that limit the system under test (a CPU set, a CPU quota, a
//! memory limit, server worker threads), applied to the server processes a run starts and
//! recorded in its results (docs/PROFILES.md). The load generator is never limited.
//!
//! # Layout
//! - [`file`]: profile files, read and validated (located `file:line: field: message`).
//! - [`cpus`]: CPU lists (`0-1,3`) and this process's affinity.
//! - [`cgroup`]: where this process's cgroups are (mountinfo, `/proc/self/cgroup`).
//! - [`confine`]: applying a profile (cgroup v2, v1, affinity) and removing it after.
//! - [`record`]: what a run records of it (`summary.json`'s `profile`).

pub mod cgroup;
pub mod confine;
pub mod cpus;
pub mod file;
pub mod record;

pub use confine::Confinement;
pub use file::Profile;
pub use record::ProfileRecord;
