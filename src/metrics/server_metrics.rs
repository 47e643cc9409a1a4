//! `server_metrics.csv`: the server processes' own metrics (their Prometheus `/metrics`),
//! scraped once a second during a run, in long format — one row per sample:
//! `t_s,process,metric,labels,value`.
//!
//! This file defines the row and turns one scrape into rows; the scraping is
//! `runner::scrape`, the reading back `report::server_metrics`.

use serde::{Deserialize, Serialize};

use super::prom_text::{format_labels, Exposition, MetricType};

/// The file's name in the results folder.
pub const FILE: &str = "server_metrics.csv";

/// One sample of one process at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Seconds since the start of the load (as in `timeline.csv`).
    pub t_s: f64,
    /// The process (`server`, or the pool member's name).
    pub process: String,
    /// The sample's name: a counter or gauge, a summary's quantiles under its own name
    /// (label `quantile`), its `_sum` and `_count`.
    pub metric: String,
    /// The labels, spelt `a="x",b="y"` (empty when none).
    pub labels: String,
    /// The value (`NaN` for a summary quantile with no observations yet).
    pub value: f64,
}

/// The rows of one scrape of `process` at `t_s`. Histogram buckets are left out (the
/// `_sum` and `_count` remain): the server exposes summaries, and buckets would multiply
/// the rows for what the quantiles already say.
pub fn rows(t_s: f64, process: &str, scraped: &Exposition) -> Vec<Row> {
    scraped
        .samples
        .iter()
        .filter(|s| {
            !(s.name.ends_with("_bucket")
                && scraped.kind_of(&s.name) == Some(MetricType::Histogram))
        })
        .map(|s| Row {
            t_s,
            process: process.to_string(),
            metric: s.name.clone(),
            labels: format_labels(&s.labels),
            value: s.value,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::prom_text::parse;

    #[test]
    fn a_scrape_becomes_rows_without_buckets() {
        let text = "# TYPE a_total counter\na_total{code=\"busy\"} 3\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 1.5\nh_count 2\n\
                    # TYPE s summary\ns{quantile=\"0.5\"} 0.1\ns_sum 1\ns_count 4\n";
        let rows = rows(2.0, "server", &parse(text).expect("parses"));
        let names: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
        assert_eq!(
            names,
            ["a_total", "h_sum", "h_count", "s", "s_sum", "s_count"]
        );
        assert_eq!(rows[0].labels, "code=\"busy\"");
        assert_eq!(rows[3].labels, "quantile=\"0.5\"");
        assert!(rows.iter().all(|r| r.t_s == 2.0 && r.process == "server"));
    }
}
