//! Why the target could not be made ready: provisioning, starting its processes, or an
//! unsupported kind. Shared by `target` and the processes it starts; no I/O here.

/// Why the target could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The population could not be provisioned.
    #[error("provisioning failed: {0}")]
    Provision(String),
    /// The server process could not be started.
    #[error("cannot start the server ({binary}): {source}")]
    Spawn {
        /// The binary.
        binary: String,
        /// Why.
        source: std::io::Error,
    },
    /// A server process did not become ready.
    #[error("the {name} process did not become ready within {secs} s (see {log})")]
    NotReady {
        /// Which process.
        name: String,
        /// How long we waited.
        secs: u64,
        /// Its log file.
        log: String,
    },
    /// A file or folder could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// This target kind is not supported by this build.
    #[error("{0}")]
    Unsupported(String),
    /// The pool could not be started.
    #[error("cannot start the pool: {0}")]
    Pool(String),
}
