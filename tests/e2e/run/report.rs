//! `chatcap report` and `chatcap compare` on results folders written by real runs: the page
//! and its charts, re-rendering, the figures of a comparison, and folders that are
//! truncated, foreign or older.

use std::path::Path;

use serde_json::Value;

use super::{baseline, chatcap, summary, u};

/// A copy of the baseline's results files in `into`.
pub(super) fn copy_results(into: &Path) {
    let b = baseline();
    assert_eq!(b.ran.code(), Some(0), "{}", b.ran);
    std::fs::create_dir_all(into).expect("mkdir");
    for f in [
        "summary.json",
        "timeline.csv",
        "resources.csv",
        "histograms.hlog",
        "server_metrics.csv",
    ] {
        std::fs::copy(b.out.join(f), into.join(f)).unwrap_or_else(|e| panic!("copy {f}: {e}"));
    }
}

/// The ids of the `<figure>`s of a page.
fn figure_ids(page: &str) -> Vec<String> {
    page.match_indices("<figure id=\"")
        .map(|(i, m)| {
            let rest = &page[i + m.len()..];
            rest[..rest.find('"').expect("closing quote")].to_string()
        })
        .collect()
}

#[test]
fn a_run_ends_with_a_report_page_whose_every_chart_is_drawn_and_labelled() {
    let b = baseline();
    assert_eq!(b.ran.code(), Some(0), "{}", b.ran);
    assert!(b.ran.stdout.contains("report: "), "{}", b.ran);
    let page = std::fs::read_to_string(b.out.join("report.html")).expect("report.html");
    let ids = figure_ids(&page);
    for id in [
        "users",
        "throughput",
        "latency-post_ack",
        "latency-delivery",
        "latency-join",
        "latency-vs-users",
        "cpu-process",
        "cpu-role",
        "memory-process",
        "memory-role",
        "fds-process",
        "fds-role",
        "errors",
        "database",
        "server-commit-batch-size",
        "server-commit-time",
        "server-queue-depths",
        "server-sessions",
        "server-posts-acknowledged",
        "server-deliveries",
    ] {
        assert!(ids.iter().any(|i| i == id), "no chart {id} in {ids:?}");
    }
    for id in &ids {
        let svg = std::fs::read_to_string(b.out.join("plots").join(format!("{id}.svg")))
            .unwrap_or_else(|e| panic!("plots/{id}.svg: {e}"));
        assert!(svg.starts_with("<svg"), "{id}");
        assert!(
            svg.contains("seconds since the load started") || svg.contains("connections signed in"),
            "{id}: x axis label"
        );
        assert!(
            svg.matches("<text").count() >= 5,
            "{id}: title, axis labels and numbers"
        );
        assert!(
            svg.contains("<polyline") || svg.contains("<circle"),
            "{id}: no line drawn"
        );
        assert!(
            page.contains(svg.trim_start_matches(|c| c != '<')),
            "{id}: the page inlines plots/{id}.svg"
        );
    }
    // Self-contained: nothing to fetch.
    for external in ["<script", "<link", "src=", "url(", "http://", "https://"] {
        assert!(
            !page
                .replace("http://www.w3.org/2000/svg", "")
                .contains(external),
            "the page refers to {external}"
        );
    }
    assert!(
        page.contains("delivery.lost == 0") && page.contains("pass"),
        "SLO table with verdicts"
    );
}

#[test]
fn re_rendering_a_folder_gives_the_same_report() {
    let b = baseline();
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy");
    copy_results(&copy);
    let ran = chatcap(["report", "copy"], dir.path(), &dir.path().join("report"));
    assert_eq!(ran.code(), Some(0), "{ran}");
    let again = std::fs::read(copy.join("report.html")).expect("re-rendered page");
    let first = std::fs::read(b.out.join("report.html")).expect("the run's page");
    assert!(
        again == first,
        "the re-rendered report.html differs from the run's"
    );
    for entry in std::fs::read_dir(b.out.join("plots")).expect("plots") {
        let name = entry.expect("entry").file_name();
        let a = std::fs::read(b.out.join("plots").join(&name)).expect("svg");
        let c = std::fs::read(copy.join("plots").join(&name)).expect("re-rendered svg");
        assert!(a == c, "{name:?} differs");
    }
    // One file, its format from its extension.
    for (file, start) in [
        ("r.html", "<!DOCTYPE html>"),
        ("r.md", "# chatcap run: e2e-run"),
        ("r.json", "{"),
        ("r.csv", "operation,count,rate_per_s,"),
    ] {
        let ran = chatcap(
            ["report", "copy", "--out", file],
            dir.path(),
            &dir.path().join(file),
        );
        assert_eq!(ran.code(), Some(0), "{ran}");
        let text = std::fs::read_to_string(dir.path().join(file)).expect(file);
        assert!(
            text.starts_with(start),
            "{file}: {}",
            &text[..text.len().min(80)]
        );
    }
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).expect("json"))
            .expect("r.json is JSON");
    assert_eq!(json, summary(&b.out));
    let ran = chatcap(
        ["report", "copy", "--out", "r.pdf"],
        dir.path(),
        &dir.path().join("pdf"),
    );
    assert_eq!(ran.code(), Some(2), "{ran}");
    assert!(ran.stderr.contains("r.pdf: unknown report format"), "{ran}");
}

