//! `chatcap gate` on results folders of real runs: pass; fail on a threshold; fail on a
//! regression against a baseline and on new loss; exit 2 for a missing or corrupt run or a
//! bad rules file; JUnit XML valid against reports/schema/junit.xsd; and the project's own
//! gate (scenarios/gate/ci.toml) failing a server made twice as slow by the test hook.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::hlog::python_with;
use super::{chatcap, u, Ran};

/// A copy of the baseline's results in `dir/name`, its summary changed by `edit`.
fn copy_with(dir: &Path, name: &str, edit: impl FnOnce(&mut Value)) {
    let into = dir.join(name);
    super::report::copy_results(&into);
    let path = into.join("summary.json");
    let mut s: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    edit(&mut s);
    std::fs::write(&path, serde_json::to_string_pretty(&s).expect("json")).expect("write");
}

fn gate(dir: &Path, args: &[&str], log: &str) -> Ran {
    let mut all = vec!["gate"];
    all.extend(args);
    chatcap(all, dir, &dir.join(log))
}

#[test]
fn the_gate_passes_and_fails_on_thresholds_and_regressions_with_junit_xml() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    copy_with(d, "base", |_| {});
    copy_with(d, "same", |_| {});
    copy_with(d, "slower", |s| {
        let p99 = u(&s["operations"]["post_ack"]["p99_us"]);
        s["operations"]["post_ack"]["p99_us"] = (2 * p99 + 1000).into();
    });
    copy_with(d, "lossy", |s| s["delivery"]["lost"] = 2.into());

    // The run's own objectives, and against an identical baseline: pass.
    let ran = gate(
        d,
        &["same", "--baseline", "base", "--junit", "pass.xml"],
        "pass",
    );
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert!(
        ran.stdout.contains("delivery.lost == 0") && ran.stdout.contains("gate: pass"),
        "{ran}"
    );
    assert!(
        ran.stdout.contains("post_ack.p99 +25%"),
        "default regression rules: {ran}"
    );

    // A threshold of the rules file.
    std::fs::write(
        d.join("strict.toml"),
        "[slo]\n\"post_ack.p99\" = \"< 1us\"\n",
    )
    .expect("write");
    let ran = gate(
        d,
        &["same", "--rules", "strict.toml", "--junit", "threshold.xml"],
        "threshold",
    );
    assert_eq!(ran.code(), Some(1), "{ran}");
    assert!(
        ran.stdout
            .contains("post_ack.p99 < 1us (threshold): measured"),
        "{ran}"
    );
    assert!(ran.stderr.contains("gate failed: 1 of"), "{ran}");

    // Against the baseline: p99 doubled, then new loss.
    let ran = gate(
        d,
        &["slower", "--baseline", "base", "--junit", "regression.xml"],
        "slower",
    );
    assert_eq!(ran.code(), Some(1), "{ran}");
    assert!(
        ran.stdout.contains("post_ack.p99 +25% (regression)"),
        "{ran}"
    );
    let ran = gate(d, &["lossy", "--baseline", "base"], "lossy");
    assert_eq!(ran.code(), Some(1), "{ran}");
    assert!(
        ran.stdout
            .contains("delivery.lost +0 (regression): measured 2, limit ≤ 0"),
        "{ran}"
    );
    // Rules may loosen what the defaults check.
    std::fs::write(
        d.join("loose.toml"),
        "[regression]\n\"post_ack.p99\" = \"+300%\"\n",
    )
    .expect("write");
    let ran = gate(
        d,
        &["slower", "--baseline", "base", "--rules", "loose.toml"],
        "loose",
    );
    assert_eq!(ran.code(), Some(0), "{ran}");

    let junit =
        std::fs::read_to_string(d.join("regression.xml")).expect("junit written on failure");
    assert!(junit.contains("<failure type=\"regression\""), "{junit}");
    let Some(python) = python_with("xmlschema", "xmlschema") else {
        return;
    };
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema/junit.xsd");
    for file in ["pass.xml", "threshold.xml", "regression.xml"] {
        let out = Command::new(&python)
            .arg("-c")
            .arg("import sys, xmlschema; xmlschema.XMLSchema(sys.argv[1]).validate(sys.argv[2])")
            .arg(&xsd)
            .arg(d.join(file))
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_missing_or_corrupt_run_or_bad_rules_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    copy_with(d, "run", |_| {});
    let ran = gate(d, &["nowhere"], "missing");
    assert_eq!(ran.code(), Some(2), "{ran}");
    assert!(
        ran.stderr.contains("nowhere: not a results folder"),
        "{ran}"
    );
    let ran = gate(d, &["run", "--baseline", "nowhere"], "missing-baseline");
    assert_eq!(ran.code(), Some(2), "{ran}");
    assert!(ran.stderr.contains("baseline: nowhere"), "{ran}");

    std::fs::write(d.join("run/summary.json"), "{\"schema\": \"chatcap.summ").expect("write");
    let ran = gate(d, &["run"], "corrupt");
    assert_eq!(ran.code(), Some(2), "{ran}");
    assert!(ran.stderr.contains("summary.json: truncated"), "{ran}");

    copy_with(d, "good", |_| {});
    std::fs::write(d.join("bad.toml"), "[regression]\nthroughput = \"10%\"\n").expect("write");
    let ran = gate(d, &["good", "--rules", "bad.toml"], "bad-rules");
    assert_eq!(ran.code(), Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains("bad.toml:2: regression.throughput: `10%`: start with +"),
        "{ran}"
    );
    assert!(!ran.stderr.contains("panicked"), "{ran}");
}

#[test]
fn the_projects_own_gate_fails_a_server_twice_as_slow() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(d.join("slow.toml"), "[chat]\ntest_slowdown = 2.0\n").expect("write");
    let scenario = root.join("scenarios/bench/ci-gate.toml");
    let out = d.join("slow-run");
    let ran = chatcap(
        [
            "run".as_ref(),
            scenario.as_os_str(),
            "-q".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            "--server-config".as_ref(),
            d.join("slow.toml").as_os_str(),
        ],
        d,
        &d.join("run"),
    );
    assert_eq!(
        ran.code(),
        Some(0),
        "the scenario's own objectives hold: {ran}"
    );
    let rules = root.join("scenarios/gate/ci.toml");
    let ran = chatcap(
        [
            "gate".as_ref(),
            out.as_os_str(),
            "--rules".as_ref(),
            rules.as_os_str(),
        ],
        d,
        &d.join("gate"),
    );
    assert_eq!(ran.code(), Some(1), "{ran}");
    assert!(
        ran.stdout
            .contains("server.cpu_us_per_request < 1800 (threshold): measured"),
        "{ran}"
    );
}
