//! Topology files as read from disk: a missing file, and the shipped examples in
//! scenarios/topologies.

use std::path::{Path, PathBuf};

use super::*;

#[test]
fn a_missing_file_is_a_read_error() {
    let err = Topology::load("/nonexistent/pool.toml").expect_err("no file");
    assert!(matches!(err, TopologyError::Read { .. }));
    assert!(err.problems().is_empty());
    assert!(err
        .to_string()
        .starts_with("/nonexistent/pool.toml: cannot read"));
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/topologies")
}

#[test]
fn the_shipped_examples_are_valid() {
    let load = |name: &str| {
        Topology::load(examples_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let t = load("pool-4x4.toml");
    assert_eq!((t.actives().count(), t.standbys().count()), (4, 4));
    assert_eq!(t.front_ends.len(), 4);
    assert_eq!(t.content, Database::Throwaway);
    assert!(!t.compliance_enabled);
    assert_eq!(
        t.server("chat8").map(|s| s.link_addr().to_string()),
        Some("127.0.0.18:5041".into())
    );
    assert_eq!(
        t.front_end("fe4").map(FrontEndSpec::ws_url),
        Some("ws://127.0.0.24:8080/ws".into())
    );
    let t = load("pool-3.toml");
    assert_eq!((t.actives().count(), t.standbys().count()), (3, 1));
    assert_eq!((t.front_ends.len(), t.content.form()), (2, "throwaway"));
    let t = load("single.toml");
    assert_eq!(
        (t.kind, t.chat_servers.len(), t.front_ends.len()),
        (PoolKind::Single, 1, 1)
    );
    assert_eq!(t.content, Database::Url("sqlite:data/content.db".into()));
}