/// The comparison's row `figure` from `compare --out x.json`.
fn row<'a>(c: &'a Value, figure: &str) -> &'a Value {
    c["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["figure"] == figure)
        .unwrap_or_else(|| panic!("no row {figure}"))
}

#[test]
fn compare_shows_each_figure_and_its_change_from_the_baseline() {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_results(&dir.path().join("before"));
    copy_results(&dir.path().join("after"));
    // The second run: post_ack p99 doubled, 3 deliveries lost, 10 connections fewer.
    let path = dir.path().join("after/summary.json");
    let mut s: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    let p99 = u(&s["operations"]["post_ack"]["p99_us"]);
    let peak = u(&s["users"]["peak"]);
    s["operations"]["post_ack"]["p99_us"] = (2 * p99).into();
    s["delivery"]["lost"] = 3.into();
    s["users"]["peak"] = (peak - 10).into();
    std::fs::write(&path, serde_json::to_string_pretty(&s).expect("json")).expect("write");

    for out in ["c.json", "c.md", "c.html"] {
        let ran = chatcap(
            ["compare", "before", "after", "--out", out],
            dir.path(),
            &dir.path().join(out),
        );
        assert_eq!(ran.code(), Some(0), "{ran}");
        assert!(
            ran.stdout.contains("before (baseline)") && ran.stdout.contains("post_ack p99"),
            "{ran}"
        );
    }
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("c.json")).expect("c.json"))
            .expect("JSON");
    assert_eq!(c["runs"], serde_json::json!(["before", "after"]));
    let ms = p99 as f64 / 1000.0;
    let r = row(&c, "post_ack p99");
    assert_eq!(r["values"], serde_json::json!([ms, 2.0 * ms]));
    assert_eq!(r["deltas"][1].as_f64(), Some(ms));
    assert_eq!(r["delta_pct"][1].as_f64(), Some(100.0));
    let r = row(&c, "deliveries lost");
    assert_eq!(r["deltas"][1].as_f64(), Some(3.0));
    assert!(
        r["delta_pct"][1].is_null(),
        "no percentage of a zero baseline"
    );
    let r = row(&c, "peak connections");
    assert_eq!(r["deltas"][1].as_f64(), Some(-10.0));
    let r = row(&c, "sign_in rate");
    assert_eq!(
        r["deltas"][1].as_f64(),
        Some(0.0),
        "unchanged figures show no change"
    );
    let page = std::fs::read_to_string(dir.path().join("c.html")).expect("c.html");
    assert!(
        page.contains("latency-post_ack") && page.contains("<svg"),
        "overlaid charts"
    );
    let md = std::fs::read_to_string(dir.path().join("c.md")).expect("c.md");
    assert!(
        md.contains("| post_ack p99 | ms |") && md.contains("(+100.0%)"),
        "{md}"
    );
}

/// `chatcap report DIR` exits 2 and says `needle` (and no panic).
fn refused(dir: &Path, needle: &str) {
    let ran = chatcap(
        ["report".as_ref(), dir.as_os_str()],
        dir.parent().expect("parent"),
        &dir.with_extension("log"),
    );
    assert_eq!(ran.code(), Some(2), "{ran}");
    assert!(ran.stderr.contains(needle), "expected {needle:?}: {ran}");
    assert!(!ran.stderr.contains("panicked"), "{ran}");
}

#[test]
fn truncated_foreign_and_older_folders_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let case = |name: &str| {
        let d = dir.path().join(name);
        copy_results(&d);
        d
    };
    let d = case("truncated-summary");
    let text = std::fs::read_to_string(d.join("summary.json")).expect("read");
    std::fs::write(d.join("summary.json"), &text[..text.len() / 2]).expect("cut");
    refused(&d, "summary.json: truncated: the JSON ends early");

    let d = case("truncated-timeline");
    let text = std::fs::read_to_string(d.join("timeline.csv")).expect("read");
    let cut = text.trim_end().rfind(',').expect("a comma");
    std::fs::write(d.join("timeline.csv"), &text[..cut]).expect("cut");
    refused(&d, "timeline.csv: line");

    let d = case("foreign");
    std::fs::write(d.join("summary.json"), r#"{"name": "someone else's"}"#).expect("write");
    refused(
        &d,
        "summary.json: not a chatcap run summary (no \"schema\" field)",
    );

    let d = case("older");
    let text = std::fs::read_to_string(d.join("summary.json")).expect("read");
    let mut v: Value = serde_json::from_str(&text).expect("json");
    v["schema"] = "chatcap.summary/0".into();
    std::fs::write(d.join("summary.json"), v.to_string()).expect("write");
    refused(&d, "summary.json: schema chatcap.summary/0");

    let d = case("no-histograms");
    std::fs::remove_file(d.join("histograms.hlog")).expect("rm");
    refused(&d, "no histograms.hlog in");

    let d = case("bad-histograms");
    std::fs::write(
        d.join("histograms.hlog"),
        "Tag=post_ack.response,1.0,1.0,0.5,notbase64!\n",
    )
    .expect("write");
    refused(&d, "histograms.hlog:1:");

    let d = dir.path().join("empty");
    std::fs::create_dir_all(&d).expect("mkdir");
    refused(&d, "summary.json: missing");
    refused(&dir.path().join("nowhere"), "not a results folder");
}
