//! `capacity.md` and `capacity.html`: the search's summary for people — the supported
//! users with the bound and the spread, the model, the table of steps, and a chart of p99
//! and server CPU against users with the supported number marked. Renders a
//! [`CapacityFile`]; computes nothing new.

use std::fmt::Write as _;

use super::model::{key_operation, CapacityFile};
use super::step::Step;
use crate::report::html;
use crate::report::plot::{self, Chart, Series};

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / (1024.0 * 1024.0))
}

/// The headline: supported users, bound, spread.
pub fn headline(c: &CapacityFile) -> String {
    let s = &c.supported;
    let mut out = format!("supported users: {}", s.median);
    if s.values.len() > 1 {
        let _ = write!(
            out,
            " (median of {} searches: {:?}; spread {:.1}%)",
            s.values.len(),
            s.values,
            100.0 * s.spread
        );
    }
    let _ = write!(out, "; bound: {} — {}", c.bound.kind, c.bound.detail);
    if let Some(k) = &c.knee {
        let _ = write!(
            out,
            "; knee: {} p99 rises faster than linearly above {} users ({:.1} ms)",
            k.operation,
            k.users,
            k.p99_us as f64 / 1e3
        );
    }
    if c.interrupted {
        out += " [interrupted: partial]";
    }
    out
}

fn step_rows(c: &CapacityFile) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let op = key_operation(&all_steps(c));
    let head = vec![
        "search",
        "users",
        "verdict",
        "p99 (key op)",
        "delivery p99",
        "server CPU",
        "server RSS",
        "failed",
        "folder",
    ];
    let mut rows = Vec::new();
    for (i, search) in c.searches.iter().enumerate() {
        for s in &search.steps {
            let cpu: f64 = s.servers().map(|(_, p)| p.cpu_cores).sum();
            let rss: u64 = s.servers().map(|(_, p)| p.rss_bytes).sum();
            let ms = |op: &str| {
                s.p99_us
                    .get(op)
                    .map_or("–".into(), |v| format!("{:.1} ms", *v as f64 / 1e3))
            };
            rows.push(vec![
                (i + 1).to_string(),
                s.users.to_string(),
                format!("{:?}", s.verdict).to_lowercase(),
                format!("{op} {}", ms(&op)),
                ms("delivery"),
                format!("{:.0}%", 100.0 * cpu),
                mib(rss as f64),
                s.failed
                    .iter()
                    .map(|f| f.text.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                s.dir.clone(),
            ]);
        }
    }
    (head, rows)
}

fn all_steps(c: &CapacityFile) -> Vec<Step> {
    c.searches.iter().flat_map(|s| s.steps.clone()).collect()
}

fn model_rows(c: &CapacityFile) -> Vec<Vec<String>> {
    let m = &c.model;
    let mut rows = vec![
        vec!["supported users".into(), format!("{}", m.supported_users)],
        vec![
            "CPUs of the servers".into(),
            format!("{} ({})", m.cpus, m.cpus_from),
        ],
        vec!["users per core".into(), format!("{:.0}", m.users_per_core)],
        vec![
            "deliveries/s per core".into(),
            format!("{:.1}", m.deliveries_per_s_per_core),
        ],
        vec![
            "connections per user".into(),
            format!("{:.2}", m.connections_per_user),
        ],
    ];
    for (role, f) in &m.memory_per_user {
        rows.push(vec![
            format!("memory per user, {role}"),
            format!(
                "{:.0} B/user + {} (R² {:.2})",
                f.slope,
                mib(f.intercept),
                f.r2
            ),
        ]);
    }
    for (role, f) in &m.cpu_per_user {
        rows.push(vec![
            format!("CPU per 1,000 users, {role}"),
            format!("{:.3} cores (R² {:.2})", f.slope * 1000.0, f.r2),
        ]);
    }
    if let Some(b) = m.db_bytes_per_message {
        rows.push(vec!["database bytes per message".into(), format!("{b:.0}")]);
    }
    if let Some(d) = m.db_bytes_per_day {
        rows.push(vec![
            "database growth per day at supported users".into(),
            mib(d),
        ]);
    }
    for (name, f) in &m.growth {
        rows.push(vec![
            format!("{name} vs users"),
            format!(
                "slope {:.4}, intercept {:.1} (R² {:.2})",
                f.slope, f.intercept, f.r2
            ),
        ]);
    }
    rows
}

