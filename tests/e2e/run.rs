//! `chatcap run` end to end: the real binary on small scenario files (50 users, a 2 s ramp,
//! a 6 s hold) against its embedded server, and the results folder it writes.
//!
//! Runs are deterministic in what they issue: every connection's schedule is seeded and
//! anchored where the load shape starts it, so the same scenario issues the same
//! operations in one process, in two shards, and with the server stalled. One undisturbed
//! run ([`baseline`]) is shared by the tests that compare against it.

mod capacity;
mod files;
mod gate;
mod hlog;
mod profiles;
mod report;
mod schema;
mod server_metrics;
mod targets;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde_json::Value;

/// Users of the test scenario.
const USERS: u64 = 50;
/// Longest a run may take (provisioning, 8 s of load, drain, reconciliation).
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// How long the stall test stops the server.
const STALL: Duration = Duration::from_secs(2);

/// The test scenario: 50 users in 15 rooms of 10, posting and polling (about 25 posts/s
/// and 8 polls/s at full load), ramped over 2 s and held for 6 s.
fn scenario_text(slo: &str) -> String {
    format!(
        r#"name = "e2e-run"
description = "chatcap's run tests"
seed = 7

[population]
users = {USERS}

[[population.rooms]]
class = "small"
size = 10
rooms_per_user = 3

[behaviour]
request_timeout = "5s"

[[behaviour.ops]]
op = "post"
per_user_per_hour = 1800

[[behaviour.ops]]
op = "poll_participants"
per_user_per_hour = 600

[[load]]
ramp = {{ to = {USERS}, over = "2s" }}

[[load]]
hold = {{ for = "6s" }}

[slo]
{slo}
"#
    )
}

/// The scenario file in `dir`.
fn write_scenario(dir: &Path, slo: &str) -> PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, scenario_text(slo)).expect("write the scenario");
    path
}

/// A finished `chatcap` process.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Start `chatcap ARGS` in `cwd`, its output going to files named after `log`.
fn start<I, S>(args: I, cwd: &Path, log: &Path) -> Child
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = std::fs::File::create(log.with_extension("stdout")).expect("create a log file");
    let err = std::fs::File::create(log.with_extension("stderr")).expect("create a log file");
    Command::new(env!("CARGO_BIN_EXE_chatcap"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start chatcap")
}

/// Wait for a started `chatcap` to end (killing it past [`RUN_LIMIT`]).
fn finish(child: Child, log: &Path) -> Ran {
    finish_within(child, log, RUN_LIMIT)
}

/// Wait for a started `chatcap` to end (killing it past `limit`).
fn finish_within(mut child: Child, log: &Path, limit: Duration) -> Ran {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chatcap") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chatcap ran longer than {limit:?} (logs: {})",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |ext| std::fs::read_to_string(log.with_extension(ext)).unwrap_or_default();
    Ran {
        status,
        stdout: read("stdout"),
        stderr: read("stderr"),
    }
}

/// Run `chatcap ARGS` in `cwd` to the end.
fn chatcap<I, S>(args: I, cwd: &Path, log: &Path) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    finish(start(args, cwd, log), log)
}

/// `chatcap run SCENARIO -q --out OUT EXTRA…`.
fn run_args(scenario: &Path, out: &Path, extra: &[&str]) -> Vec<PathBuf> {
    let mut args: Vec<PathBuf> = vec!["run".into(), scenario.into(), "-q".into()];
    args.extend(["--out".into(), out.into()]);
    args.extend(extra.iter().map(PathBuf::from));
    args
}

