//! `chatcap topology check`: the real binary on a shipped example (exit 0, the pool's
//! table) and on a bad file (exit 2, every problem as `file:line: field: message`).

use std::path::Path;
use std::process::{Command, Output};

/// `chatcap topology check FILE` with `env` set; `CHATCAP_LINK_SECRET` is removed so the
/// caller's environment cannot change the outcome.
fn check(file: &Path, env: &[(&str, &str)]) -> (Output, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chatcap"))
        .args(["topology", "check"])
        .arg(file)
        .env_remove("CHATCAP_LINK_SECRET")
        .envs(env.iter().copied())
        .output()
        .expect("run chatcap topology check");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn a_shipped_topology_checks_and_prints_the_pool() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/topologies/pool-4x4.toml");
    let (out, stdout, stderr) = check(&file, &[]);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for want in [
        "pool        pool-4x4",
        "multiple (4 active + 4 standby chat servers, 4 front ends)",
        "database    throwaway",
        "chat1        active   127.0.0.11:5041  127.0.0.11:8011  127.0.0.11:9100",
        "chat8        standby  127.0.0.18:5041  127.0.0.18:8011  127.0.0.18:9100",
        "fe4        ws://127.0.0.24:8080/ws",
    ] {
        assert!(stdout.contains(want), "{want:?} not in\n{stdout}");
    }
}

#[test]
fn a_bad_topology_lists_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bad.toml");
    let text = r#"name = "bad"
kind = "single"
link_secret_env = "CHATCAP_E2E_TOPOLOGY_SECRET"

[database]
content = "sqlite:data/content.db"

[[chat_server]]
name = "chat1"
address = "127.0.0.11"

[[chat_server]]
name = "chat2"
address = "127.0.0.12"

[[front_end]]
name = "fe1"
address = "127.0.0.21"
port = 0
"#;
    std::fs::write(&file, text).expect("write the topology");
    let (out, stdout, stderr) = check(&file, &[]);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let f = file.display();
    for want in [
        format!("{f}:3: link_secret_env: environment variable `CHATCAP_E2E_TOPOLOGY_SECRET` is not set"),
        format!("{f}:12: chat_server[1]: a single-server pool cannot gain servers: pool `bad` has kind = \"single\" and 2 chat servers"),
        format!("{f}:19: front_end[0].port: must be a port 1–65535, not 0"),
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&want)),
            "{want:?} not in\n{stderr}"
        );
    }
    assert!(stderr.contains("3 problems"), "{stderr}");

    // The secret's variable set and the extra server gone, the port fixed: it checks.
    let fixed = text
        .replace(
            "[[chat_server]]\nname = \"chat2\"\naddress = \"127.0.0.12\"\n\n",
            "",
        )
        .replace("port = 0", "port = 8080");
    std::fs::write(&file, fixed).expect("write the topology");
    let (out, stdout, stderr) = check(&file, &[("CHATCAP_E2E_TOPOLOGY_SECRET", "s3cret")]);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("link secret set"), "{stdout}");
    assert!(!stdout.contains("s3cret"), "{stdout}");
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("typo.toml");
    std::fs::write(
        &file,
        "name = \"p\"\n\n[database]\ncontent = \"throwaway\"\ncontnet = \"x\"\n",
    )
    .expect("write the topology");
    let (out, stdout, stderr) = check(&file, &[]);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let want = format!(
        "{}:5: database.contnet: unknown field `contnet`",
        file.display()
    );
    assert!(stderr.contains(&want), "{want:?} not in\n{stderr}");
}
