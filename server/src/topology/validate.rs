//! Stage two: a [`RawTopology`] becomes a [`Topology`], or the list of every problem found,
//! each located (file, line, field). The rules are the Lync 2013 Topology Builder's limits
//! (docs/TOPOLOGY.md says why each exists). Reads the environment only through the lookup
//! it is given, and never the network or a database.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::raw::{RawChatServer, RawFrontEnd, RawKind, RawTopology};
use super::{
    ChatServerSpec, Database, FrontEndSpec, PoolKind, Topology, DEFAULT_COMPLIANCE_INTERVAL_SECS,
    DEFAULT_FRONT_END_PORT, DEFAULT_LINK_PORT, DEFAULT_METRICS_PORT, DEFAULT_POOL_PORT, MAX_ACTIVE,
    MAX_SERVERS,
};
use crate::toml_spans::{FieldPath, Problem, Source};

/// Collects problems, each located through the document's spans.
struct Ctx<'a> {
    src: &'a Source<'a>,
    problems: Vec<Problem>,
}

impl Ctx<'_> {
    fn err(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.problems.push(self.src.problem(path, message));
    }
}

/// Checks `raw` (read from `src`; `env` looks up environment variables) and builds the
/// topology, or returns every problem, ordered by line.
pub(super) fn validate(
    raw: &RawTopology,
    src: &Source,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Topology, Vec<Problem>> {
    let mut cx = Ctx {
        src,
        problems: Vec::new(),
    };
    let root = FieldPath::root();

    let name = match raw.name.as_deref() {
        None => {
            cx.err(
                &root.key("name"),
                "required: the pool's name (shown in status)",
            );
            String::new()
        }
        Some(n) if n.trim().is_empty() => {
            cx.err(&root.key("name"), "must not be empty");
            String::new()
        }
        Some(n) => n.to_string(),
    };
    let kind = match raw.kind {
        RawKind::Single => PoolKind::Single,
        RawKind::Multiple => PoolKind::Multiple,
    };
    let link_secret = link_secret(&mut cx, raw, env);
    let settings = match raw.settings.as_deref() {
        Some("") => {
            cx.err(&root.key("settings"), "must not be empty");
            None
        }
        Some(s) => Some(relative_to(src.file(), s)),
        None => None,
    };

    let db = root.key("database");
    let content = match raw.database.content.as_deref() {
        Some(s) => database(&mut cx, &db.key("content"), s, kind),
        None => {
            cx.err(
                &db.key("content"),
                "required: a postgres:// URL, \"throwaway\", or a sqlite: URL (kind = \"single\")",
            );
            None
        }
    };
    let compliance_db = raw
        .database
        .compliance
        .as_deref()
        .and_then(|s| database(&mut cx, &db.key("compliance"), s, kind));
    let compliance_enabled = raw.compliance.enabled;
    if compliance_enabled && raw.database.compliance.is_none() {
        cx.err(
            &db.key("compliance"),
            "required when compliance.enabled = true (it may be the same URL as content)",
        );
    }
    let compliance_interval_secs = match raw.compliance.run_interval_secs {
        None => DEFAULT_COMPLIANCE_INTERVAL_SECS,
        Some(v) if v >= 1 => v as u64,
        Some(_) => {
            cx.err(
                &root.key("compliance").key("run_interval_secs"),
                "must be at least 1 (seconds between export runs)",
            );
            DEFAULT_COMPLIANCE_INTERVAL_SECS
        }
    };

    let chat_servers: Vec<Option<ChatServerSpec>> = raw
        .chat_server
        .iter()
        .enumerate()
        .map(|(i, s)| chat_server(&mut cx, &root.key("chat_server").index(i), s))
        .collect();
    let front_ends: Vec<Option<FrontEndSpec>> = raw
        .front_end
        .iter()
        .enumerate()
        .map(|(i, f)| front_end(&mut cx, &root.key("front_end").index(i), f))
        .collect();

    unique_names(&mut cx, raw);
    counts(&mut cx, raw, &name, kind);
    unique_listeners(&mut cx, &chat_servers, &front_ends);

    if !cx.problems.is_empty() {
        let mut problems = cx.problems;
        // Stable: problems on one line keep the order the rules found them in.
        problems.sort_by_key(|p| p.line);
        return Err(problems);
    }
    // No problem recorded means every part above was built.
    let (Some(content), Some(chat_servers), Some(front_ends)) = (
        content,
        chat_servers.into_iter().collect::<Option<Vec<_>>>(),
        front_ends.into_iter().collect::<Option<Vec<_>>>(),
    ) else {
        return Err(vec![src.problem(&root, "incomplete topology")]);
    };
    Ok(Topology {
        file: src.file().to_path_buf(),
        name,
        kind,
        link_secret,
        settings,
        content,
        compliance_db,
        compliance_enabled,
        compliance_interval_secs,
        chat_servers,
        front_ends,
    })
}

/// `link_secret` or `link_secret_env` (not both), resolved.
fn link_secret(
    cx: &mut Ctx,
    raw: &RawTopology,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let root = FieldPath::root();
    match (raw.link_secret.as_deref(), raw.link_secret_env.as_deref()) {
        (None, None) => None,
        (Some(_), Some(_)) => {
            cx.err(
                &root.key("link_secret_env"),
                "give link_secret or link_secret_env, not both",
            );
            None
        }
        (Some(""), None) => {
            cx.err(
                &root.key("link_secret"),
                "must not be empty (leave it out for trusted links)",
            );
            None
        }
        (Some(s), None) => Some(s.to_string()),
        (None, Some("")) => {
            cx.err(
                &root.key("link_secret_env"),
                "must not be empty: the name of an environment variable holding the secret",
            );
            None
        }
        (None, Some(var)) => match env(var) {
            Some(s) if !s.is_empty() => Some(s),
            Some(_) => {
                cx.err(
                    &root.key("link_secret_env"),
                    format!("environment variable `{var}` is empty"),
                );
                None
            }
            None => {
                cx.err(
                    &root.key("link_secret_env"),
                    format!("environment variable `{var}` is not set"),
                );
                None
            }
        },
    }
}

/// `path` as written in `file`: relative paths are taken from the file's folder.
fn relative_to(file: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new("")).join(p)
    }
}