fn summary(dir: &Path) -> Value {
    let path = dir.join("summary.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("summary.json is JSON")
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

/// Posts issued: acknowledged, refused and unanswered.
fn posts_issued(s: &Value) -> u64 {
    let p = &s["operations"]["post_ack"];
    u(&p["count"]) + u(&p["errors"]) + u(&p["timeouts"])
}

/// The shared undisturbed run of the test scenario (`--shards 1`).
struct Baseline {
    _dir: tempfile::TempDir,
    scenario: PathBuf,
    out: PathBuf,
    ran: Ran,
}

// A static is never dropped, so `_dir` outlives the tests but is never removed: it is
// made under `CARGO_TARGET_TMPDIR` (cleared by `cargo clean`), not in /tmp.
fn baseline() -> &'static Baseline {
    static BASELINE: OnceLock<Baseline> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("run-baseline-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temporary folder");
        let scenario = write_scenario(dir.path(), r#""delivery.lost" = "== 0""#);
        let out = dir.path().join("out");
        let ran = chatcap(
            run_args(&scenario, &out, &["--shards", "1"]),
            dir.path(),
            &dir.path().join("run"),
        );
        Baseline {
            scenario,
            out,
            ran,
            _dir: dir,
        }
    })
}

/// Sum of the interval histograms tagged `tag` in an interval log.
fn hlog_total(log: &[u8], tag: &str) -> u64 {
    let mut total = 0;
    for entry in IntervalLogIterator::new(log) {
        let entry = entry.unwrap_or_else(|e| panic!("histograms.hlog does not parse: {e:?}"));
        let LogEntry::Interval(h) = entry else {
            continue;
        };
        if h.tag().map(|t| t.as_str()) != Some(tag) {
            continue;
        }
        let bytes = STANDARD
            .decode(h.encoded_histogram())
            .expect("base64 histogram");
        let hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .expect("V2 histogram");
        total += hist.len();
    }
    total
}

