//! Gate rules (`--rules FILE`, TOML): absolute thresholds in the scenarios' `[slo]` syntax
//! and, against a baseline run, how far each figure may move:
//!
//! ```toml
//! [slo]
//! "post_ack.p99" = "< 100ms"
//! "server.cpu_us_per_request" = "< 400"
//!
//! [regression]
//! throughput = "-10%"          # may drop by at most 10 %
//! "post_ack.p99" = "+25%"      # may rise by at most 25 %
//! "delivery.lost" = "+0"       # no loss the baseline did not have
//! "post_ack.p50" = "+2ms"      # latency: an absolute rise
//! ```
//!
//! Every problem names the file, line and field (exit code 2).

use std::collections::BTreeMap;
use std::path::Path;

use chatcap_server::toml_spans::{self, FieldPath, FileError, Source};
use serde::Deserialize;

use crate::report::model::Summary;
use crate::scenario::plan::Slo;
use crate::scenario::slo::{check_name, is_latency, number_and_unit, parse as parse_slo};

/// Which way a figure may move, and by how much.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerance {
    /// The metric path (as in `[slo]`).
    pub metric: String,
    /// As written (`+25%`).
    pub text: String,
    /// A rise is the bad direction (`+`); else a drop (`-`).
    pub rise_is_bad: bool,
    /// The allowed move.
    pub amount: Amount,
}

/// How much a figure may move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// A fraction of the baseline's value (0.25 = 25 %).
    Relative(f64),
    /// In the metric's base unit (µs for latencies).
    Absolute(f64),
}

impl Tolerance {
    /// The limit the run's value must stay within, given the baseline's.
    pub fn limit(&self, base: f64) -> f64 {
        let by = match self.amount {
            Amount::Relative(f) => base.abs() * f,
            Amount::Absolute(a) => a,
        };
        if self.rise_is_bad {
            base + by
        } else {
            base - by
        }
    }

    /// Whether `value` stays within the limit set by `base`.
    pub fn holds(&self, base: f64, value: f64) -> bool {
        // A little slack for figures that went through decimal text and back.
        let limit = self.limit(base);
        let eps = 1e-9 * limit.abs().max(1.0);
        if self.rise_is_bad {
            value <= limit + eps
        } else {
            value >= limit - eps
        }
    }
}

/// Parse one `[regression]` entry.
pub fn parse_tolerance(metric: &str, value: &str) -> Result<Tolerance, String> {
    let v = value.trim();
    let (rise_is_bad, rest) = match v.chars().next() {
        Some('+') => (true, &v[1..]),
        Some('-') => (false, &v[1..]),
        _ => {
            return Err(format!(
                "`{value}`: start with + (the figure may rise by at most this) or - (may drop by at most this), e.g. \"+25%\""
            ))
        }
    };
    let (n, unit) = number_and_unit(value, rest)?;
    let amount = match unit {
        "%" => Amount::Relative(n / 100.0),
        "" => Amount::Absolute(n),
        "us" | "µs" if is_latency(metric) => Amount::Absolute(n),
        "ms" if is_latency(metric) => Amount::Absolute(n * 1e3),
        "s" if is_latency(metric) => Amount::Absolute(n * 1e6),
        "us" | "µs" | "ms" | "s" => {
            return Err(format!(
                "`{value}`: `{metric}` is not a latency, so it takes no time unit"
            ))
        }
        other => return Err(format!("`{value}`: unknown unit `{other}` (%, us, ms, s)")),
    };
    Ok(Tolerance {
        metric: metric.to_string(),
        text: v.to_string(),
        rise_is_bad,
        amount,
    })
}

/// What the gate checks besides the scenario's own objectives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    /// Absolute thresholds.
    pub thresholds: Vec<Slo>,
    /// Moves allowed against a baseline (None: the defaults, see [`Rules::defaults_for`]).
    pub regression: Option<Vec<Tolerance>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    slo: BTreeMap<String, String>,
    regression: Option<BTreeMap<String, String>>,
}

