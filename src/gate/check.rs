//! The gate's checks of one run: the scenario's own objectives as the run judged them, the
//! rules' absolute thresholds, and the moves allowed against a baseline run.

use serde::Serialize;

use super::rules::{Rules, Tolerance};
use crate::report::metric_unit;
use crate::report::model::Summary;

/// What kind of check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An objective of the scenario (`[slo]` of the scenario file).
    Slo,
    /// A threshold of the rules file.
    Threshold,
    /// Against the baseline.
    Regression,
}

impl Kind {
    /// Its name in tables and JUnit class names.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Slo => "slo",
            Kind::Threshold => "threshold",
            Kind::Regression => "regression",
        }
    }
}

/// One check and its verdict.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    /// What kind.
    pub kind: Kind,
    /// As written (`post_ack.p99 < 50ms`, `throughput -10%`).
    pub name: String,
    /// The run's value, readable (`41.2 ms`).
    pub measured: String,
    /// What it had to be (`< 50.00 ms`, `≥ 1,200.0 (baseline 1,333.3 − 10%)`).
    pub limit: String,
    /// Met.
    pub pass: bool,
}

/// A value of `metric` in a readable unit.
pub fn show(metric: &str, v: Option<f64>) -> String {
    let Some(v) = v else {
        return "not measured".into();
    };
    match metric_unit(metric) {
        "us" => format!("{:.2} ms", v / 1000.0),
        "fraction" => format!("{:.4}%", v * 100.0),
        "bytes" if v.abs() < 1_048_576.0 => format!("{:.1} KiB", v / 1024.0),
        "bytes" => format!("{:.2} MiB", v / 1_048_576.0),
        _ if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

fn regression(t: &Tolerance, run: &Summary, base: &Summary) -> Check {
    let value = run.metric(&t.metric);
    let before = base.metric(&t.metric);
    let name = format!("{} {}", t.metric, t.text);
    let (limit, pass) = match (before, value) {
        (None, _) => ("no baseline figure: not judged".to_string(), true),
        (Some(b), v) => {
            let l = t.limit(b);
            let sign = if t.rise_is_bad { "≤" } else { "≥" };
            (
                format!(
                    "{sign} {} (baseline {} {})",
                    show(&t.metric, Some(l)),
                    show(&t.metric, Some(b)),
                    t.text
                ),
                v.is_some_and(|v| t.holds(b, v)),
            )
        }
    };
    Check {
        kind: Kind::Regression,
        name,
        measured: show(&t.metric, value),
        limit,
        pass,
    }
}

/// Every check of `run`, in order: objectives, thresholds, regression.
pub fn checks(run: &Summary, baseline: Option<&Summary>, rules: &Rules) -> Vec<Check> {
    let mut out: Vec<Check> = run
        .slo
        .iter()
        .map(|r| Check {
            kind: Kind::Slo,
            name: r.text.clone(),
            measured: match r.value {
                None => "not measured".into(),
                Some(v) => show(r.text.split_whitespace().next().unwrap_or(""), Some(v)),
            },
            limit: r
                .text
                .split_once(' ')
                .map(|x| x.1)
                .unwrap_or("")
                .to_string(),
            pass: r.pass,
        })
        .collect();
    for slo in &rules.thresholds {
        let value = run.metric(&slo.metric);
        out.push(Check {
            kind: Kind::Threshold,
            name: slo.text.clone(),
            measured: show(&slo.metric, value),
            limit: slo.text[slo.metric.len()..].trim().to_string(),
            pass: slo.holds(value),
        });
    }
    if let Some(base) = baseline {
        for t in rules.regression_for(base) {
            out.push(regression(&t, run, base));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::rules::parse_tolerance;

    #[test]
    fn values_read_in_their_unit() {
        assert_eq!(show("post_ack.p99", Some(41_250.0)), "41.25 ms");
        assert_eq!(show("error_rate", Some(0.0012)), "0.1200%");
        assert_eq!(
            show("server.rss_per_user", Some(2.0 * 1_048_576.0)),
            "2.00 MiB"
        );
        assert_eq!(show("delivery.lost", Some(3.0)), "3");
        assert_eq!(show("throughput", Some(12.345)), "12.35");
        assert_eq!(show("throughput", None), "not measured");
    }

    #[test]
    fn a_regression_names_the_baseline_and_the_limit() {
        let t = parse_tolerance("error_rate", "+0.001").expect("parses");
        let mut base: Summary = serde_json::from_value(serde_json::json!({
            "schema": "chatcap.summary/1", "scenario": "s", "scenario_file": "s.toml",
            "started_at": "", "ending": "completed", "duration_s": 10.0,
            "users": {"peak": 1, "target_peak": 1, "population": 1, "disconnects": 0},
            "operations": {}, "delivery": {"received": 0, "lost": 0, "duplicated": 0, "out_of_order": 0},
            "errors": {}, "error_rate": 0.001, "reconciliation": null, "resources": {},
            "slo": [], "machine": {"cpu_model": "", "cores": 2, "memory_bytes": 0, "kernel": "", "hostname": "", "fd_limit": 0}
        }))
        .expect("a summary");
        let run = {
            let mut r = base.clone();
            r.error_rate = 0.003;
            r
        };
        let c = regression(&t, &run, &base);
        assert!(!c.pass, "{c:?}");
        assert_eq!(c.limit, "≤ 0.2000% (baseline 0.1000% +0.001)");
        base.error_rate = 0.0025;
        assert!(regression(&t, &run, &base).pass);
    }
}
