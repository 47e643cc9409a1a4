//! The server settings file (`--config`) as the command line reads it: a TOML
//! `ServeConfig`, or the defaults without one. Errors in it are the user's (exit code 2).

use chatcap_server::config::ServeConfig;

use crate::usage::UsageError;

/// The settings file (`--config`), or the defaults without one; a file that cannot be
/// read or parsed is a usage error naming it.
pub fn settings_file(path: Option<&std::path::Path>) -> anyhow::Result<ServeConfig> {
    let Some(path) = path else {
        return Ok(ServeConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    let mut cfg = toml::from_str::<ServeConfig>(&text)
        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    // Certificate paths are the file's: relative to its folder, not to where we run.
    cfg.tls
        .resolve(path.parent().unwrap_or(std::path::Path::new("")));
    Ok(cfg)
}