/// A database value: `postgres://…`, `postgresql://…`, `throwaway` or `sqlite:…` (the last
/// only in a single-server pool).
fn database(cx: &mut Ctx, path: &FieldPath, value: &str, kind: PoolKind) -> Option<Database> {
    if value == "throwaway" {
        return Some(Database::Throwaway);
    }
    let postgres = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|scheme| value.strip_prefix(scheme));
    if let Some(rest) = postgres {
        if rest.is_empty() {
            cx.err(path, "a postgres:// URL needs a host and a database");
            return None;
        }
        return Some(Database::Url(value.to_string()));
    }
    if let Some(rest) = value.strip_prefix("sqlite:") {
        if kind == PoolKind::Multiple {
            cx.err(
                path,
                "a multiple-server pool shares one PostgreSQL database; sqlite is only for kind = \"single\"",
            );
            return None;
        }
        if rest.is_empty() {
            cx.err(
                path,
                "a sqlite: URL needs a file, e.g. sqlite:data/content.db",
            );
            return None;
        }
        return Some(Database::Url(value.to_string()));
    }
    cx.err(
        path,
        format!(
            "must be a postgres:// URL, \"throwaway\" or a sqlite: URL, not {:?}",
            Database::Url(value.to_string()).redacted()
        ),
    );
    None
}

/// Whether `name` is a server or front-end name: `[A-Za-z0-9_.-]{1,64}`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn check_name(cx: &mut Ctx, path: &FieldPath, name: &str) {
    if name.is_empty() {
        cx.err(&path.key("name"), "required, and must not be empty");
    } else if !valid_name(name) {
        cx.err(
            &path.key("name"),
            format!("{name:?} is not a name: use 1–64 letters, digits, `_`, `.` or `-`"),
        );
    }
}

fn address(cx: &mut Ctx, path: &FieldPath, value: &str) -> Option<IpAddr> {
    if value.is_empty() {
        cx.err(
            &path.key("address"),
            "required: an IP address (v4 or v6), e.g. \"127.0.0.11\"",
        );
        return None;
    }
    match value.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            cx.err(
                &path.key("address"),
                format!("must be an IP address (v4 or v6), not {value:?}"),
            );
            None
        }
    }
}

/// A port field: its default when absent; 1–65535 when given.
fn port(cx: &mut Ctx, path: &FieldPath, value: Option<i64>, default: u16) -> Option<u16> {
    match value {
        None => Some(default),
        Some(v) => match u16::try_from(v) {
            Ok(p) if p != 0 => Some(p),
            _ => {
                cx.err(
                    path,
                    format!("must be a port 1–65535, not {v} (the pool's processes must know each other's ports, so 0 is refused)"),
                );
                None
            }
        },
    }
}

fn chat_server(cx: &mut Ctx, path: &FieldPath, raw: &RawChatServer) -> Option<ChatServerSpec> {
    check_name(cx, path, &raw.name);
    let address = address(cx, path, &raw.address);
    let link_port = port(cx, &path.key("link_port"), raw.link_port, DEFAULT_LINK_PORT);
    let pool_port = port(cx, &path.key("pool_port"), raw.pool_port, DEFAULT_POOL_PORT);
    let metrics_port = port(
        cx,
        &path.key("metrics_port"),
        raw.metrics_port,
        DEFAULT_METRICS_PORT,
    );
    Some(ChatServerSpec {
        name: raw.name.clone(),
        address: address?,
        active: raw.active.unwrap_or(true),
        link_port: link_port?,
        pool_port: pool_port?,
        metrics_port: metrics_port?,
    })
}

fn front_end(cx: &mut Ctx, path: &FieldPath, raw: &RawFrontEnd) -> Option<FrontEndSpec> {
    check_name(cx, path, &raw.name);
    let address = address(cx, path, &raw.address);
    let port = port(cx, &path.key("port"), raw.port, DEFAULT_FRONT_END_PORT);
    Some(FrontEndSpec {
        name: raw.name.clone(),
        address: address?,
        port: port?,
    })
}

