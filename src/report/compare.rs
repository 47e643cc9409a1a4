//! `chatcap compare`: runs side by side. The key figures of each run with its change from
//! the first (the baseline), as a terminal table, Markdown, JSON or an HTML page with the
//! runs' charts overlaid.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use super::figures::role;
use super::html;
use super::plot::{self, Chart, Series};
use super::results::Results;

/// One figure across the runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// What it is (`post_ack p99`).
    pub figure: String,
    /// Its unit (`ms`, `/s`, `%`, `MiB`, `count`).
    pub unit: String,
    /// Per run (None: not measured in that run).
    pub values: Vec<Option<f64>>,
    /// Per run, value − baseline (None for the baseline or when either is missing).
    pub deltas: Vec<Option<f64>>,
    /// Per run, the change in percent of the baseline (None when the baseline is 0).
    pub delta_pct: Vec<Option<f64>>,
}

/// The comparison.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    /// The runs' labels (folder names), baseline first.
    pub runs: Vec<String>,
    /// The figures.
    pub rows: Vec<Row>,
}

fn row(figure: String, unit: &str, values: Vec<Option<f64>>) -> Row {
    let base = values.first().copied().flatten();
    let deltas: Vec<Option<f64>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| if i == 0 { None } else { Some((*v)? - base?) })
        .collect();
    let delta_pct = deltas
        .iter()
        .map(|d| {
            let (b, d) = (base?, (*d)?);
            (b != 0.0).then(|| d / b.abs() * 100.0)
        })
        .collect();
    Row {
        figure,
        unit: unit.to_string(),
        values,
        deltas,
        delta_pct,
    }
}

/// Compare `runs`; the first is the baseline.
pub fn compare(runs: &[Results]) -> Comparison {
    let mut rows = Vec::new();
    let each = |f: &dyn Fn(&Results) -> Option<f64>| runs.iter().map(f).collect::<Vec<_>>();
    let s = |r: &Results| r.summary.clone();
    rows.push(row(
        "peak connections".into(),
        "count",
        each(&|r| Some(s(r).users.peak as f64)),
    ));
    rows.push(row(
        "objectives met".into(),
        "count",
        each(&|r| Some(r.summary.slo.iter().filter(|x| x.pass).count() as f64)),
    ));
    let ops: BTreeSet<&String> = runs
        .iter()
        .flat_map(|r| r.summary.operations.keys())
        .collect();
    for op in ops {
        let get = |r: &Results| r.summary.operations.get(op).cloned();
        rows.push(row(
            format!("{op} rate"),
            "/s",
            each(&|r| get(r).map(|o| o.rate_per_s)),
        ));
        rows.push(row(
            format!("{op} p50"),
            "ms",
            each(&|r| get(r).map(|o| o.response.p50_us as f64 / 1000.0)),
        ));
        rows.push(row(
            format!("{op} p99"),
            "ms",
            each(&|r| get(r).map(|o| o.response.p99_us as f64 / 1000.0)),
        ));
        rows.push(row(
            format!("{op} errors"),
            "count",
            each(&|r| get(r).map(|o| (o.errors + o.timeouts) as f64)),
        ));
    }
    rows.push(row(
        "deliveries lost".into(),
        "count",
        each(&|r| Some(r.summary.delivery.lost as f64)),
    ));
    rows.push(row(
        "deliveries duplicated".into(),
        "count",
        each(&|r| Some(r.summary.delivery.duplicated as f64)),
    ));
    rows.push(row(
        "error rate".into(),
        "%",
        each(&|r| Some(r.summary.error_rate * 100.0)),
    ));
    let procs: BTreeSet<&String> = runs
        .iter()
        .flat_map(|r| r.summary.resources.keys())
        .collect();
    for p in procs {
        rows.push(row(
            format!("{p} CPU avg"),
            "%",
            each(&|r| r.summary.resources.get(p).map(|x| x.cpu_avg_pct)),
        ));
        rows.push(row(
            format!("{p} RSS max"),
            "MiB",
            each(&|r| {
                r.summary
                    .resources
                    .get(p)
                    .map(|x| x.rss_max_bytes as f64 / 1_048_576.0)
            }),
        ));
    }
    Comparison {
        runs: runs.iter().map(Results::label).collect(),
        rows,
    }
}

