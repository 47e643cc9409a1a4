//! Unit tests of the scenario format: errors that locate themselves, every load shape's
//! phases, levels, the Lync 2013 figures, the shipped files and their JSON Schema.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::plan::{Cmp, OpKind, Phase, Target};
use super::raw::{parse_duration, parse_rate};
use super::*;

mod targets;

const HEAD: &str = r#"name = "t"
seed = 7

[population]
users = 100

[[population.rooms]]
class = "small"
size = 10
rooms_per_user = 2

[[behaviour.ops]]
op = "post"
per_user_per_hour = 60
"#;

fn file() -> PathBuf {
    PathBuf::from("scenarios/t.toml")
}

fn parse(text: &str) -> Result<RunPlan, ScenarioError> {
    Scenario::parse(text, &file())
}

/// HEAD plus `rest`; must validate.
fn plan(rest: &str) -> RunPlan {
    let text = format!("{HEAD}{rest}");
    parse(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

/// The single problem of `text`, with the 1-based line of `needle` in it.
fn problem(text: &str, needle: &str) -> (Problem, usize) {
    let err = parse(text).expect_err("should not validate");
    let problems = err.problems();
    assert_eq!(problems.len(), 1, "{err}");
    let line = text
        .lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1;
    (problems[0].clone(), line)
}

fn ph(name: &str, from: u32, to: u32, secs: u64) -> Phase {
    Phase {
        name: name.into(),
        from,
        to,
        duration: Duration::from_secs(secs),
    }
}

#[test]
fn type_error_names_file_line_and_field() {
    let text = HEAD.replace("users = 100", "users = \"many\"");
    let (p, line) = problem(&text, "users =");
    assert_eq!(p.file, file());
    assert_eq!((p.line, p.field.as_str()), (line, "population.users"));
    assert!(
        p.to_string()
            .starts_with(&format!("scenarios/t.toml:{line}: population.users: ")),
        "{p}"
    );
}

#[test]
fn a_control_character_in_a_comment_is_named() {
    // Found by the decoder property tests: the toml crate gives no message for it.
    let text = format!("# form\u{c}feed\n{HEAD}");
    let (p, line) = problem(&text, "form");
    assert_eq!(line, 1);
    assert_eq!(p.line, 1, "{p}");
    assert!(p.message.contains("control character U+000C"), "{p}");
}

#[test]
fn unknown_key_names_its_path() {
    let text = format!("{HEAD}\n[workload]\nmodle = \"open\"\n");
    let (p, line) = problem(&text, "modle");
    assert_eq!((p.line, p.field.as_str()), (line, "workload.modle"));
    assert!(p.message.contains("unknown field"), "{}", p.message);
}

#[test]
fn bad_duration_in_third_phase_names_load_2_ramp_over() {
    let text = format!(
        "{HEAD}\n[[load]]\nramp = {{ to = 50, over = \"10s\" }}\n[[load]]\nhold = {{ for = \"5s\" }}\n\
         [[load]]\nramp = {{ to = 100, over = \"10 parsecs\" }}\n"
    );
    let (p, line) = problem(&text, "parsecs");
    assert_eq!((p.line, p.field.as_str()), (line, "load[2].ramp.over"));
    assert!(p.message.contains("not a duration"), "{}", p.message);
}

#[test]
fn phase_above_population_names_the_phase() {
    // Inline-array form, before the tables.
    let text = format!("load = [\n  {{ ramp = {{ to = 50, over = \"1m\" }} }},\n  {{ ramp = {{ to = 500, over = \"1m\" }} }},\n]\n{HEAD}");
    let (p, line) = problem(&text, "to = 500");
    assert_eq!((p.line, p.field.as_str()), (line, "load[1].ramp.to"));
    assert!(
        p.message.contains("population.users (100)"),
        "{}",
        p.message
    );
}

#[test]
fn validation_errors_locate_fields() {
    let load = "[[load]]\nramp = { to = 100, over = \"1m\" }\n";
    let cases: [(String, &str, &str); 9] = [
        (
            format!("{HEAD}{load}[behaviour]\nhistory_on_join = 0\n"),
            "history_on_join",
            "behaviour.history_on_join",
        ),
        (
            format!("slo_window = \"forever\"\n{HEAD}{load}"),
            "forever",
            "slo_window",
        ),
        (
            format!("{HEAD}{load}[behaviour]\nfile_kb = 20001\n"),
            "file_kb",
            "behaviour.file_kb",
        ),
        (
            format!("{HEAD}[[behaviour.ops]]\nop = \"teleport\"\nper_user_per_hour = 1\n{load}"),
            "teleport",
            "behaviour.ops[1].op",
        ),
        (
            HEAD.replace("rooms_per_user = 2", "rooms_per_user = 2\nopen_share = 1.5") + load,
            "open_share",
            "population.rooms[0].open_share",
        ),
        (
            HEAD.replace("size = 10", "size = 1") + load,
            "size = 1",
            "population.rooms[0].size",
        ),
        (
            format!("{HEAD}{load}[slo]\n\"post_ack.p99\" = \"< 50\"\n"),
            "post_ack.p99",
            "slo.\"post_ack.p99\"",
        ),
        (
            format!("{HEAD}{load}[slo]\n\"Post-Ack\" = \"< 50ms\"\n"),
            "Post-Ack",
            "slo.Post-Ack",
        ),
        (
            format!("{HEAD}[[load]]\nramp = {{ to = 100 }}\n"),
            "ramp =",
            "load[0].ramp",
        ),
    ];
    for (text, needle, field) in cases {
        let (p, line) = problem(&text, needle);
        assert_eq!(
            (p.line, p.field.as_str()),
            (line, field),
            "{p}\n---\n{text}"
        );
    }
}

#[test]
fn several_problems_are_all_reported() {
    let text = HEAD
        .replace("users = 100", "users = 0")
        .replace("per_user_per_hour = 60", "per_user_per_hour = 0");
    let err = parse(&text).expect_err("invalid");
    let fields: Vec<_> = err.problems().iter().map(|p| p.field.clone()).collect();
    for f in ["population.users", "behaviour", "load"] {
        assert!(fields.iter().any(|x| x == f), "{f} missing in {fields:?}");
    }
}

#[test]
fn ramp_and_hold_phases() {
    let p = plan("[[load]]\nramp = { to = 100, over = \"20s\" }\n[[load]]\nhold = { for = \"1m\" }\n[[load]]\nramp = { to = 50, rate = \"5/s\" }\n");
    assert_eq!(
        p.phases,
        vec![
            ph("ramp", 0, 100, 20),
            ph("hold", 100, 100, 60),
            ph("ramp", 100, 50, 10)
        ]
    );
    assert_eq!(p.duration(), Duration::from_secs(90));
    assert_eq!(p.peak_users(), 100);
}

#[test]
fn step_expands_to_ramp_hold_pairs() {
    let p = plan("[[load]]\nstep = { by = 30, every = \"1m\", times = 3, over = \"10s\" }\n[[load]]\nsoak = { for = \"1h\" }\n");
    assert_eq!(
        p.phases,
        vec![
            ph("step 1 ramp", 0, 30, 10),
            ph("step 1 hold", 30, 30, 50),
            ph("step 2 ramp", 30, 60, 10),
            ph("step 2 hold", 60, 60, 50),
            ph("step 3 ramp", 60, 90, 10),
            ph("step 3 hold", 90, 90, 50),
            ph("soak", 90, 90, 3600),
        ]
    );
    // Default: a jump at the start of each step.
    let p = plan("[[load]]\nstep = { by = 50, every = \"30s\", times = 2 }\n");
    assert_eq!(
        p.phases,
        vec![
            ph("step 1 ramp", 0, 50, 0),
            ph("step 1 hold", 50, 50, 30),
            ph("step 2 ramp", 50, 100, 0),
            ph("step 2 hold", 100, 100, 30)
        ]
    );
    let err = parse(&format!(
        "{HEAD}[[load]]\nstep = {{ by = 50, every = \"30s\", times = 3 }}\n"
    ))
    .expect_err("150 > 100");
    assert_eq!(err.problems()[0].field, "load[0].step.by");
}

#[test]
fn spike_and_soak_phases() {
    let p = plan("[[load]]\nramp = { to = 20, over = \"10s\" }\n[[load]]\nspike = { to = 100, over = \"5s\", hold = \"30s\", back_over = \"15s\" }\n[[load]]\nsoak = { for = \"2h\" }\n");
    assert_eq!(
        p.phases,
        vec![
            ph("ramp", 0, 20, 10),
            ph("spike", 20, 100, 5),
            ph("spike hold", 100, 100, 30),
            ph("spike back", 100, 20, 15),
            ph("soak", 20, 20, 7200),
        ]
    );
    let p = plan("[[load]]\nspike = { to = 100, over = \"5s\", hold = \"1m\" }\n");
    assert_eq!(
        p.phases[2],
        ph("spike back", 100, 0, 5),
        "back_over defaults to over"
    );
}

#[test]
fn users_at_follows_a_ramp() {
    let p = plan(
        "[[load]]\nramp = { to = 100, over = \"100s\" }\n[[load]]\nhold = { for = \"10s\" }\n",
    );
    let at = |s: f64| p.users_at(Duration::from_secs_f64(s));
    assert_eq!(
        [
            at(0.0),
            at(25.0),
            at(50.0),
            at(99.0),
            at(100.0),
            at(105.0),
            at(500.0)
        ],
        [0, 25, 50, 99, 100, 100, 100]
    );
}

#[test]
fn levels_scale_rates() {
    for (level, factor) in [
        ("\"low\"", 0.3),
        ("\"medium\"", 0.6),
        ("\"high\"", 1.0),
        ("0.45", 0.45),
        ("2", 2.0),
    ] {
        let p = plan(&format!(
            "[behaviour]\nlevel = {level}\n[[load]]\nramp = {{ to = 100, over = \"1m\" }}\n"
        ));
        assert_eq!(p.level, factor);
        assert!(
            (p.ops[0].per_user_per_hour - 60.0 * factor).abs() < 1e-9,
            "{level}"
        );
    }
    let err = parse(&format!(
        "{HEAD}[behaviour]\nlevel = \"extreme\"\n[[load]]\nhold = {{ for = \"1s\" }}\n"
    ))
    .expect_err("bad level");
    assert_eq!(err.problems()[0].field, "behaviour.level");
}

#[test]
fn durations_rates_and_slos_parse() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert!(
        parse_duration("10").is_err()
            && parse_duration("s").is_err()
            && parse_duration("3 weeks").is_err()
    );
    assert_eq!(parse_rate("10/s"), Ok(10.0));
    assert_eq!(parse_rate("600/m"), Ok(10.0));
    assert!(parse_rate("0/s").is_err() && parse_rate("10").is_err());
    let s = slo::parse("post_ack.p99", "< 50ms").expect("slo");
    assert_eq!(
        (s.cmp, s.threshold, s.text.as_str()),
        (Cmp::Lt, 50_000.0, "post_ack.p99 < 50ms")
    );
    assert_eq!(
        slo::parse("error_rate", "<= 0.1%").map(|s| (s.cmp, s.threshold)),
        Ok((Cmp::Le, 0.001))
    );
    assert_eq!(
        slo::parse("delivery.lost", "== 0").map(|s| (s.cmp, s.threshold)),
        Ok((Cmp::Eq, 0.0))
    );
    assert_eq!(
        slo::parse("join.p999", ">= 2s").map(|s| s.threshold),
        Ok(2e6)
    );
    assert_eq!(
        slo::parse("server.cpu", "< 80%").map(|s| s.threshold),
        Ok(0.8)
    );
    for (m, v) in [
        ("delivery.lost", "< 5ms"),
        ("post_ack.p99", "50ms"),
        ("post_ack.p99", "< 5%"),
        ("x..y", "< 1"),
        ("error_rate", "< lots"),
    ] {
        assert!(slo::parse(m, v).is_err(), "{m} = {v}");
    }
}

const LYNC: &str = r#"name = "lync"
[population]
users = 80000
model = "lync2013"
[behaviour]
model = "lync2013"
[[load]]
ramp = { to = 80000, rate = "10/s" }
[[load]]
hold = { for = "1h" }
"#;

#[test]
fn lync2013_model_at_80000_matches_the_table() {
    let p = parse(LYNC).expect("lync");
    assert_eq!(p.population.endpoints_per_user, 1.5);
    assert_eq!(p.phases[0], ph("ramp", 0, 80_000, 8_000));
    let d = derived_rates(&p);
    let rooms: Vec<_> = d
        .classes
        .iter()
        .map(|c| (c.name.as_str(), c.size, c.rooms))
        .collect();
    assert_eq!(
        rooms,
        [
            ("small", 30, 32_000),
            ("medium", 150, 1_067),
            ("large", 16_000, 10)
        ]
    );
    let close = |a: f64, b: f64, tol: f64| assert!((a - b).abs() <= tol, "{a} vs {b}");
    close(d.classes[0].posts_per_s, 22.22, 0.005);
    close(d.classes[1].posts_per_s, 1.67, 0.005);
    close(d.classes[2].posts_per_s, 0.15, 0.005);
    close(d.posts_per_s, 24.04, 0.01);
    close(d.presence_per_s, 133.33, 0.005);
    close(d.polls_per_s, 600.0, 1e-9);
    close(d.participants_polled_per_s, 15_000.0, 1e-6);
    close(d.sign_ins_per_s, 10.0, 1e-9);
    // 22.22×29×1.5 + 1.667×149×1.5 + 0.15×15,999×1.5: about 4,940 deliveries/s.
    close(d.deliveries_per_s, 4_939.4, 1.0);
    let table = dry_run_table(&p);
    for s in [
        "32,000", "1,067", "22.22", "1.67", "0.15", "15,000", "133.33", "10.00",
    ] {
        assert!(table.contains(s), "{s} missing:\n{table}");
    }
}

#[test]
fn lync2013_model_scales_to_small_populations() {
    let p = parse(&LYNC.replace("80000", "300")).expect("lync 300");
    let sizes: Vec<_> = p
        .population
        .rooms
        .iter()
        .map(|c| (c.size, c.rooms(300)))
        .collect();
    assert_eq!(sizes, [(30, 120), (150, 4), (300, 2)]);
    let medium = LYNC.replace("[behaviour]\n", "[behaviour]\nlevel = \"medium\"\n");
    let p = parse(&medium).expect("medium");
    close_all(
        &p.ops
            .iter()
            .map(|o| o.per_user_per_hour)
            .collect::<Vec<_>>(),
        &[0.6, 0.045, 0.00405, 16.2, 3.6],
    );
    assert_eq!(
        p.ops.iter().map(|o| o.op).collect::<Vec<_>>(),
        [
            OpKind::Post,
            OpKind::Post,
            OpKind::Post,
            OpKind::PollParticipants,
            OpKind::Presence
        ]
    );
}

fn close_all(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-9, "{a:?} vs {b:?}");
    }
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