/// Server and front-end names are unique across both lists: one name, one process.
fn unique_names(cx: &mut Ctx, raw: &RawTopology) {
    let root = FieldPath::root();
    let servers = raw
        .chat_server
        .iter()
        .enumerate()
        .map(|(i, s)| (root.key("chat_server").index(i), &s.name));
    let fronts = raw
        .front_end
        .iter()
        .enumerate()
        .map(|(i, f)| (root.key("front_end").index(i), &f.name));
    let mut seen: HashMap<&str, FieldPath> = HashMap::new();
    for (path, name) in servers.chain(fronts) {
        if !valid_name(name) {
            continue; // already reported
        }
        match seen.get(name.as_str()) {
            Some(first) => cx.err(
                &path.key("name"),
                format!("name `{name}` is already used by {first}; names are unique across chat servers and front ends"),
            ),
            None => {
                seen.insert(name, path);
            }
        }
    }
}

/// How many servers and front ends a pool may have.
fn counts(cx: &mut Ctx, raw: &RawTopology, name: &str, kind: PoolKind) {
    let servers = FieldPath::root().key("chat_server");
    let n = raw.chat_server.len();
    let active_of = |s: &RawChatServer| s.active.unwrap_or(true);
    if n == 0 {
        cx.err(
            &servers,
            "a pool needs at least one chat server ([[chat_server]])",
        );
    } else if kind == PoolKind::Single {
        if n > 1 {
            cx.err(
                &servers.index(1),
                format!("a single-server pool cannot gain servers: pool `{name}` has kind = \"single\" and {n} chat servers"),
            );
        }
        if !active_of(&raw.chat_server[0]) {
            cx.err(
                &servers.index(0).key("active"),
                "the chat server of a single-server pool must be active",
            );
        }
    } else {
        let actives: Vec<usize> = (0..n).filter(|&i| active_of(&raw.chat_server[i])).collect();
        if actives.is_empty() {
            cx.err(
                &servers,
                format!("a pool needs at least one active chat server; all {n} are standby"),
            );
        }
        if let Some(&fifth) = actives.get(MAX_ACTIVE) {
            cx.err(
                &servers.index(fifth).key("active"),
                format!(
                    "a pool has at most {MAX_ACTIVE} active chat servers (Lync 2013); this one is active number {}: make it a standby (active = false)",
                    MAX_ACTIVE + 1
                ),
            );
        }
        if n > MAX_SERVERS {
            cx.err(
                &servers.index(MAX_SERVERS),
                format!("a pool has at most {MAX_SERVERS} chat servers in all ({MAX_ACTIVE} active + {MAX_ACTIVE} standby, Lync 2013); this one has {n}"),
            );
        }
    }
    if raw.front_end.is_empty() {
        cx.err(
            &FieldPath::root().key("front_end"),
            "a pool needs at least one front end ([[front_end]]): clients connect only through front ends",
        );
    }
}

/// One listener: its address, the field that sets its port, and which process owns it.
struct Listener {
    addr: SocketAddr,
    field: FieldPath,
    owner: String,
}

/// Every listener has its own (address, port); within one server the three ports differ.
fn unique_listeners(
    cx: &mut Ctx,
    servers: &[Option<ChatServerSpec>],
    fronts: &[Option<FrontEndSpec>],
) {
    let root = FieldPath::root();
    let mut all: Vec<Listener> = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        let Some(s) = s else { continue };
        let path = root.key("chat_server").index(i);
        let ports = [
            ("link_port", s.link_addr()),
            ("pool_port", s.pool_addr()),
            ("metrics_port", s.metrics_addr()),
        ];
        for (k, (key, addr)) in ports.iter().enumerate() {
            if let Some((first, _)) = ports[..k].iter().find(|(_, a)| a.port() == addr.port()) {
                cx.err(
                    &path.key(key),
                    format!("{key} must differ from {first} ({}): each listener of a chat server needs its own port", addr.port()),
                );
                continue;
            }
            all.push(Listener {
                addr: *addr,
                field: path.key(key),
                owner: format!("chat server `{}`", s.name),
            });
        }
    }
    for (i, f) in fronts.iter().enumerate() {
        let Some(f) = f else { continue };
        all.push(Listener {
            addr: f.addr(),
            field: root.key("front_end").index(i).key("port"),
            owner: format!("front end `{}`", f.name),
        });
    }
    for (k, l) in all.iter().enumerate() {
        if let Some(first) = all[..k].iter().find(|o| clash(o.addr, l.addr)) {
            cx.err(
                &l.field,
                format!(
                    "{} is already used by {} ({}); every listener needs its own address and port",
                    l.addr, first.owner, first.field
                ),
            );
        }
    }
}

/// Whether two listeners cannot both bind: the same port on the same address, or on an
/// unspecified address (0.0.0.0, ::) of the same family, which takes the port on all of them.
fn clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}
