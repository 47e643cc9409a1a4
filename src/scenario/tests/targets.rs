//! Unit tests of `[target]` and `[workload]`: every kind of target with its fields (TLS
//! included), and the pacing models.

use std::path::PathBuf;
use std::time::Duration;

use super::super::plan::{Target, Workload};
use super::{parse, plan, HEAD};

#[test]
fn targets_and_workloads() {
    let load = "[[load]]\nramp = { to = 10, over = \"1s\" }\n";
    let p = plan(load);
    assert_eq!(
        (p.target, p.workload),
        (
            Target::Embedded {
                front_ends: 0,
                tls: false
            },
            Workload::Open
        )
    );
    let p = plan(&format!("[target]\nkind = \"addresses\"\nurls = [\"ws://10.0.0.1:8080/ws\"]\ntokens = \"tok.csv\"\n[workload]\nmodel = \"closed\"\nthink_time = \"30s\"\n{load}"));
    assert_eq!(
        p.target,
        Target::Addresses {
            urls: vec!["ws://10.0.0.1:8080/ws".into()],
            tokens: PathBuf::from("scenarios/tok.csv"),
            ca: None,
        }
    );
    assert_eq!(
        p.workload,
        Workload::Closed {
            think_time: Duration::from_secs(30)
        }
    );
    let err = parse(&format!("{HEAD}[target]\nkind = \"addresses\"\nurls = [\"wss://10.0.0.1:8443/ws\"]\ntokens = \"tok.csv\"\n{load}"))
        .expect_err("wss without a CA");
    assert_eq!(err.problems()[0].field, "target.urls");
    assert!(err.problems()[0].message.contains("ca = "), "{err}");
    let p = plan(&format!("[target]\nkind = \"addresses\"\nurls = [\"wss://10.0.0.1:8443/ws\"]\ntokens = \"tok.csv\"\nca = \"ca.pem\"\n{load}"));
    assert!(
        matches!(p.target, Target::Addresses { ca: Some(ref c), .. } if c == &PathBuf::from("scenarios/ca.pem"))
    );
    let p = plan(&format!("[target]\ntls = true\n{load}"));
    assert_eq!(
        p.target,
        Target::Embedded {
            front_ends: 0,
            tls: true
        }
    );
    let p = plan(&format!(
        "[target]\nkind = \"topology\"\npath = \"/etc/pool.toml\"\n{load}"
    ));
    assert_eq!(
        p.target,
        Target::Topology {
            path: PathBuf::from("/etc/pool.toml"),
            tokens: None,
            ca: None,
        }
    );
    let err = parse(&format!(
        "{HEAD}[target]\nkind = \"embedded\"\nurls = [\"http://x\"]\n{load}"
    ))
    .expect_err("urls on embedded");
    assert_eq!(err.problems()[0].field, "target.urls");
    let err =
        parse(&format!("{HEAD}[workload]\nmodel = \"closed\"\n{load}")).expect_err("no think time");
    assert_eq!(err.problems()[0].field, "workload.model");
}
