//! Topology files: every rule with the line and field it names, syntax errors, the
//! environment secret and the helpers (the summary table is tested beside it, in
//! `summary.rs`; reading files, in `file_tests.rs`).

use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::*;

fn file() -> PathBuf {
    PathBuf::from("topologies/t.toml")
}

/// A valid two-server pool; tests change one thing in it.
const GOOD: &str = r#"name = "pool1"
kind = "multiple"

[database]
content = "throwaway"

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

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Topology, TopologyError> {
    Topology::parse_with_env(text, &file(), &no_env)
}

fn good(text: &str) -> Topology {
    parse(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

/// `GOOD` with `from` replaced by `to` (which must occur).
fn edit(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from:?} not in GOOD");
    GOOD.replacen(from, to, 1)
}

/// 1-based line of the `nth` (0-based) line of `text` containing `needle`.
fn line_of(text: &str, needle: &str, nth: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} #{nth} not in\n{text}"))
        .0
        + 1
}

/// The single problem of `text`; asserts its field and that it is on the `nth` line
/// containing `needle`. Returns its message.
fn one(text: &str, field: &str, needle: &str, nth: usize) -> String {
    let err = parse(text).expect_err("should not validate");
    let problems = err.problems();
    assert_eq!(problems.len(), 1, "{err}\n---\n{text}");
    let p = problems[0];
    assert_eq!(p.file, file());
    assert_eq!(
        (p.field.as_str(), p.line),
        (field, line_of(text, needle, nth)),
        "{p}\n---\n{text}"
    );
    p.message.clone()
}

fn server(name: &str, ip: &str, active: bool) -> String {
    format!("\n[[chat_server]]\nname = \"{name}\"\naddress = \"{ip}\"\nactive = {active}\n")
}

#[test]
fn a_good_file_has_the_defaults() {
    let t = good(GOOD);
    assert_eq!(t.file, file());
    assert_eq!((t.name.as_str(), t.kind), ("pool1", PoolKind::Multiple));
    assert_eq!(t.content, Database::Throwaway);
    assert_eq!(t.compliance_db, None);
    assert!(!t.compliance_enabled);
    assert_eq!(t.compliance_interval_secs, 900);
    assert_eq!(
        (t.link_secret.as_deref(), t.settings.as_deref()),
        (None, None)
    );
    let c1 = t.server("chat1").expect("chat1");
    assert!(c1.active);
    assert_eq!(c1.link_addr().to_string(), "127.0.0.11:5041");
    assert_eq!(c1.pool_addr().to_string(), "127.0.0.11:8011");
    assert_eq!(c1.metrics_addr().to_string(), "127.0.0.11:9100");
    let names = |it: &mut dyn Iterator<Item = &ChatServerSpec>| {
        it.map(|s| s.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&mut t.actives()), ["chat1"]);
    assert_eq!(names(&mut t.standbys()), ["chat2"]);
    let fe = t.front_end("fe1").expect("fe1");
    assert_eq!(fe.ws_url(), "ws://127.0.0.21:8080/ws");
    assert!(t.server("fe1").is_none() && t.front_end("chat1").is_none());
}