fn md_table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out
}

/// `capacity.md`.
pub fn markdown(c: &CapacityFile) -> String {
    let mut out = format!("# Capacity: {}\n\n{}\n\n", c.scenario, headline(c));
    if !c.bound.failed.is_empty() {
        let _ = writeln!(
            out,
            "Failed at the first failing step: {}\n",
            c.bound.failed.join("; ")
        );
    }
    out += "## Model\n\n";
    out += &md_table(&["figure", "value"], &model_rows(c));
    out += "\n## Steps\n\n";
    let (head, rows) = step_rows(c);
    out += &md_table(&head, &rows);
    out
}

/// The chart: key-operation p99 (ms) and server CPU (% of one core) against users, each
/// search's steps as points, the supported users as a vertical line.
pub fn chart(c: &CapacityFile) -> Chart {
    let steps = all_steps(c);
    let op = key_operation(&steps);
    let mut pts: Vec<&Step> = steps.iter().filter(|s| s.error.is_none()).collect();
    pts.sort_by_key(|s| s.users);
    let p99: Vec<(f64, f64)> = pts
        .iter()
        .filter_map(|s| s.p99_us.get(&op).map(|v| (s.users as f64, *v as f64 / 1e3)))
        .collect();
    let cpu: Vec<(f64, f64)> = pts
        .iter()
        .map(|s| {
            (
                s.users as f64,
                100.0 * s.servers().map(|(_, p)| p.cpu_cores).sum::<f64>(),
            )
        })
        .collect();
    let top = p99.iter().chain(&cpu).map(|p| p.1).fold(1.0, f64::max);
    let x = c.supported.median;
    Chart {
        id: "capacity".into(),
        title: format!("{op} p99 and server CPU against users"),
        x_label: "users".into(),
        y_label: "p99 ms / CPU % of one core".into(),
        log_y: false,
        series: vec![
            Series {
                name: format!("{op} p99 (ms)"),
                points: p99,
                dashed: false,
            },
            Series {
                name: "server CPU (%)".into(),
                points: cpu,
                dashed: false,
            },
            Series {
                name: format!("supported: {x}"),
                points: vec![(x, 0.0), (x, top)],
                dashed: true,
            },
        ],
    }
}

fn escaped(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|r| r.iter().map(|c| html::escape(c)).collect())
        .collect()
}

/// `capacity.html`.
pub fn page(c: &CapacityFile) -> String {
    let ch = chart(c);
    let svg = plot::svg(&ch);
    let mut body = format!("<p class=\"note\">{}</p>\n", html::escape(&headline(c)));
    body += &html::figure(&ch, &svg, None);
    body += "<h2>Model</h2>\n";
    body += &html::table(&["figure", "value"], &escaped(model_rows(c)));
    body += "<h2>Steps</h2>\n";
    let (head, rows) = step_rows(c);
    body += &html::table(&head, &escaped(rows));
    html::page(
        &format!("Capacity: {}", c.scenario),
        &format!("{} · {}", c.source, c.started_at),
        &body,
    )
}

/// Write `capacity.json`, `capacity.md` and `capacity.html` into `dir`.
pub fn write(dir: &std::path::Path, c: &CapacityFile) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(c).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("capacity.json"), json + "\n")?;
    std::fs::write(dir.join("capacity.md"), markdown(c))?;
    std::fs::write(dir.join("capacity.html"), page(c))?;
    Ok(())
}