#[test]
fn every_shipped_scenario_validates() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(scenarios_dir()).expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let plan = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!dry_run_table(&plan).is_empty());
            names.push(
                path.file_stem()
                    .expect("stem")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    names.sort();
    let want = [
        "file-heavy",
        "join-storm",
        "lync2013-pool",
        "lync2013-server",
        "quickstart",
        "soak",
        "spike",
    ];
    for w in want {
        assert!(
            names.iter().any(|n| n == w),
            "{w}.toml missing from {names:?}"
        );
    }
}

#[test]
fn shipped_lync_scenarios_reproduce_the_model() {
    let pool = Scenario::load(scenarios_dir().join("lync2013-pool.toml")).expect("pool");
    assert_eq!(pool.peak_users(), 80_000);
    let d = derived_rates(&pool);
    assert_eq!(
        d.classes.iter().map(|c| c.rooms).collect::<Vec<_>>(),
        [32_000, 1_067, 10]
    );
    let server = Scenario::load(scenarios_dir().join("lync2013-server.toml")).expect("server");
    assert_eq!(server.peak_users(), 20_000);
    let quick = Scenario::load(scenarios_dir().join("quickstart.toml")).expect("quickstart");
    assert_eq!(
        quick.target,
        Target::Embedded {
            front_ends: 0,
            tls: false
        }
    );
    assert!(
        quick.duration() <= Duration::from_secs(120),
        "quickstart takes about a minute"
    );
    let files = Scenario::load(scenarios_dir().join("file-heavy.toml")).expect("file-heavy");
    assert!(files
        .ops
        .iter()
        .any(|o| matches!(o.op, OpKind::FileUpload | OpKind::FileDownload)));
    assert_eq!(
        (files.file_kb, quick.file_kb),
        (100, 100),
        "set, and the default"
    );
}