#[test]
fn a_run_writes_the_results_folder() {
    let b = baseline();
    assert_eq!(b.ran.code(), Some(0), "{}", b.ran);
    for file in [
        "summary.json",
        "summary.md",
        "timeline.csv",
        "resources.csv",
        "histograms.hlog",
    ] {
        let len = std::fs::metadata(b.out.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .len();
        assert!(len > 0, "{file} is empty");
    }
    let s = summary(&b.out);
    for op in ["post_ack", "join", "sign_in", "delivery"] {
        let o = &s["operations"][op];
        for key in ["count", "errors", "p50_us", "p99_us", "p999_us", "max_us"] {
            assert!(o[key].is_u64(), "operations.{op}.{key} in {o}");
        }
        assert!(u(&o["count"]) > 0, "no {op} measured: {o}");
        assert!(u(&o["p50_us"]) <= u(&o["p99_us"]) && u(&o["p99_us"]) <= u(&o["max_us"]));
    }
    assert_eq!(u(&s["operations"]["sign_in"]["count"]), USERS);
    assert_eq!(u(&s["users"]["peak"]), USERS);
    assert_eq!(u(&s["delivery"]["lost"]), 0);
    assert_eq!(u(&s["delivery"]["duplicated"]), 0);
    assert!(u(&s["delivery"]["received"]) > 0);
    let rec = &s["reconciliation"];
    assert_eq!(u(&rec["missing"]), 0, "{rec}");
    assert_eq!(
        u(&rec["acked_checked"]),
        u(&s["operations"]["post_ack"]["count"])
    );
    assert_eq!(s["slo"][0]["pass"], true);

    // The interval log adds up to the totals, operation by operation.
    let log = std::fs::read(b.out.join("histograms.hlog")).expect("read histograms.hlog");
    let ops = s["operations"].as_object().expect("operations");
    for (name, o) in ops {
        assert_eq!(
            hlog_total(&log, &format!("{name}.response")),
            u(&o["count"]),
            "{name}.response histograms vs operations.{name}.count"
        );
    }
    assert!(ops.contains_key("post_ack"));

    // Timeline: a header and a row a second; resources of both processes.
    let timeline = std::fs::read_to_string(b.out.join("timeline.csv")).expect("timeline");
    assert!(
        timeline.starts_with("t_s,target_users,users,"),
        "{timeline}"
    );
    assert!(timeline.lines().count() >= 8, "{timeline}");
    let resources = std::fs::read_to_string(b.out.join("resources.csv")).expect("resources");
    assert!(resources.contains(",generator,") && resources.contains(",server,"));

    // The summary matches the checked-in schema.
    let root = schema::schema();
    let errors = schema::validate(&root, &root, &s, "summary");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn a_dropped_delivery_is_detected_and_fails_the_slo() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let scenario = write_scenario(dir.path(), r#""delivery.lost" = "== 0""#);
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[chat]\ntest_drop_every = 7\n").expect("write the config");
    let out = dir.path().join("out");
    let config = config.display().to_string();
    let ran = chatcap(
        run_args(&scenario, &out, &["--server-config", &config]),
        dir.path(),
        &dir.path().join("run"),
    );
    assert_eq!(ran.code(), Some(1), "{ran}");
    assert!(ran.stderr.contains("1 of 1 SLOs failed"), "{ran}");
    let s = summary(&out);
    assert!(u(&s["delivery"]["lost"]) > 0, "{}", s["delivery"]);
    assert_eq!(s["slo"][0]["text"], "delivery.lost == 0");
    assert_eq!(s["slo"][0]["pass"], false);
    // Deliveries were dropped, not posts: history still has every acknowledged post.
    assert_eq!(u(&s["reconciliation"]["missing"]), 0);
}

/// The operations of a summary without the per-second rate (which depends on the run's
/// length) — counts and percentiles.
fn figures(s: &Value) -> Value {
    let mut ops = s["operations"].clone();
    for o in ops.as_object_mut().expect("operations").values_mut() {
        o.as_object_mut()
            .expect("an operation")
            .remove("rate_per_s");
    }
    ops
}

#[test]
fn two_shards_issue_what_one_process_does_and_merge_exactly() {
    let b = baseline();
    assert_eq!(b.ran.code(), Some(0), "{}", b.ran);
    let dir = tempfile::tempdir().expect("temporary folder");
    let out = dir.path().join("out");
    let ran = chatcap(
        run_args(&b.scenario, &out, &["--shards", "2"]),
        dir.path(),
        &dir.path().join("run"),
    );
    assert_eq!(ran.code(), Some(0), "{ran}");
    for shard in ["shard-0", "shard-1"] {
        assert!(out.join(shard).join("totals.json").is_file(), "{shard}");
    }
    let one = summary(&b.out);
    let two = summary(&out);
    for op in ["post_ack", "join", "sign_in"] {
        assert_eq!(
            two["operations"][op]["count"], one["operations"][op]["count"],
            "{op}: two shards vs one process"
        );
    }
    assert_eq!(u(&two["users"]["peak"]), USERS);
    assert_eq!(u(&two["delivery"]["lost"]), 0);
    // The parent scrapes the server while its shards drive it.
    let scraped = server_metrics::rows(&out);
    let acked = server_metrics::last(&scraped, "server", "chatcap_posts_acked_total");
    assert!(acked >= u(&two["operations"]["post_ack"]["count"]) as f64 && acked > 0.0);

    let merged = out.join("merged");
    let ran = chatcap(
        ["merge", "shard-0", "shard-1", "--out", "merged"],
        &out,
        &dir.path().join("merge"),
    );
    assert_eq!(ran.code(), Some(0), "{ran}");
    let m = summary(&merged);
    assert_eq!(figures(&m), figures(&two), "merged vs the sharded run");
    assert!(merged.join("report.html").is_file(), "{ran}");
    assert!(
        merged.join("histograms.hlog").is_file(),
        "the shards' intervals, merged"
    );
    assert_eq!(m["delivery"], two["delivery"]);
}

/// The embedded server of the run writing to `out`: the process whose command line names
/// `out/server-data`.
fn server_pid(out: &Path) -> Option<u32> {
    let data = out.join("server-data");
    let data = data.to_str()?;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let serve = args.get(1) == Some(&b"serve".as_slice());
        (serve && args.contains(&data.as_bytes())).then_some(pid)
    })
}

/// Sockets a process holds open.
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Poll `f` until it gives a value, up to `within`.
fn poll<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid} failed");
}

