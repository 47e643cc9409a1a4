//! `chatcap capacity` and `chatcap plan` end to end: a stepped search on the run tests'
//! scenario with an objective that makes the bound known exactly (`users.peak < 50`)
//! finds the supported users between two steps and names that objective; a feedback
//! search converges within its tolerance; `capacity model` rebuilds a model from the step
//! folders; capacity.json validates against reports/schema/capacity.schema.json; `plan`
//! from a committed fixture gives the expected counts; bad input exits 2 with the reason.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{chatcap, finish_within, schema, start, u, write_scenario, Ran};

/// Longest a search of a few short steps may take.
const SEARCH_LIMIT: Duration = Duration::from_secs(240);

/// The committed capacity model `plan` is tested on: 4,000 users on 1 CPU.
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/run/capacity_fixture.json"
);

/// The 2-CPU hardware profile.
const TWO_CPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/profiles/2cpu.toml");

fn capacity_schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/reports/schema/capacity.schema.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("read the schema"))
        .expect("the capacity schema is JSON")
}

fn valid(value: &Value, what: &str) {
    let root = capacity_schema();
    let errors = schema::validate(&root, &root, value, what);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

fn search(dir: &Path, args: &[&str], log: &str) -> Ran {
    let mut all = vec!["capacity", "scenario.toml", "--out", "cap", "--hold", "2s"];
    all.extend(args);
    finish_within(
        start(all, dir, &dir.join(log)),
        &dir.join(log),
        SEARCH_LIMIT,
    )
}

#[test]
fn a_stepped_search_finds_the_supported_users_and_names_the_bound() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let d = dir.path();
    write_scenario(d, r#""users.peak" = "< 50""#);
    let ran = search(d, &["--start", "20", "--step", "20"], "stepped");
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert!(ran.stdout.contains("supported users: 40"), "{ran}");
    assert!(
        ran.stderr.contains("step 3: 60 users: fail"),
        "progress: {ran}"
    );
    let c = read_json(&d.join("cap/capacity.json"));
    valid(&c, "capacity");
    let s = &c["searches"][0];
    assert_eq!(
        (u(&s["supported_users"]), u(&s["first_fail_users"])),
        (40, 60)
    );
    assert_eq!(s["stop"], "settled");
    assert_eq!(c["bound"]["slo"], "users.peak < 50", "{}", c["bound"]);
    let verdicts: Vec<&str> = s["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|st| st["verdict"].as_str().expect("a verdict"))
        .collect();
    assert_eq!(verdicts, ["pass", "pass", "fail"]);
    assert!(c["model"]["users_per_core"].as_f64().expect("users/core") > 0.0);
    assert!(c["model"]["memory_per_user"]["server"]["slope"].is_number());
    // The steps' SQLite databases grew with their posts.
    let per_message = c["model"]["db_bytes_per_message"].as_f64();
    assert!(per_message.is_some_and(|b| b > 0.0), "{}", c["model"]);
    for f in ["capacity.md", "capacity.html", "step-002-40/summary.json"] {
        assert!(d.join("cap").join(f).is_file(), "{f}");
    }
    let html = std::fs::read_to_string(d.join("cap/capacity.html")).expect("html");
    assert!(
        html.contains("<svg") && html.contains("supported: 40"),
        "chart"
    );

    // The same model from the step folders alone.
    let ran = chatcap(
        [
            "capacity",
            "model",
            "cap/step-001-20",
            "cap/step-002-40",
            "cap/step-003-60",
            "--out",
            "model",
        ],
        d,
        &d.join("model"),
    );
    assert_eq!(ran.code(), Some(0), "{ran}");
    let m = read_json(&d.join("model/capacity.json"));
    valid(&m, "model");
    assert_eq!(m["supported"]["median"].as_f64(), Some(40.0));
    assert_eq!(m["bound"]["slo"], "users.peak < 50");
    // Named after the scenario, not after its first step (`e2e-run-20u`).
    assert_eq!(m["scenario"], "e2e-run", "{}", m["scenario"]);
}

#[test]
fn a_feedback_search_converges_within_its_tolerance() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let d = dir.path();
    write_scenario(d, r#""users.peak" = "< 45""#);
    let ran = search(
        d,
        &[
            "--mode",
            "feedback",
            "--start",
            "20",
            "--step",
            "20",
            "--tolerance",
            "10%",
            "--ramp-rate",
            "50/s",
        ],
        "feedback",
    );
    assert_eq!(ran.code(), Some(0), "{ran}");
    let c = read_json(&d.join("cap/capacity.json"));
    valid(&c, "capacity");
    let s = &c["searches"][0];
    let (lo, hi) = (u(&s["supported_users"]), u(&s["first_fail_users"]));
    assert!(lo <= 44 && hi >= 45, "bound 44 lies in {lo}..{hi}");
    assert!(
        (hi - lo) as f64 <= 0.1 * hi as f64,
        "{lo}..{hi} not within 10%"
    );
    assert_eq!(c["mode"], "feedback");
    assert_eq!(c["bound"]["slo"], "users.peak < 45");
}

fn plan(d: &Path, args: &[&str], log: &str) -> Ran {
    let mut all = vec!["plan", "--from", FIXTURE];
    all.extend(args);
    chatcap(all, d, &d.join(log))
}

#[test]
fn plan_sizes_pools_from_a_capacity_model() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let d = dir.path();
    valid(&read_json(Path::new(FIXTURE)), "fixture");
    // 80,000 users at 4,000 per server, no headroom: 20 chat servers, 5 pools.
    let ran = plan(
        d,
        &["--users", "80000", "--headroom", "0%", "--out", "p.json"],
        "p0",
    );
    assert_eq!(ran.code(), Some(0), "{ran}");
    let p = read_json(&d.join("p.json"));
    assert_eq!(u(&p["machines"][0]["count"]), 20, "{p}");
    assert_eq!(u(&p["pools"]), 5);
    assert_eq!(p["machines"][1]["role"], "front end");
    assert_eq!(
        u(&p["machines"][1]["count"]),
        20,
        "one front end per server at least"
    );
    assert_eq!(p["machines"][2]["role"], "load generator");
    assert_eq!(
        u(&p["machines"][2]["count"]),
        4,
        "2 cores at 0.1 core per 1,000 users"
    );
    let disk = p["db_bytes_per_month"].as_f64().expect("disk");
    assert!((disk - 62.208e9).abs() < 1e6, "{disk}");
    assert!(ran.stdout.contains("5 pools are needed"), "{ran}");
    // Default headroom 30 %: 2,800 per server → 29 servers, 8 pools, said.
    let ran = plan(d, &["--users", "80000"], "p30");
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert!(ran.stdout.contains("headroom 30%"), "{ran}");
    assert!(ran.stdout.contains("29 chat servers"), "{ran}");
    // Two CPUs from the 1-CPU model, whose capacity latency bound (not CPU): not scaled
    // by cores, said.
    let two_cpus = ["--users", "20000", "--profile", TWO_CPUS, "--headroom", "0"];
    let ran = plan(d, &[&two_cpus[..], &["--out", "p2.md"]].concat(), "p2");
    assert_eq!(ran.code(), Some(0), "{ran}");
    let md = std::fs::read_to_string(d.join("p2.md")).expect("markdown");
    assert!(md.contains("| chat server | 5 |"), "{md}");
    assert!(md.contains("assumed not to grow with cores"), "{md}");
    assert!(md.contains("linear scaling would say 8000"), "{md}");
    // The same model had the servers' CPU bound it: scaled by users per core.
    let mut cpu_bound = read_json(Path::new(FIXTURE));
    cpu_bound["bound"]["kind"] = "cpu".into();
    std::fs::write(d.join("cpu-bound.json"), cpu_bound.to_string()).expect("write");
    let args = [
        &["plan", "--from", "cpu-bound.json"][..],
        &two_cpus,
        &["--out", "p3.md"],
    ];
    let ran = chatcap(args.concat(), d, &d.join("p3"));
    assert_eq!(ran.code(), Some(0), "{ran}");
    let md = std::fs::read_to_string(d.join("p3.md")).expect("markdown");
    assert!(md.contains("| chat server | 3 |"), "{md}");
    assert!(md.contains("assumed to scale linearly with cores"), "{md}");
}

#[test]
fn bad_capacity_and_plan_input_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let d = dir.path();
    write_scenario(d, r#""users.peak" = "< 45""#);
    std::fs::write(
        d.join("not-capacity.json"),
        r#"{"schema":"chatcap.summary/2"}"#,
    )
    .expect("write");
    let cases: [(&[&str], &str); 8] = [
        (&["capacity", "missing.toml"], "missing.toml"),
        (
            &["capacity", "scenario.toml", "--profile", "nosuch"],
            "no profile \"nosuch\"",
        ),
        (
            &["capacity", "scenario.toml", "--tolerance", "150%"],
            "must be at least 0% and below 100%",
        ),
        (
            &["capacity", "scenario.toml", "--start", "90", "--max", "50"],
            "--start 90 is above --max 50",
        ),
        (
            &["capacity", "model", "nowhere"],
            "nowhere: not a results folder",
        ),
        (
            &["plan", "--users", "10", "--from", "none.json"],
            "none.json",
        ),
        (
            &["plan", "--users", "10", "--from", "not-capacity.json"],
            "not a chatcap capacity model",
        ),
        (
            &["plan", "--users", "10", "--from", FIXTURE, "--out", "x.txt"],
            "the extension names the format",
        ),
    ];
    for (i, (args, says)) in cases.iter().enumerate() {
        let ran = chatcap(*args, d, &d.join(format!("bad{i}")));
        assert_eq!(ran.code(), Some(2), "{args:?}: {ran}");
        assert!(
            ran.stderr.contains(says),
            "{args:?} should say {says:?}: {ran}"
        );
    }
}