#[test]
fn the_slo_window_starts_at_the_last_phase() {
    let load = "[[load]]\nramp = { to = 100, over = \"30s\" }\n[[load]]\nhold = { for = \"2m\" }\n";
    let whole = Scenario::parse(&format!("{HEAD}{load}"), Path::new("t.toml")).expect("valid");
    assert_eq!(whole.slo_window_start(), Duration::ZERO);
    let last = Scenario::parse(
        &format!("slo_window = \"last_phase\"\n{HEAD}{load}"),
        Path::new("t.toml"),
    )
    .expect("valid");
    assert_eq!(last.slo_window_start(), Duration::from_secs(30));
    let settled = Scenario::parse(
        &format!("slo_window = \"last_phase\"\nslo_settle = \"15s\"\n{HEAD}{load}"),
        Path::new("t.toml"),
    )
    .expect("valid");
    assert_eq!(settled.slo_window_start(), Duration::from_secs(45));
    for bad in [
        "slo_settle = \"15s\"\n",
        "slo_window = \"last_phase\"\nslo_settle = \"3m\"\n",
    ] {
        let err = Scenario::parse(&format!("{bad}{HEAD}{load}"), Path::new("t.toml"))
            .expect_err("refused");
        assert!(err.to_string().contains("slo_settle"), "{err}");
    }
}