impl Rules {
    /// Read a rules file.
    pub fn load(path: &Path) -> Result<Rules, FileError> {
        let text = toml_spans::read("gate rules", path)?;
        let src = Source::new(path, &text);
        let raw: Raw =
            toml::from_str(&text).map_err(|e| FileError::Syntax(src.syntax_problem(&e)))?;
        let mut problems = Vec::new();
        let mut rules = Rules::default();
        let root = FieldPath::root();
        for (metric, value) in &raw.slo {
            match parse_slo(metric, value) {
                Ok(s) => rules.thresholds.push(s),
                Err(m) => problems.push(src.problem(&root.key("slo").key(metric), m)),
            }
        }
        if let Some(regression) = &raw.regression {
            let mut list = Vec::new();
            for (metric, value) in regression {
                match check_name(metric).and_then(|_| parse_tolerance(metric, value)) {
                    Ok(t) => list.push(t),
                    Err(m) => problems.push(src.problem(&root.key("regression").key(metric), m)),
                }
            }
            rules.regression = Some(list);
        }
        if problems.is_empty() {
            Ok(rules)
        } else {
            Err(FileError::Invalid(problems))
        }
    }

    /// The regression rules to apply against `baseline`: the file's, or the defaults —
    /// throughput may drop 10 %, each operation's p99 rise 25 %, no new loss or duplicate,
    /// each process's memory per user rise 10 %.
    pub fn regression_for(&self, baseline: &Summary) -> Vec<Tolerance> {
        if let Some(r) = &self.regression {
            return r.clone();
        }
        let t = |metric: String, text: &str| {
            parse_tolerance(&metric, text).expect("the default tolerances parse")
        };
        let mut out = vec![t("throughput".into(), "-10%")];
        out.extend(
            baseline
                .operations
                .keys()
                .map(|op| t(format!("{op}.p99"), "+25%")),
        );
        out.push(t("delivery.lost".into(), "+0"));
        out.push(t("delivery.duplicated".into(), "+0"));
        out.extend(
            baseline
                .resources
                .keys()
                .map(|p| t(format!("{p}.rss_per_user"), "+10%")),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_parse_and_hold() {
        let t = parse_tolerance("post_ack.p99", "+25%").expect("parses");
        assert!(t.holds(100.0, 125.0) && !t.holds(100.0, 126.0));
        let t = parse_tolerance("throughput", "-10%").expect("parses");
        assert!(t.holds(1000.0, 900.0) && !t.holds(1000.0, 899.0) && t.holds(1000.0, 5000.0));
        let t = parse_tolerance("delivery.lost", "+0").expect("parses");
        assert!(t.holds(2.0, 2.0) && !t.holds(2.0, 3.0));
        let t = parse_tolerance("post_ack.p50", "+2ms").expect("parses");
        assert_eq!(t.amount, Amount::Absolute(2000.0));
        for (metric, bad, needle) in [
            ("throughput", "10%", "start with +"),
            ("throughput", "+2ms", "not a latency"),
            ("post_ack.p99", "+x%", "not a number"),
            ("post_ack.p99", "+3 parsecs", "unknown unit"),
        ] {
            let e = parse_tolerance(metric, bad).expect_err(bad);
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn a_rules_file_reports_each_problem_with_line_and_field() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("rules.toml");
        std::fs::write(
            &path,
            "[slo]\n\"post_ack.p99\" = \"< 50ms\"\nerror_rate = \"about 1%\"\n\n[regression]\nthroughput = \"10%\"\n\"post_ack.p99\" = \"+25%\"\n",
        )
        .expect("write");
        let e = Rules::load(&path).expect_err("two problems");
        let text = e.to_string();
        assert!(
            text.contains("rules.toml:3: slo.error_rate: `about 1%`"),
            "{text}"
        );
        assert!(
            text.contains("rules.toml:6: regression.throughput: `10%`"),
            "{text}"
        );
        std::fs::write(&path, "[slo]\n\"post_ack.p99\" = \"< 50ms\"\n[regresion]\n")
            .expect("write");
        let e = Rules::load(&path).expect_err("unknown table");
        assert!(e.to_string().contains("rules.toml:3"), "{e}");
        std::fs::write(&path, "[regression]\n\"post_ack.p99\" = \"+25%\"\n").expect("write");
        let r = Rules::load(&path).expect("good");
        assert_eq!(r.regression.expect("given").len(), 1);
    }
}
