//! Hardware profiles through `chatcap run --profile`: a sweep over an unlimited profile and
//! a half-CPU, 256 MiB one on a scenario that keeps the server busy (searches and posts
//! from 600 users): the quota caps the server's CPU in resources.csv where the unlimited
//! run goes past it, the memory limit is applied and recorded, the server is confirmed
//! inside, and the run's cgroups are gone afterwards. A bad profile file is refused before
//! anything starts.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{chatcap, finish_within, run_args, schema, start, summary};

/// Longest the two-run sweep may take (provisioning 600 users twice, 2 × 10 s of load).
const SWEEP_LIMIT: Duration = Duration::from_secs(150);

/// A server's CPU share, percent of one core, a 0.5-CPU quota keeps it under (the quota
/// is 50%; a once-a-second sample lands a little off the CFS period).
const CAPPED_PCT: f64 = 60.0;

/// 600 users in rooms of 20, each posting once a second and searching twice a second: far
/// more than half a CPU of server work, yet light for the generator.
const BUSY: &str = r#"name = "busy"
description = "a busy server: posts and searches"
seed = 3

[population]
users = 600

[[population.rooms]]
class = "team"
size = 20
rooms_per_user = 2

[behaviour]
request_timeout = "5s"

[[behaviour.ops]]
op = "post"
per_user_per_hour = 3600

[[behaviour.ops]]
op = "search"
per_user_per_hour = 7200

[[load]]
ramp = { to = 600, over = "2s" }

[[load]]
hold = { for = "8s" }
"#;

/// The largest `cpu_pct` of `process` in a resources.csv.
fn max_cpu(dir: &Path, process: &str) -> f64 {
    let text = std::fs::read_to_string(dir.join("resources.csv")).expect("resources.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
    };
    let (p, cpu) = (col("process"), col("cpu_pct"));
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[p] == process)
        .map(|f| f[cpu].parse::<f64>().expect("a number"))
        .fold(0.0, f64::max)
}

fn limit<'a>(profile: &'a Value, name: &str) -> &'a Value {
    profile["limits"]
        .as_array()
        .expect("limits")
        .iter()
        .find(|l| l["limit"] == name)
        .unwrap_or_else(|| panic!("no {name} limit in {profile}"))
}

#[test]
fn a_cpu_quota_caps_the_server_and_a_memory_limit_is_applied() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let scenario = dir.path().join("busy.toml");
    std::fs::write(&scenario, BUSY).expect("write the scenario");
    // Found by name: `profiles/NAME.toml` beside the scenario.
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).expect("profiles folder");
    std::fs::write(
        profiles.join("free.toml"),
        "name = \"free\"\ndescription = \"no limits\"\n",
    )
    .expect("write a profile");
    std::fs::write(
        profiles.join("half.toml"),
        "name = \"half\"\ndescription = \"half a CPU\"\ncpu_quota = 0.5\nmemory = \"256MiB\"\n",
    )
    .expect("write a profile");
    let out = dir.path().join("out");
    let log = dir.path().join("sweep");
    let child = start(
        run_args(&scenario, &out, &["--profile", "free,half"]),
        dir.path(),
        &log,
    );
    let ran = finish_within(child, &log, SWEEP_LIMIT);
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert!(ran.stdout.contains("| | free | half |"), "{ran}");
    assert!(out.join("profiles.md").is_file());

    let free = summary(&out.join("free"));
    let half = summary(&out.join("half"));
    assert_eq!(free["profile"]["name"], "free");
    assert_eq!(free["profile"]["limits"], Value::Array(vec![]));
    let root = schema::schema();
    let errors = schema::validate(&root, &root, &half, "summary");
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    let p = &half["profile"];
    let quota = limit(p, "cpu_quota");
    if quota["how"] == "not_applied" {
        // No writable cgroup here: the run must say so plainly, and there is no cap to see.
        let md = std::fs::read_to_string(out.join("half/summary.md")).expect("summary.md");
        assert!(md.contains("**Not applied: cpu_quota, memory"), "{md}");
        eprintln!("cgroups not writable here: {}", quota["note"]);
        return;
    }
    assert!(["cgroup_v1", "cgroup_v2"].contains(&quota["how"].as_str().unwrap_or("")));
    let memory = limit(p, "memory");
    assert!(["cgroup_v1", "cgroup_v2"].contains(&memory["how"].as_str().unwrap_or("")));
    let applied = memory["applied"].as_str().expect("read back");
    assert!(applied.contains("=268435456"), "{memory}");
    assert_eq!(p["memory_bytes"], 268435456u64);
    assert_eq!(limit(p, "worker_threads")["applied"], "1");
    let procs = p["processes"].as_array().expect("processes");
    assert!(!procs.is_empty());
    assert!(procs.iter().all(|x| x["confined"] == true), "{p}");
    for g in p["cgroups"].as_array().expect("cgroups") {
        let g = g.as_str().expect("a path");
        assert!(!Path::new(g).exists(), "{g} was not removed");
    }

    let capped = max_cpu(&out.join("half"), "server");
    let unlimited = max_cpu(&out.join("free"), "server");
    assert!(
        capped <= CAPPED_PCT,
        "server CPU reached {capped:.0}% under a 0.5-CPU quota"
    );
    assert!(
        unlimited > CAPPED_PCT,
        "the unlimited server peaked at {unlimited:.0}%: the scenario is not busy enough to show a cap"
    );
}

#[test]
fn a_bad_profile_is_refused_with_file_line_and_field() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let scenario = dir.path().join("busy.toml");
    std::fs::write(&scenario, BUSY).expect("write the scenario");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad\"\ndescription = \"\"\ncpu_quota = -1\nmemory = \"lots\"\n",
    )
    .expect("write a profile");
    let out = dir.path().join("out");
    let bad_arg = bad.display().to_string();
    let ran = chatcap(
        run_args(&scenario, &out, &["--profile", &bad_arg]),
        dir.path(),
        &dir.path().join("bad"),
    );
    assert_eq!(ran.code(), Some(2), "{ran}");
    let want = format!("{}:3: cpu_quota: must be", bad.display());
    assert!(ran.stderr.contains(&want), "{ran}");
    assert!(ran.stderr.contains(":4: memory: "), "{ran}");

    let ran = chatcap(
        run_args(&scenario, &out, &["--profile", "no-such-profile"]),
        dir.path(),
        &dir.path().join("missing"),
    );
    assert_eq!(ran.code(), Some(2), "{ran}");
    assert!(
        ran.stderr.contains("no profile \"no-such-profile\""),
        "{ran}"
    );
    assert!(!out.exists(), "nothing may start on a bad profile");
}