#[test]
fn kind_defaults_to_multiple_and_ipv6_urls_are_bracketed() {
    let text = edit("kind = \"multiple\"\n", "").replace("127.0.0.21", "::1");
    let t = good(&text);
    assert_eq!(t.kind, PoolKind::Multiple);
    assert_eq!(t.front_ends[0].address, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(t.front_ends[0].ws_url(), "ws://[::1]:8080/ws");
}

#[test]
fn every_field_can_be_given() {
    let text = edit(
        "kind = \"multiple\"\n",
        "kind = \"multiple\"\nlink_secret = \"s3cret\"\nsettings = \"pool-settings.toml\"\n",
    )
    .replace(
        "content = \"throwaway\"",
        "content = \"postgres://chat:pw@db.example:5432/content\"\ncompliance = \"postgresql://db.example/compliance\"\n\n[compliance]\nenabled = true\nrun_interval_secs = 60",
    )
    .replace(
        "name = \"chat1\"",
        "name = \"chat1\"\nlink_port = 6000\npool_port = 6001\nmetrics_port = 6002",
    )
    .replace("name = \"fe1\"", "name = \"fe1\"\nport = 9000");
    let t = good(&text);
    assert_eq!(t.link_secret.as_deref(), Some("s3cret"));
    assert_eq!(
        t.settings.as_deref(),
        Some(Path::new("topologies/pool-settings.toml"))
    );
    assert_eq!(t.content.form(), "postgres");
    assert_eq!(
        t.content.redacted(),
        "postgres://chat:***@db.example:5432/content"
    );
    assert_eq!(
        t.compliance_db,
        Some(Database::Url("postgresql://db.example/compliance".into()))
    );
    assert!(t.compliance_enabled);
    assert_eq!(t.compliance_interval_secs, 60);
    let c1 = &t.chat_servers[0];
    assert_eq!(
        (c1.link_port, c1.pool_port, c1.metrics_port),
        (6000, 6001, 6002)
    );
    assert_eq!(t.front_ends[0].addr().to_string(), "127.0.0.21:9000");
}

#[test]
fn settings_may_be_absolute() {
    let text = edit("kind", "settings = \"/etc/chatcap/pool.toml\"\nkind");
    assert_eq!(
        good(&text).settings.as_deref(),
        Some(Path::new("/etc/chatcap/pool.toml"))
    );
    let m = one(
        &edit("kind", "settings = \"\"\nkind"),
        "settings",
        "settings",
        0,
    );
    assert_eq!(m, "must not be empty");
}

#[test]
fn the_pool_name_is_required_and_not_empty() {
    let m = one(
        &edit("name = \"pool1\"", "name = \"  \""),
        "name",
        "name",
        0,
    );
    assert_eq!(m, "must not be empty");
    let text = edit("name = \"pool1\"\n", "");
    let err = parse(&text).expect_err("no name");
    let p = err.problems()[0].clone();
    assert_eq!((p.field.as_str(), p.line), ("name", 1));
    assert!(p.message.starts_with("required"), "{p}");
}

#[test]
fn server_and_front_end_names_follow_the_pattern() {
    let m = one(
        &edit("name = \"chat2\"", "name = \"chat 2\""),
        "chat_server[1].name",
        "chat 2",
        0,
    );
    assert!(m.contains("1–64 letters, digits"), "{m}");
    let long = "x".repeat(65);
    one(
        &edit("name = \"fe1\"", &format!("name = \"{long}\"")),
        "front_end[0].name",
        &long,
        0,
    );
    let m = one(
        &edit("name = \"chat1\"", "name = \"\""),
        "chat_server[0].name",
        "name = \"\"",
        0,
    );
    assert!(m.starts_with("required"), "{m}");
    // A name left out is reported where its table starts.
    one(
        &edit("name = \"fe1\"\n", ""),
        "front_end[0].name",
        "[[front_end]]",
        0,
    );
    good(&edit("name = \"chat2\"", "name = \"Chat_2.b-c\""));
}

#[test]
fn names_are_unique_across_servers_and_front_ends() {
    let m = one(
        &edit("name = \"fe1\"", "name = \"chat2\""),
        "front_end[0].name",
        "name = \"chat2\"",
        1,
    );
    assert!(
        m.contains("`chat2` is already used by chat_server[1]"),
        "{m}"
    );
    one(
        &edit("name = \"chat2\"", "name = \"chat1\""),
        "chat_server[1].name",
        "name = \"chat1\"",
        1,
    );
}

#[test]
fn a_pool_needs_a_chat_server_and_a_front_end() {
    let text = "name = \"p\"\n[database]\ncontent = \"throwaway\"\n";
    let err = parse(text).expect_err("empty pool");
    let got: Vec<(String, usize)> = err
        .problems()
        .iter()
        .map(|p| (p.field.clone(), p.line))
        .collect();
    assert_eq!(
        got,
        [("chat_server".to_string(), 1), ("front_end".to_string(), 1)]
    );
}

#[test]
fn a_pool_needs_an_active_chat_server() {
    let text = edit(
        "address = \"127.0.0.11\"",
        "address = \"127.0.0.11\"\nactive = false",
    );
    let m = one(&text, "chat_server", "[[chat_server]]", 0);
    assert!(m.contains("at least one active"), "{m}");
}

#[test]
fn at_most_four_active_servers() {
    let mut text = GOOD.to_string();
    for i in 3..=5 {
        text += &server(&format!("chat{i}"), &format!("127.0.0.{}", 10 + i), true);
    }
    // chat1, chat3, chat4, chat5 active: four, fine.
    good(&text);
    text += &server("chat6", "127.0.0.16", true);
    let m = one(&text, "chat_server[5].active", "active = true", 3);
    assert!(
        m.starts_with("a pool has at most 4 active chat servers (Lync 2013)"),
        "{m}"
    );
}

#[test]
fn at_most_eight_servers() {
    let mut text = GOOD.to_string();
    for i in 3..=9 {
        text += &server(&format!("chat{i}"), &format!("127.0.0.{}", 10 + i), false);
    }
    let m = one(&text, "chat_server[8]", "[[chat_server]]", 8);
    assert!(
        m.starts_with("a pool has at most 8 chat servers in all"),
        "{m}"
    );
}

#[test]
fn a_single_server_pool_cannot_gain_servers() {
    let text = edit("kind = \"multiple\"", "kind = \"single\"");
    let m = one(&text, "chat_server[1]", "[[chat_server]]", 1);
    assert_eq!(
        m,
        "a single-server pool cannot gain servers: pool `pool1` has kind = \"single\" and 2 chat servers"
    );
}

#[test]
fn a_single_server_pool_has_its_server_active() {
    let text = format!(
        "name = \"s\"\nkind = \"single\"\n[database]\ncontent = \"sqlite:data/c.db\"\n{}\n[[front_end]]\nname = \"fe1\"\naddress = \"127.0.0.1\"\n",
        server("chat1", "127.0.0.1", false)
    );
    let m = one(&text, "chat_server[0].active", "active = false", 0);
    assert_eq!(m, "the chat server of a single-server pool must be active");
    let t = good(&text.replace("active = false", "active = true"));
    assert_eq!(t.content, Database::Url("sqlite:data/c.db".into()));
    assert_eq!(t.content.form(), "sqlite");
}

#[test]
fn listeners_have_their_own_address_and_port() {
    let text = edit(
        "address = \"127.0.0.21\"",
        "address = \"127.0.0.11\"\nport = 9100",
    );
    let m = one(&text, "front_end[0].port", "port = 9100", 0);
    assert_eq!(
        m,
        "127.0.0.11:9100 is already used by chat server `chat1` (chat_server[0].metrics_port); every listener needs its own address and port"
    );
    // Two servers on one address need different ports: each clash is named, on the
    // second server's table line since its ports are the defaults.
    let text = edit("address = \"127.0.0.12\"", "address = \"127.0.0.11\"");
    let err = parse(&text).expect_err("clashes");
    let got: Vec<(&str, usize)> = err
        .problems()
        .iter()
        .map(|p| (p.field.as_str(), p.line))
        .collect();
    let line = line_of(&text, "[[chat_server]]", 1);
    assert_eq!(
        got,
        [
            ("chat_server[1].link_port", line),
            ("chat_server[1].pool_port", line),
            ("chat_server[1].metrics_port", line)
        ]
    );
    // An unspecified address takes the port on every address.
    let text = edit(
        "address = \"127.0.0.21\"",
        "address = \"0.0.0.0\"\nport = 5041",
    );
    one(&text, "front_end[0].port", "port = 5041", 0);
    // Same port, other address: fine.
    good(&edit(
        "address = \"127.0.0.21\"",
        "address = \"127.0.0.21\"\nport = 5041",
    ));
}

#[test]
fn a_servers_ports_differ() {
    let text = edit("name = \"chat1\"", "name = \"chat1\"\npool_port = 5041");
    let m = one(&text, "chat_server[0].pool_port", "pool_port", 0);
    assert!(
        m.starts_with("pool_port must differ from link_port (5041)"),
        "{m}"
    );
    let text = edit("name = \"chat1\"", "name = \"chat1\"\nmetrics_port = 8011");
    one(&text, "chat_server[0].metrics_port", "metrics_port", 0);
}

#[test]
fn ports_are_1_to_65535() {
    for bad in ["0", "65536", "-1"] {
        let text = edit(
            "name = \"chat1\"",
            &format!("name = \"chat1\"\nlink_port = {bad}"),
        );
        let m = one(&text, "chat_server[0].link_port", "link_port", 0);
        assert!(
            m.starts_with(&format!("must be a port 1–65535, not {bad}")),
            "{m}"
        );
    }
    let text = edit("name = \"fe1\"", "name = \"fe1\"\nport = 0");
    one(&text, "front_end[0].port", "port = 0", 0);
    good(&edit("name = \"fe1\"", "name = \"fe1\"\nport = 65535"));
}

#[test]
fn addresses_are_ip_addresses() {
    let text = edit("address = \"127.0.0.12\"", "address = \"chat2.example\"");
    let m = one(&text, "chat_server[1].address", "chat2.example", 0);
    assert!(m.starts_with("must be an IP address (v4 or v6)"), "{m}");
    let m = one(
        &edit("address = \"127.0.0.21\"\n", ""),
        "front_end[0].address",
        "[[front_end]]",
        0,
    );
    assert!(m.starts_with("required"), "{m}");
}

#[test]
fn the_content_database_is_required() {
    let text = edit("content = \"throwaway\"\n", "");
    let m = one(&text, "database.content", "[database]", 0);
    assert!(m.starts_with("required"), "{m}");
    // No [database] table at all: line 1.
    let err = parse(&text.replace("[database]\n", "")).expect_err("no database");
    let p = err.problems()[0];
    assert_eq!((p.field.as_str(), p.line), ("database.content", 1));
}

#[test]
fn database_forms() {
    let m = one(
        &edit("\"throwaway\"", "\"mysql://db/x\""),
        "database.content",
        "mysql",
        0,
    );
    assert!(m.starts_with("must be a postgres:// URL"), "{m}");
    let m = one(
        &edit("\"throwaway\"", "\"sqlite:data/content.db\""),
        "database.content",
        "sqlite",
        0,
    );
    assert_eq!(
        m,
        "a multiple-server pool shares one PostgreSQL database; sqlite is only for kind = \"single\""
    );
    one(
        &edit("\"throwaway\"", "\"postgres://\""),
        "database.content",
        "postgres",
        0,
    );
    let t = good(&edit("\"throwaway\"", "\"postgresql://h/db\""));
    assert_eq!(t.content, Database::Url("postgresql://h/db".into()));
    // A password in a refused value is not echoed.
    let m = one(
        &edit("\"throwaway\"", "\"pg://u:hunter2@h/db\""),
        "database.content",
        "pg://",
        0,
    );
    assert!(!m.contains("hunter2"), "{m}");
}

#[test]
fn compliance_needs_its_database() {
    let text = format!("{GOOD}\n[compliance]\nenabled = true\n");
    let m = one(&text, "database.compliance", "[database]", 0);
    assert!(
        m.starts_with("required when compliance.enabled = true"),
        "{m}"
    );
    let text = text.replace(
        "content = \"throwaway\"",
        "content = \"throwaway\"\ncompliance = \"throwaway\"",
    );
    let t = good(&text);
    assert_eq!(t.compliance_db, Some(Database::Throwaway));
    let m = one(
        &format!("{text}run_interval_secs = 0\n"),
        "compliance.run_interval_secs",
        "run_interval_secs",
        0,
    );
    assert!(m.starts_with("must be at least 1"), "{m}");
    // The compliance database follows the same forms.
    one(
        &text.replace("compliance = \"throwaway\"", "compliance = \"sqlite:c.db\""),
        "database.compliance",
        "sqlite",
        0,
    );
}

#[test]
fn link_secret_rules() {
    let both = edit(
        "kind",
        "link_secret = \"a\"\nlink_secret_env = \"CHATCAP_T_SECRET\"\nkind",
    );
    let m = one(&both, "link_secret_env", "link_secret_env", 0);
    assert_eq!(m, "give link_secret or link_secret_env, not both");
    let m = one(
        &edit("kind", "link_secret = \"\"\nkind"),
        "link_secret",
        "link_secret",
        0,
    );
    assert!(m.starts_with("must not be empty"), "{m}");
}

#[test]
fn link_secret_env_is_read_from_the_environment() {
    let text = edit("kind", "link_secret_env = \"CHATCAP_T_SECRET\"\nkind");
    let env = |var: &str| (var == "CHATCAP_T_SECRET").then(|| "from-env".to_string());
    let t = Topology::parse_with_env(&text, &file(), &env).expect("valid");
    assert_eq!(t.link_secret.as_deref(), Some("from-env"));
    let m = one(&text, "link_secret_env", "link_secret_env", 0);
    assert_eq!(m, "environment variable `CHATCAP_T_SECRET` is not set");
    let empty = |_: &str| Some(String::new());
    let err = Topology::parse_with_env(&text, &file(), &empty).expect_err("empty");
    assert_eq!(
        err.problems()[0].message,
        "environment variable `CHATCAP_T_SECRET` is empty"
    );
}

#[test]
fn unknown_keys_name_their_line_and_field() {
    let text = edit("active = false", "active = false\ncolour = \"red\"");
    let err = parse(&text).expect_err("unknown key");
    let TopologyError::Syntax(p) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (p.field.as_str(), p.line),
        ("chat_server[1].colour", line_of(&text, "colour", 0))
    );
    assert!(p.message.contains("unknown field `colour`"), "{p}");
    let text = edit("kind", "pool_size = 4\nkind");
    let err = parse(&text).expect_err("unknown key");
    let p = err.problems()[0];
    assert_eq!((p.field.as_str(), p.line), ("pool_size", 2));
}