/// A process stopped with SIGSTOP until this is dropped (also on a failed assertion, so
/// that the run can end).
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Self {
        signal(pid, "-STOP");
        Self(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

#[test]
fn the_open_model_keeps_its_rate_when_the_server_stalls() {
    let b = baseline();
    assert_eq!(b.ran.code(), Some(0), "{}", b.ran);
    let dir = tempfile::tempdir().expect("temporary folder");
    let out = dir.path().join("out");
    let log = dir.path().join("run");
    let child = start(run_args(&b.scenario, &out, &[]), dir.path(), &log);
    let run_pid = child.id();
    let server = poll(Duration::from_secs(30), "the embedded server", || {
        server_pid(&out)
    });
    // Every user connected (plus the two listeners): the ramp is over, the hold runs.
    let limit = Duration::from_secs(30);
    poll(limit, "all users to connect", || {
        (sockets(server) >= USERS as usize + 2).then_some(())
    });
    assert!(
        std::fs::metadata(format!("/proc/{run_pid}")).is_ok(),
        "the run ended before the stall"
    );
    {
        let _stopped = Stopped::new(server);
        std::thread::sleep(STALL);
    }
    let ran = finish(child, &log);
    assert_eq!(ran.code(), Some(0), "{ran}");
    let stalled = summary(&out);
    let calm = summary(&b.out);
    // Arrivals do not wait for replies: the same posts were issued...
    assert_eq!(posts_issued(&stalled), posts_issued(&calm));
    assert_eq!(u(&stalled["operations"]["post_ack"]["timeouts"]), 0);
    // ...and those due during the stall waited for it, measured from their intended start.
    let max_us = |s: &Value| u(&s["operations"]["post_ack"]["max_us"]);
    assert!(
        max_us(&stalled) >= 1_500_000,
        "post_ack max {} µs after a {STALL:?} stall",
        max_us(&stalled)
    );
    assert!(
        max_us(&calm) < 1_500_000,
        "undisturbed post_ack max {} µs",
        max_us(&calm)
    );
    assert_eq!(u(&stalled["delivery"]["lost"]), 0);
}

#[test]
fn a_bad_scenario_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let text = scenario_text("").replace(r#"over = "2s""#, r#"over = "2 parsecs""#);
    let line = 1 + text
        .lines()
        .position(|l| l.contains("parsecs"))
        .expect("the bad line");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, &text).expect("write the scenario");
    let out = dir.path().join("out");
    let ran = chatcap(
        run_args(&path, &out, &[]),
        dir.path(),
        &dir.path().join("run"),
    );
    assert_eq!(ran.code(), Some(2), "{ran}");
    let want = format!("{}:{line}: load[0].ramp.over:", path.display());
    assert!(ran.stderr.contains(&want), "want {want:?} in {ran}");
    assert!(ran.stderr.contains("parsecs"), "{ran}");
    assert!(!out.exists(), "a bad scenario must start nothing");
}

#[test]
fn dry_run_prints_the_rates_and_starts_nothing() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let scenario = write_scenario(dir.path(), "");
    let out = dir.path().join("out");
    let ran = chatcap(
        run_args(&scenario, &out, &["--dry-run"]),
        dir.path(),
        &dir.path().join("run"),
    );
    assert_eq!(ran.code(), Some(0), "{ran}");
    for want in [
        "e2e-run: 50 users at peak",
        "rooms small (10 members)",
        "posts/s total",
        "participant polls/s",
        "sign-ins/s",
        "Lync 2013 model",
    ] {
        assert!(ran.stdout.contains(want), "want {want:?} in {ran}");
    }
    // 50 users × 1,800 posts per hour = 25 posts/s.
    let posts = ran
        .stdout
        .lines()
        .find(|l| l.starts_with("posts/s total"))
        .expect("a posts/s line");
    assert!(posts.contains("25.00"), "{posts}");
    assert!(!out.exists(), "a dry run must start nothing");
}