fn value(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v.abs() >= 100.0 || v == v.trunc() => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn delta(d: Option<f64>, pct: Option<f64>) -> String {
    match (d, pct) {
        (None, _) => String::new(),
        (Some(d), Some(p)) => format!(
            "{}{} ({p:+.1}%)",
            if d >= 0.0 { "+" } else { "" },
            value(Some(d))
        ),
        (Some(d), None) => format!("{}{}", if d >= 0.0 { "+" } else { "" }, value(Some(d))),
    }
}

/// Header and cells of the table: figure, unit, then per run its value (and change).
fn cells(c: &Comparison) -> (Vec<String>, Vec<Vec<String>>) {
    let mut head = vec!["figure".to_string(), "unit".to_string()];
    for (i, r) in c.runs.iter().enumerate() {
        head.push(if i == 0 {
            format!("{r} (baseline)")
        } else {
            r.clone()
        });
    }
    let rows = c
        .rows
        .iter()
        .map(|row| {
            let mut out = vec![row.figure.clone(), row.unit.clone()];
            for i in 0..row.values.len() {
                let d = delta(row.deltas[i], row.delta_pct[i]);
                out.push(if d.is_empty() {
                    value(row.values[i])
                } else {
                    format!("{} {d}", value(row.values[i]))
                });
            }
            out
        })
        .collect();
    (head, rows)
}

/// The table for a terminal, columns aligned.
pub fn text(c: &Comparison) -> String {
    let (head, rows) = cells(c);
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&head).chain(rows.iter()) {
        for (i, (cell, w)) in r.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i < 2 {
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    out
}

/// The table as Markdown.
pub fn markdown(c: &Comparison) -> String {
    let (head, rows) = cells(c);
    let mut out = format!("# chatcap compare\n\n| {} |\n|", head.join(" | "));
    out.push_str("---|---|");
    out.push_str(&"---:|".repeat(head.len() - 2));
    out.push('\n');
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out
}

/// The runs' charts overlaid: one line per run.
pub fn charts(runs: &[Results]) -> Vec<Chart> {
    let line = |r: &Results, points: Vec<(f64, f64)>| Series {
        name: r.label(),
        points,
        dashed: false,
    };
    let over_time =
        |id: &str,
         title: &str,
         unit: &str,
         f: fn(&crate::metrics::collector::TimelineRow) -> f64| Chart {
            id: id.into(),
            title: title.into(),
            x_label: "seconds since the load started".into(),
            y_label: unit.into(),
            log_y: false,
            series: runs
                .iter()
                .map(|r| line(r, r.timeline.iter().map(|t| (t.t_s, f(t))).collect()))
                .collect(),
        };
    let mut out = vec![
        over_time("users", "Connections over time", "connections", |t| {
            t.users as f64
        }),
        over_time(
            "posts",
            "Posts acknowledged per second",
            "per second",
            |t| t.posts as f64,
        ),
        over_time("deliveries", "Deliveries per second", "per second", |t| {
            t.deliveries as f64
        }),
    ];
    let ops: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| {
            r.latency
                .keys()
                .filter_map(|t| t.strip_suffix(".response").map(str::to_string))
        })
        .collect();
    for op in ops {
        out.push(Chart {
            id: format!("latency-{op}"),
            title: format!("{op}: p99 latency per second"),
            x_label: "seconds since the load started".into(),
            y_label: "ms (log)".into(),
            log_y: true,
            series: runs
                .iter()
                .map(|r| {
                    let pts = r
                        .latency
                        .get(&format!("{op}.response"))
                        .map(|m| {
                            m.iter()
                                .filter(|(_, h)| !h.is_empty())
                                .map(|(s, h)| {
                                    (*s as f64, h.value_at_quantile(0.99) as f64 / 1000.0)
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    line(r, pts)
                })
                .collect(),
        });
    }
    let roles: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r.resources.iter().map(|s| role(&s.process).to_string()))
        .collect();
    for rl in roles {
        out.push(Chart {
            id: format!("cpu-{rl}"),
            title: format!("CPU of the {rl} processes (added up) over time"),
            x_label: "seconds since the load started".into(),
            y_label: "% of one core".into(),
            log_y: false,
            series: runs
                .iter()
                .map(|r| {
                    let mut per_second: BTreeMap<u64, f64> = BTreeMap::new();
                    for s in r.resources.iter().filter(|s| role(&s.process) == rl) {
                        *per_second.entry(s.t_s.round() as u64).or_default() += s.cpu_pct;
                    }
                    line(
                        r,
                        per_second.into_iter().map(|(s, v)| (s as f64, v)).collect(),
                    )
                })
                .collect(),
        });
    }
    out
}

/// The comparison as a page: the table, then the overlaid charts.
pub fn page(c: &Comparison, runs: &[Results]) -> String {
    let (head, rows) = cells(c);
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.iter().map(|c| html::escape(c)).collect())
        .collect();
    let mut body = String::from(
        "<h2>Key figures</h2>\n<p>Changes are against the first run (the baseline).</p>\n",
    );
    body.push_str(&html::table(&head, &rows));
    body.push_str("<h2>Charts</h2>\n");
    for chart in charts(runs) {
        let svg = plot::svg(&chart);
        body.push_str(&html::figure(&chart, &svg, None));
    }
    html::page("chatcap compare", &c.runs.join(" · "), &body)
}
