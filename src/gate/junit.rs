//! The gate's verdicts as JUnit XML (`--junit FILE`), the report format CI servers read: one
//! test suite, one test case per check, a `<failure>` for each failed one. Its structure is
//! described by `reports/schema/junit.xsd`.

use std::fmt::Write as _;

use super::check::Check;
use crate::report::html::escape;

/// The document for the checks of run `run` (its folder) at `timestamp` (RFC 3339).
pub fn xml(suite: &str, run: &str, timestamp: &str, checks: &[Check]) -> String {
    let failures = checks.iter().filter(|c| !c.pass).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"chatcap gate\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"0\">",
        checks.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"0\" timestamp=\"{}\">",
        escape(suite),
        checks.len(),
        escape(timestamp.trim_end_matches('Z'))
    );
    let _ = writeln!(
        out,
        "    <properties>\n      <property name=\"run\" value=\"{}\"/>\n    </properties>",
        escape(run)
    );
    for c in checks {
        let head = format!(
            "    <testcase classname=\"chatcap.gate.{}\" name=\"{}\" time=\"0\"",
            c.kind.name(),
            escape(&c.name)
        );
        if c.pass {
            let _ = writeln!(out, "{head}/>");
        } else {
            let message = format!("measured {}, limit {}", c.measured, c.limit);
            let _ = writeln!(
                out,
                "{head}>\n      <failure type=\"{}\" message=\"{}\">{}: {}</failure>\n    </testcase>",
                c.kind.name(),
                escape(&message),
                escape(&c.name),
                escape(&message)
            );
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::check::Kind;

    #[test]
    fn failures_carry_the_reason_and_text_is_escaped() {
        let checks = vec![
            Check {
                kind: Kind::Slo,
                name: "post_ack.p99 < 50ms".into(),
                measured: "41.00 ms".into(),
                limit: "< 50ms".into(),
                pass: true,
            },
            Check {
                kind: Kind::Regression,
                name: "throughput -10% & \"more\"".into(),
                measured: "800".into(),
                limit: "≥ 900 (baseline 1000 -10%)".into(),
                pass: false,
            },
        ];
        let x = xml(
            "chatcap gate: quickstart",
            "reports/x",
            "2026-12-03T10:00:00Z",
            &checks,
        );
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert!(
            x.contains("name=\"post_ack.p99 &lt; 50ms\" time=\"0\"/>"),
            "{x}"
        );
        assert!(x.contains("throughput -10% &amp; &quot;more&quot;"), "{x}");
        assert!(x.contains("<failure type=\"regression\" message=\"measured 800, limit ≥ 900 (baseline 1000 -10%)\">"), "{x}");
        assert!(x.contains("timestamp=\"2026-12-03T10:00:00\""), "{x}");
    }
}
