//! The pool under test: a PostgreSQL server (the one `--database` names, or a throwaway
//! cluster started here), a fresh database on it holding the bench's users and rooms (made
//! by [`target::prepare`], as for `bench server`), a copy of the topology that points at
//! that database and at settings lifting the per-session rate limit, and the pool's
//! processes started from the copy by the pool launcher.
//!
//! Users must exist before the chat servers start (they load the directory once), so the
//! order is: server, database, users, processes. Stopping runs the other way.

use std::path::Path;

use anyhow::Context;
use chatcap_server::topology::Topology;

use crate::bench::target::{self, Prepared, SERVER_SETTINGS};
use crate::pool::launch::{Launched, Options, PoolDatabase, Throwaway};

/// The PostgreSQL server the bench's database is created on.
pub struct PgServer {
    /// Its URL, without a database.
    pub url: String,
    /// The cluster, when started here (stopped by [`PgServer::stop`]).
    throwaway: Option<Throwaway>,
}

impl PgServer {
    /// `given`, or a throwaway cluster when `None`.
    pub async fn start(given: Option<&str>) -> anyhow::Result<PgServer> {
        Ok(match given {
            Some(url) => PgServer {
                url: url.to_string(),
                throwaway: None,
            },
            None => {
                let t = Throwaway::start()
                    .await
                    .context("starting a throwaway PostgreSQL cluster")?;
                PgServer {
                    url: t.url.clone(),
                    throwaway: Some(t),
                }
            }
        })
    }

    /// "throwaway cluster" or "given server", for the report.
    pub fn kind(&self) -> &'static str {
        if self.throwaway.is_some() {
            "throwaway cluster"
        } else {
            "given server"
        }
    }

    /// Stop the cluster if it was started here.
    pub async fn stop(self) {
        if let Some(t) = self.throwaway {
            t.stop().await;
        }
    }
}

/// A fresh database on `server` with `users` users and `rooms` rooms (user i tagged with
/// room i mod rooms; rooms are open, so anyone may join any of them).
pub async fn provision(server: &PgServer, users: usize, rooms: usize) -> anyhow::Result<Prepared> {
    let backend = target::Backend::Postgres {
        server_url: server.url.clone(),
    };
    let setup = target::Setup {
        posters: users,
        rooms,
        idle: 0,
    };
    target::prepare(&backend, &setup).await
}

/// The serve settings of every process: the topology's own settings file (if any) with the
/// `[front]` keys of [`SERVER_SETTINGS`] (the rate limit lifted) set over it.
pub fn settings_text(original: Option<&str>) -> anyhow::Result<String> {
    let mut table: toml::Table = match original {
        Some(text) => toml::from_str(text).context("the topology's settings file")?,
        None => toml::Table::new(),
    };
    let lift: toml::Table = toml::from_str(SERVER_SETTINGS).context("SERVER_SETTINGS")?;
    for (section, values) in lift {
        let target = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let (Some(target), toml::Value::Table(values)) = (target.as_table_mut(), values) else {
            anyhow::bail!("[{section}] of the settings is not a table");
        };
        target.extend(values);
    }
    Ok(toml::to_string(&table)?)
}

/// The topology file `original` with `settings = <settings>` and its content database
/// replaced by `database`; everything else as written.
pub fn topology_text(original: &str, settings: &Path, database: &str) -> anyhow::Result<String> {
    let mut root: toml::Table = toml::from_str(original).context("the topology file")?;
    root.insert(
        "settings".into(),
        toml::Value::String(settings.display().to_string()),
    );
    let db = root
        .entry("database")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .context("[database] of the topology is not a table")?;
    db.insert("content".into(), toml::Value::String(database.to_string()));
    Ok(toml::to_string(&root)?)
}

/// Write the settings and the topology copy into the bench's folder and start the pool
/// from the copy; on failure, what was started is stopped.
pub async fn launch(original: &Topology, prepared: &Prepared) -> anyhow::Result<Launched> {
    let settings = match &original.settings {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let settings_path = prepared.dir.join("pool-settings.toml");
    std::fs::write(&settings_path, settings_text(settings.as_deref())?)
        .with_context(|| format!("writing {}", settings_path.display()))?;
    let text = std::fs::read_to_string(&original.file)
        .with_context(|| format!("reading {}", original.file.display()))?;
    let copy = prepared.dir.join("topology.toml");
    std::fs::write(
        &copy,
        topology_text(&text, &settings_path, &prepared.database)?,
    )
    .with_context(|| format!("writing {}", copy.display()))?;
    let topology = Topology::load(&copy).map_err(|e| anyhow::anyhow!("{e}"))?;
    let exe = std::env::current_exe().context("finding the chatcap binary")?;
    let mut options = Options::default();
    if let Ok(level) = std::env::var("CHATCAP_SERVER_LOG") {
        options.env.push(("RUST_LOG".into(), level));
    }
    let database = PoolDatabase {
        url: prepared.database.clone(),
        throwaway: None,
    };
    Launched::start(
        topology,
        &exe,
        database,
        &prepared.dir.join("pool"),
        &options,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_keep_the_topologys_and_lift_the_rate_limit() {
        let text = settings_text(Some(
            "[front]\nrate_burst = 5.0\nsocket_buffer_bytes = 8192\n[store]\nx = 1\n",
        ))
        .expect("merges");
        let t: toml::Table = toml::from_str(&text).expect("toml");
        let front = t["front"].as_table().expect("front");
        assert_eq!(front["rate_burst"].as_float(), Some(1e9));
        assert_eq!(front["rate_per_sec"].as_float(), Some(1e9));
        assert_eq!(front["socket_buffer_bytes"].as_integer(), Some(8192));
        assert_eq!(t["store"]["x"].as_integer(), Some(1));
        let bare: toml::Table = toml::from_str(&settings_text(None).expect("bare")).expect("toml");
        assert_eq!(bare["front"]["rate_per_sec"].as_float(), Some(1e9));
        assert!(settings_text(Some("front = 3")).is_err());
    }

    #[test]
    fn the_topology_copy_points_at_the_bench_database_and_settings() {
        let original =
            "name = \"p\"\nsettings = \"old.toml\"\n[database]\ncontent = \"throwaway\"\n\
                        [[chat_server]]\nname = \"chat1\"\naddress = \"127.0.0.11\"\n\
                        [[front_end]]\nname = \"fe1\"\naddress = \"127.0.0.21\"\n";
        let text = topology_text(original, Path::new("/tmp/b/s.toml"), "postgres://h:1/b")
            .expect("rewritten");
        let t = Topology::from_str(&text, "/tmp/b/topology.toml").expect("still valid");
        assert_eq!(t.settings.as_deref(), Some(Path::new("/tmp/b/s.toml")));
        assert_eq!(
            t.content,
            chatcap_server::topology::Database::Url("postgres://h:1/b".into())
        );
        assert_eq!((t.chat_servers.len(), t.front_ends.len()), (1, 1));
    }
}
