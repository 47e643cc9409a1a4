//! What one process of a topology runs: [`Topology::serve_config`] turns the pool
//! description and a process name into that process's serve settings — a chat server
//! (its link, pool and metrics addresses, the pool's database, its peers) or a front end
//! (its client address, every chat server of the pool). `chatcap serve --topology FILE
//! --name NAME` and the pool launcher both start processes this way.

use crate::config::{LeaseTiming, PoolSettings, Role, ServeConfig};

use super::{Database, Topology};

/// Why a topology cannot say how one of its processes runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// The name is neither a chat server nor a front end of the topology.
    #[error("{file}: no chat server or front end is named {name:?} (it has: {known})")]
    UnknownName {
        /// The topology file.
        file: String,
        /// The name asked for.
        name: String,
        /// The names it has.
        known: String,
    },
    /// The database is a throwaway cluster that only the pool launcher can start.
    #[error(
        "{file}: the {what} database is \"throwaway\": `chatcap pool up` starts one; \
         for a process started by hand, give --database URL"
    )]
    Throwaway {
        /// The topology file.
        file: String,
        /// `content` or `compliance`.
        what: &'static str,
    },
}

impl Topology {
    /// The serve settings of the process `name`, on top of `base` (the topology's settings
    /// file, or the defaults). `database`: the content database URL when the topology's is
    /// `throwaway` (the pool launcher's cluster), also used for compliance then.
    pub fn serve_config(
        &self,
        name: &str,
        mut base: ServeConfig,
        database: Option<&str>,
    ) -> Result<ServeConfig, RoleError> {
        base.link_secret = self.link_secret.clone().or(base.link_secret);
        base.tls = base.tls.for_process(name);
        if let Some(server) = self.server(name) {
            base.role = Role::Chat;
            base.chat_listen = server.link_addr();
            base.listen = server.metrics_addr();
            base.database = Some(self.url(&self.content, database, "content")?);
            base.compliance.enabled = self.compliance_enabled;
            base.compliance.run_interval_secs = self.compliance_interval_secs;
            if let Some(db) = &self.compliance_db {
                base.compliance_database = Some(self.url(db, database, "compliance")?);
            }
            base.pool = Some(PoolSettings {
                pool: self.name.clone(),
                kind: self.kind,
                name: server.name.clone(),
                listen: server.pool_addr(),
                peers: self
                    .chat_servers
                    .iter()
                    .filter(|s| s.name != server.name)
                    .map(|s| (s.name.clone(), s.pool_addr()))
                    .collect(),
                initial_active: self.actives().map(|s| s.name.clone()).collect(),
                lease: LeaseTiming::default(),
            });
            return Ok(base);
        }
        if let Some(fe) = self.front_end(name) {
            base.role = Role::Frontend;
            base.listen = fe.addr();
            base.chat_servers = self.chat_servers.iter().map(|s| s.link_addr()).collect();
            return Ok(base);
        }
        let known: Vec<&str> = self
            .chat_servers
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.front_ends.iter().map(|f| f.name.as_str()))
            .collect();
        Err(RoleError::UnknownName {
            file: self.file.display().to_string(),
            name: name.to_string(),
            known: known.join(", "),
        })
    }

    fn url(
        &self,
        db: &Database,
        given: Option<&str>,
        what: &'static str,
    ) -> Result<String, RoleError> {
        match (db, given) {
            (_, Some(url)) => Ok(url.to_string()),
            (Database::Url(url), None) => Ok(url.clone()),
            (Database::Throwaway, None) => Err(RoleError::Throwaway {
                file: self.file.display().to_string(),
                what,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Topology {
        let text = r#"
name = "p"
link_secret = "s"
[database]
content = "postgres://db/chat"
[[chat_server]]
name = "chat1"
address = "127.0.0.11"
[[chat_server]]
name = "chat2"
address = "127.0.0.12"
active = false
[[front_end]]
name = "fe1"
address = "127.0.0.21"
"#;
        Topology::from_str(text, "p.toml").expect("valid")
    }

    #[test]
    fn each_name_gets_its_role_and_addresses() {
        let t = pool();
        let chat = t
            .serve_config("chat2", ServeConfig::default(), None)
            .expect("chat2");
        assert_eq!(chat.role, Role::Chat);
        assert_eq!(chat.chat_listen.to_string(), "127.0.0.12:5041");
        assert_eq!(chat.listen.to_string(), "127.0.0.12:9100");
        assert_eq!(chat.database.as_deref(), Some("postgres://db/chat"));
        let pool = chat.pool.expect("pool settings");
        assert_eq!(pool.listen.to_string(), "127.0.0.12:8011");
        assert_eq!(
            pool.peers,
            vec![("chat1".to_string(), "127.0.0.11:8011".parse().unwrap())]
        );
        assert_eq!(pool.initial_active, vec!["chat1".to_string()]);
        let fe = t
            .serve_config("fe1", ServeConfig::default(), None)
            .expect("fe1");
        assert_eq!(fe.role, Role::Frontend);
        assert_eq!(fe.listen.to_string(), "127.0.0.21:8080");
        assert_eq!(fe.chat_servers.len(), 2);
        assert_eq!(fe.link_secret.as_deref(), Some("s"));
        let e = t
            .serve_config("chat9", ServeConfig::default(), None)
            .unwrap_err();
        assert!(e.to_string().contains("chat1, chat2, fe1"), "{e}");
    }

    #[test]
    fn a_throwaway_database_needs_the_launchers_url() {
        let mut t = pool();
        t.content = Database::Throwaway;
        let e = t
            .serve_config("chat1", ServeConfig::default(), None)
            .unwrap_err();
        assert!(
            matches!(
                e,
                RoleError::Throwaway {
                    what: "content",
                    ..
                }
            ),
            "{e}"
        );
        let cfg = t
            .serve_config(
                "chat1",
                ServeConfig::default(),
                Some("postgres://127.0.0.1:5/x"),
            )
            .expect("with a URL");
        assert_eq!(cfg.database.as_deref(), Some("postgres://127.0.0.1:5/x"));
    }
}
