//! histograms.hlog read by another HdrHistogram implementation: the Python `hdrhistogram`
//! package (installed by `scripts/test` into a virtual environment, its interpreter named by
//! `CHATCAP_PYTHON`) decodes and merges the intervals of every tag and gets the counts,
//! maxima and percentiles of summary.json — exactly, with percentiles taken at the rank
//! HdrHistogram's Java and Rust implementations use (the package itself rounds the rank to
//! the nearest count, which can give a lower value at a bucket edge). Without that interpreter the test prints a notice and passes, unless
//! `CHATCAP_REQUIRE_PYTHON` is set (as `scripts/test` does).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{baseline, summary};

/// The Python interpreter (`CHATCAP_PYTHON`, default python3) if it can import `module`;
/// else `None` with a notice, or a panic when `CHATCAP_REQUIRE_PYTHON` is set.
pub(super) fn python_with(module: &str, package: &str) -> Option<String> {
    let python = std::env::var("CHATCAP_PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    match importable {
        true => Some(python),
        false if std::env::var_os("CHATCAP_REQUIRE_PYTHON").is_some() => panic!(
            "CHATCAP_REQUIRE_PYTHON is set but {python} cannot import {module} \
             (pip install {package}; scripts/test does it in a virtual environment)"
        ),
        false => {
            eprintln!(
                "NOTICE: test skipped: {python} cannot import {module} \
                 (pip install {package}, set CHATCAP_PYTHON)"
            );
            None
        }
    }
}

#[test]
fn another_hdrhistogram_implementation_reads_the_same_counts_and_percentiles() {
    let Some(python) = python_with("hdrh.log", "hdrhistogram") else {
        return;
    };
    let b = baseline();
    assert_eq!(b.ran.code(), Some(0), "{}", b.ran);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/run/hlog_crosscheck.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(b.out.join("histograms.hlog"))
        .output()
        .expect("run the Python reader");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).expect("the reader prints JSON");
    let s = summary(&b.out);
    let ops = s["operations"].as_object().expect("operations");
    assert!(ops.contains_key("post_ack") && ops.contains_key("delivery"));
    for (op, o) in ops {
        let response = &read[format!("{op}.response")];
        let service = &read[format!("{op}.service")];
        assert_eq!(response["count"], o["count"], "{op}: count");
        for key in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
            assert_eq!(response[key], o[key], "{op}.response {key}");
            if op != "delivery" {
                assert_eq!(service[key], o["service"][key], "{op}.service {key}");
            }
        }
        // The package's own percentiles round the rank to the nearest count, never above
        // the ceiling chatcap (like HdrHistogram's Java and Rust) uses.
        for (p, key) in [
            ("50.0", "p50_us"),
            ("90.0", "p90_us"),
            ("99.0", "p99_us"),
            ("99.9", "p999_us"),
        ] {
            let theirs = response["package_percentiles_us"][p]
                .as_u64()
                .expect("a value");
            assert!(
                theirs <= o[key].as_u64().expect("a value"),
                "{op} p{p}: {theirs} vs {}",
                o[key]
            );
        }
    }
}