#[test]
fn toml_syntax_errors_name_their_line() {
    let text = edit("address = \"127.0.0.12\"", "address = 127.0.0.12");
    let err = parse(&text).expect_err("not TOML");
    let TopologyError::Syntax(p) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(p.line, line_of(&text, "127.0.0.12", 0), "{p}");
    assert!(p
        .to_string()
        .starts_with(&format!("topologies/t.toml:{}: ", p.line)));
    // A value of the wrong kind, too.
    let text = edit("kind = \"multiple\"", "kind = \"several\"");
    let p = parse(&text).expect_err("bad kind").problems()[0].clone();
    assert_eq!((p.field.as_str(), p.line), ("kind", 2));
}

#[test]
fn every_problem_is_reported_in_line_order() {
    let text = edit(
        "kind = \"multiple\"",
        "kind = \"multiple\"\nlink_secret = \"\"",
    )
    .replace("\"throwaway\"", "\"sqlite:x.db\"")
    .replace("address = \"127.0.0.12\"", "address = \"nowhere\"")
    .replace("name = \"fe1\"", "name = \"chat1\"");
    let err = parse(&text).expect_err("four problems");
    let got: Vec<&str> = err.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        got,
        [
            "link_secret",
            "database.content",
            "chat_server[1].address",
            "front_end[0].name"
        ],
        "{err}"
    );
    assert_eq!(err.to_string().lines().count(), 4);
}
