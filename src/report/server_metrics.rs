//! `server_metrics.csv` read back for reports: typed rows, a metric as one time series per
//! process (and label set), counters as per-second rates, summaries as their mean per
//! interval, and the panels worth plotting (commit batch size and time, queue depths,
//! sessions, posts and deliveries). No drawing here: the plots take [`Panel`]s.

use std::collections::BTreeMap;
use std::path::Path;

use crate::metrics::server_metrics::{Row, FILE};

/// Why `server_metrics.csv` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ServerMetricsError {
    /// The file could not be opened.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a row of the format (or the header is another file's).
    #[error("{path}:{line}: {reason}")]
    Bad {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The header the file starts with.
const HEADER: [&str; 5] = ["t_s", "process", "metric", "labels", "value"];

/// The rows of `dir/server_metrics.csv`; `None` when the run wrote none (a target whose
/// processes were not ours, or a folder from before the file existed).
pub fn read(dir: &Path) -> Result<Option<Vec<Row>>, ServerMetricsError> {
    let path = dir.join(FILE);
    let shown = path.display().to_string();
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ServerMetricsError::Io {
                path: shown,
                source,
            })
        }
    };
    let bad = |line: u64, reason: String| ServerMetricsError::Bad {
        path: shown.clone(),
        line,
        reason,
    };
    let mut reader = csv::Reader::from_reader(file);
    let header = reader.headers().map_err(|e| bad(1, e.to_string()))?;
    if header.iter().ne(HEADER) {
        let found = header.iter().collect::<Vec<_>>().join(",");
        return Err(bad(
            1,
            format!("header is {found:?}, not {:?}", HEADER.join(",")),
        ));
    }
    let mut rows = Vec::new();
    for row in reader.deserialize::<Row>() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            bad(line, e.to_string())
        })?;
        rows.push(row);
    }
    Ok(Some(rows))
}

/// One time series: a metric of one process with one label set.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The process.
    pub process: String,
    /// The label set, as written (`quantile="0.99"`; empty when none).
    pub labels: String,
    /// (seconds since the start of the load, value), in time order.
    pub points: Vec<(f64, f64)>,
}

/// `metric` over time: one series per (process, label set), sorted by process then labels.
pub fn series(rows: &[Row], metric: &str) -> Vec<Series> {
    let mut by: BTreeMap<(&str, &str), Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.metric == metric) {
        by.entry((&r.process, &r.labels))
            .or_default()
            .push((r.t_s, r.value));
    }
    by.into_iter()
        .map(|((process, labels), mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                process: process.to_string(),
                labels: labels.to_string(),
                points,
            }
        })
        .collect()
}

/// `metric` summed over its label sets: one series per process (e.g. requests of every
/// operation, errors of every code).
pub fn summed(rows: &[Row], metric: &str) -> Vec<Series> {
    let mut by: BTreeMap<&str, BTreeMap<u64, (f64, f64)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.metric == metric) {
        let at = by.entry(&r.process).or_default();
        let point = at.entry(r.t_s.to_bits()).or_insert((r.t_s, 0.0));
        point.1 += r.value;
    }
    by.into_iter()
        .map(|(process, points)| {
            let mut points: Vec<(f64, f64)> = points.into_values().collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                process: process.to_string(),
                labels: String::new(),
                points,
            }
        })
        .collect()
}

/// A counter's series as a rate per second between consecutive scrapes, at the later
/// one. A drop (the process restarted) counts from zero.
pub fn rate(s: &Series) -> Series {
    let points = s
        .points
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| {
            let grew = if w[1].1 >= w[0].1 {
                w[1].1 - w[0].1
            } else {
                w[1].1
            };
            (w[1].0, grew / (w[1].0 - w[0].0))
        })
        .collect();
    Series {
        process: s.process.clone(),
        labels: s.labels.clone(),
        points,
    }
}

/// A summary's (or histogram's) mean observation per interval: the growth of `NAME_sum`
/// over the growth of `NAME_count` between consecutive scrapes, per process; intervals
/// with no observation are left out.
pub fn mean_per_interval(rows: &[Row], name: &str) -> Vec<Series> {
    let sums = series(rows, &format!("{name}_sum"));
    let counts = series(rows, &format!("{name}_count"));
    sums.iter()
        .filter_map(|sum| {
            let count = counts
                .iter()
                .find(|c| c.process == sum.process && c.labels == sum.labels)?;
            let at: BTreeMap<u64, f64> = count
                .points
                .iter()
                .map(|(t, v)| (t.to_bits(), *v))
                .collect();
            let paired: Vec<(f64, f64, f64)> = sum
                .points
                .iter()
                .filter_map(|(t, s)| Some((*t, *s, *at.get(&t.to_bits())?)))
                .collect();
            let points = paired
                .windows(2)
                .filter(|w| w[1].2 > w[0].2)
                .map(|w| (w[1].0, (w[1].1 - w[0].1) / (w[1].2 - w[0].2)))
                .collect();
            Some(Series {
                process: sum.process.clone(),
                labels: sum.labels.clone(),
                points,
            })
        })
        .collect()
}

/// A plot's worth of series.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// What it shows.
    pub title: &'static str,
    /// The y axis.
    pub y_label: &'static str,
    /// One series per process (and label set).
    pub series: Vec<Series>,
}

