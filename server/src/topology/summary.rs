//! The short table `chatcap topology check` prints for a valid topology: the pool, its
//! databases, then one row per chat server and per front end. Never prints a secret or a
//! database password.

use super::Topology;

impl Topology {
    /// A human-readable table of the pool (pool, kind, databases, one row per chat server
    /// and per front end), ending with a newline.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let actives = self.actives().count();
        let standbys = self.standbys().count();
        out += &format!("pool        {}\n", self.name);
        out += &format!(
            "kind        {} ({actives} active + {standbys} standby {}, {})\n",
            self.kind,
            plural(actives + standbys, "chat server"),
            count(self.front_ends.len(), "front end")
        );
        out += &format!("database    {}\n", self.content.redacted());
        let compliance = match (&self.compliance_db, self.compliance_enabled) {
            (Some(db), true) => format!(
                "on, every {} s, database {}",
                self.compliance_interval_secs,
                db.redacted()
            ),
            _ => "off".to_string(),
        };
        out += &format!("compliance  {compliance}\n");
        let secret = if self.link_secret.is_some() {
            "set"
        } else {
            "none (links are trusted)"
        };
        out += &format!("link secret {secret}\n");
        if let Some(s) = &self.settings {
            out += &format!("settings    {}\n", s.display());
        }

        let mut rows = vec![vec![
            "chat server".to_string(),
            "role".to_string(),
            "link".to_string(),
            "pool".to_string(),
            "metrics".to_string(),
        ]];
        for s in &self.chat_servers {
            rows.push(vec![
                s.name.clone(),
                if s.active { "active" } else { "standby" }.to_string(),
                s.link_addr().to_string(),
                s.pool_addr().to_string(),
                s.metrics_addr().to_string(),
            ]);
        }
        out.push('\n');
        out += &table(&rows);

        let mut rows = vec![vec!["front end".to_string(), "clients".to_string()]];
        for f in &self.front_ends {
            rows.push(vec![f.name.clone(), f.ws_url()]);
        }
        out.push('\n');
        out += &table(&rows);
        out
    }
}

/// `noun`, plural unless `n` is 1.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}

/// `n noun(s)`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {}", plural(n, noun))
}

/// Rows as left-aligned columns two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line += cell;
            if c + 1 < row.len() {
                let pad = widths[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{ChatServerSpec, Database, FrontEndSpec, PoolKind, Topology};

    fn server(name: &str, last: u8, active: bool) -> ChatServerSpec {
        ChatServerSpec {
            name: name.into(),
            address: [127, 0, 0, last].into(),
            active,
            link_port: 5041,
            pool_port: 8011,
            metrics_port: 9100,
        }
    }

    #[test]
    fn the_summary_lists_every_process_and_no_secret() {
        let t = Topology {
            file: "t.toml".into(),
            name: "pool1".into(),
            kind: PoolKind::Multiple,
            link_secret: Some("hush".into()),
            settings: None,
            content: Database::Url("postgres://u:pw@h/db".into()),
            compliance_db: None,
            compliance_enabled: false,
            compliance_interval_secs: 900,
            chat_servers: vec![server("chat1", 11, true), server("chat2", 12, false)],
            front_ends: vec![FrontEndSpec {
                name: "fe1".into(),
                address: [127, 0, 0, 21].into(),
                port: 8080,
            }],
        };
        let s = t.summary();
        for want in [
            "pool        pool1",
            "1 active + 1 standby chat servers, 1 front end",
            "postgres://u:***@h/db",
            "link secret set",
            "chat1        active   127.0.0.11:5041  127.0.0.11:8011  127.0.0.11:9100",
            "chat2        standby  127.0.0.12:5041",
            "fe1        ws://127.0.0.21:8080/ws",
        ] {
            assert!(s.contains(want), "{want:?} not in\n{s}");
        }
        assert!(!s.contains("hush") && !s.contains(":pw@"), "{s}");
    }
}
