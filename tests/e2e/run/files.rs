//! `chatcap run` with file operations: virtual users upload to and download from the file
//! web service of the embedded target over HTTP, beside their WebSockets.

use std::path::Path;

use super::{chatcap, run_args, schema, summary, u};

/// 30 users in 6 rooms of 10, uploading (about 6/s in all) and downloading (about 15/s)
/// 4 KiB files while posting, ramped over 2 s and held for 6 s.
const SCENARIO: &str = r#"name = "e2e-files"
description = "chatcap's file operation tests"
seed = 11

[population]
users = 30

[[population.rooms]]
class = "small"
size = 10
rooms_per_user = 2

[behaviour]
request_timeout = "10s"
file_kb = 4

[[behaviour.ops]]
op = "file_upload"
per_user_per_hour = 720

[[behaviour.ops]]
op = "file_download"
per_user_per_hour = 1800

[[behaviour.ops]]
op = "post"
per_user_per_hour = 360

[[load]]
ramp = { to = 30, over = "2s" }

[[load]]
hold = { for = "6s" }

[slo]
"file_upload.p99" = "< 5s"
"file_download.p99" = "< 5s"
error_rate = "== 0"
"#;

/// The files below `dir`, recursively, but for uploads in progress (`incoming/`).
fn stored_files(dir: &Path) -> Vec<std::fs::Metadata> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let meta = entry.metadata().expect("stat a stored file");
        if meta.is_dir() && entry.file_name() != "incoming" {
            found.extend(stored_files(&entry.path()));
        } else if meta.is_file() {
            found.push(meta);
        }
    }
    found
}

#[test]
fn file_operations_run_against_the_embedded_target() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let scenario = dir.path().join("files.toml");
    std::fs::write(&scenario, SCENARIO).expect("write the scenario");
    let out = dir.path().join("out");
    let ran = chatcap(
        run_args(&scenario, &out, &[]),
        dir.path(),
        &dir.path().join("run"),
    );
    assert_eq!(ran.code(), Some(0), "{ran}");
    let s = summary(&out);
    let ops = &s["operations"];
    let (up, down) = (&ops["file_upload"], &ops["file_download"]);
    assert!(u(&up["count"]) > 0, "no upload measured: {ops}");
    assert!(u(&down["count"]) > 0, "no download measured: {ops}");
    for o in [up, down] {
        assert_eq!((u(&o["errors"]), u(&o["timeouts"])), (0, 0), "{o}");
        assert!(u(&o["p50_us"]) <= u(&o["p99_us"]), "{o}");
        assert!(u(&o["service"]["p99_us"]) <= u(&o["max_us"]), "{o}");
    }
    assert_eq!(s["errors"], serde_json::json!({}), "{}", s["errors"]);
    assert_eq!(s["error_rate"].as_f64(), Some(0.0));
    assert!(s["slo"]
        .as_array()
        .expect("slo results")
        .iter()
        .all(|r| r["pass"] == true));
    // The announcing messages of the uploads do not disturb delivery tracking.
    assert_eq!(u(&s["delivery"]["lost"]), 0);
    assert_eq!(u(&s["delivery"]["duplicated"]), 0);

    // Every measured upload is in the server's file store, with the size asked for (an
    // upload still in flight when the run ended may be stored without being measured).
    let stored = stored_files(&out.join("server-data").join("files"));
    assert!(
        stored.len() as u64 >= u(&up["count"]),
        "{} files stored for {} uploads",
        stored.len(),
        u(&up["count"])
    );
    assert!(stored.iter().all(|m| m.len() == 4 * 1024));

    let root = schema::schema();
    let errors = schema::validate(&root, &root, &s, "summary");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