/// The server metrics worth a plot, each over time per process: commit batch size and
/// time (mean per interval), the commit queue and requests in flight, sessions, and
/// posts acknowledged and deliveries per second. Panels with no data are left out.
pub fn panels(rows: &[Row]) -> Vec<Panel> {
    use chatcap_server::telemetry::catalog as c;
    let rates = |metric: &str| summed(rows, metric).iter().map(rate).collect();
    let millis = |mut s: Vec<Series>| {
        for x in &mut s {
            x.points.iter_mut().for_each(|p| p.1 *= 1000.0);
        }
        s
    };
    let sessions = summed(rows, c::SESSIONS.name)
        .into_iter()
        .chain(summed(rows, c::FRONTEND_SESSIONS.name))
        .collect();
    let queues = summed(rows, c::COMMIT_QUEUE_POSTS.name)
        .into_iter()
        .map(|s| Series {
            labels: "commit queue".into(),
            ..s
        })
        .chain(
            summed(rows, c::REQUESTS_IN_FLIGHT.name)
                .into_iter()
                .map(|s| Series {
                    labels: "requests in flight".into(),
                    ..s
                }),
        )
        .collect();
    let all = [
        Panel {
            title: "Commit batch size (mean per second)",
            y_label: "posts per commit",
            series: mean_per_interval(rows, c::COMMIT_BATCH_POSTS.name),
        },
        Panel {
            title: "Commit time (mean per second)",
            y_label: "ms per commit",
            series: millis(mean_per_interval(rows, c::COMMIT_SECONDS.name)),
        },
        Panel {
            title: "Queue depths",
            y_label: "entries",
            series: queues,
        },
        Panel {
            title: "Sessions",
            y_label: "sessions",
            series: sessions,
        },
        Panel {
            title: "Posts acknowledged",
            y_label: "posts/s",
            series: rates(c::POSTS_ACKED.name),
        },
        Panel {
            title: "Deliveries",
            y_label: "deliveries/s",
            series: rates(c::DELIVERIES.name),
        },
    ];
    all.into_iter()
        .filter(|p| p.series.iter().any(|s| !s.points.is_empty()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "t_s,process,metric,labels,value\n\
        0.0,server,chatcap_posts_acked_total,,0\n\
        0.0,server,chatcap_commit_batch_posts_sum,,0\n\
        0.0,server,chatcap_commit_batch_posts_count,,0\n\
        0.0,server,chatcap_requests_total,\"op=\"\"post\"\"\",0\n\
        0.0,server,chatcap_requests_total,\"op=\"\"join\"\"\",0\n\
        0.0,server,chatcap_commit_seconds,\"quantile=\"\"0.5\"\"\",NaN\n\
        1.0,server,chatcap_posts_acked_total,,20\n\
        1.0,server,chatcap_commit_batch_posts_sum,,20\n\
        1.0,server,chatcap_commit_batch_posts_count,,4\n\
        1.0,server,chatcap_requests_total,\"op=\"\"post\"\"\",20\n\
        1.0,server,chatcap_requests_total,\"op=\"\"join\"\"\",5\n\
        1.0,server,chatcap_sessions,,50\n\
        1.0,chat-2,up,,0\n\
        2.0,server,chatcap_posts_acked_total,,50\n\
        2.0,server,chatcap_commit_batch_posts_sum,,50\n\
        2.0,server,chatcap_commit_batch_posts_count,,5\n";

    fn rows() -> Vec<Row> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE), CSV).expect("write");
        read(dir.path()).expect("reads").expect("present")
    }

    #[test]
    fn rows_read_back_typed() {
        let rows = rows();
        assert_eq!(rows.len(), 16);
        assert_eq!(rows[3].labels, "op=\"post\"");
        assert!(rows[5].value.is_nan());
        assert_eq!(rows[12].process, "chat-2");
    }

    #[test]
    fn counters_become_rates_and_summaries_means() {
        let rows = rows();
        let acked = series(&rows, "chatcap_posts_acked_total");
        assert_eq!(acked.len(), 1);
        assert_eq!(rate(&acked[0]).points, [(1.0, 20.0), (2.0, 30.0)]);
        let batch = mean_per_interval(&rows, "chatcap_commit_batch_posts");
        assert_eq!(batch[0].points, [(1.0, 5.0), (2.0, 30.0)]);
        let requests = summed(&rows, "chatcap_requests_total");
        assert_eq!(requests[0].points, [(0.0, 0.0), (1.0, 25.0)]);
        assert_eq!(series(&rows, "chatcap_requests_total").len(), 2);
        let restarted = Series {
            process: "server".into(),
            labels: String::new(),
            points: vec![(0.0, 10.0), (2.0, 4.0)],
        };
        assert_eq!(rate(&restarted).points, [(2.0, 2.0)]);
    }

    #[test]
    fn panels_leave_out_what_has_no_data() {
        let titles: Vec<&str> = panels(&rows()).iter().map(|p| p.title).collect();
        assert_eq!(
            titles,
            [
                "Commit batch size (mean per second)",
                "Sessions",
                "Posts acknowledged"
            ]
        );
    }

    #[test]
    fn a_missing_file_is_none_and_a_foreign_one_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read(dir.path()).expect("no error").is_none());
        std::fs::write(dir.path().join(FILE), "a,b\n1,2\n").expect("write");
        let e = read(dir.path()).expect_err("foreign").to_string();
        assert!(e.contains("server_metrics.csv:1: header"), "{e}");
        let text = "t_s,process,metric,labels,value\n1,server,x,,1\n2,server,x,,many\n";
        std::fs::write(dir.path().join(FILE), text).expect("write");
        let e = read(dir.path()).expect_err("bad value").to_string();
        assert!(e.contains("server_metrics.csv:3:"), "{e}");
    }
}
