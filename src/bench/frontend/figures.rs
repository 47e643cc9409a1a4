//! The figures of a `bench frontend` run: one model, rendered as a text table and as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::forward::ForwardFigures;
use super::idle::IdleFigures;
use crate::bench::report::Machine;

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct FrontendReport {
    /// Machine the run was on.
    pub machine: Machine,
    /// Load average (1, 5, 15 min) when the run started.
    pub load_average_start: String,
    /// Load average when it ended.
    pub load_average_end: String,
    /// One run per transport asked for (plaintext first).
    pub runs: Vec<TransportRun>,
}

/// The figures with one transport.
#[derive(Debug, Clone, Serialize)]
pub struct TransportRun {
    /// Clients connected over TLS (`wss://`).
    pub tls: bool,
    /// Memory per idle connection (absent when skipped).
    pub idle: Option<IdleFigures>,
    /// CPU per forwarded message (absent when skipped).
    pub forward: Option<ForwardFigures>,
}

impl FrontendReport {
    /// The summary table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "\nchatcap bench frontend — {} ({} CPUs), Linux {}\n  load average at start {}, at end {}\n",
            self.machine.cpu,
            self.machine.cpus,
            self.machine.kernel,
            self.load_average_start,
            self.load_average_end
        );
        for run in &self.runs {
            let transport = if run.tls {
                "TLS (wss://)"
            } else {
                "plaintext (ws://)"
            };
            let _ = writeln!(out, "\n== Clients over {transport}");
            if let Some(idle) = &run.idle {
                idle_table(&mut out, idle);
            }
            if let Some(fwd) = &run.forward {
                forward_table(&mut out, fwd);
            }
        }
        let idle = |tls: bool| {
            self.runs
                .iter()
                .find(|r| r.tls == tls)
                .and_then(|r| r.idle.as_ref())
        };
        if let (Some(plain), Some(tls)) = (idle(false), idle(true)) {
            tls_table(&mut out, plain, tls);
        }
        out
    }
}

/// What TLS adds per connection, plaintext and TLS side by side.
fn tls_table(out: &mut String, plain: &IdleFigures, tls: &IdleFigures) {
    let _ = writeln!(
        out,
        "\nWhat a TLS session costs (plaintext → TLS, per connection)"
    );
    let side = |a: Option<f64>, b: Option<f64>, unit: &str| match (a, b) {
        (Some(a), Some(b)) => format!("{a:.0} → {b:.0} {unit} (+{:.0})", b - a),
        _ => "-".into(),
    };
    let us = |v: Option<u64>| v.map(|v| v as f64);
    pairs(
        out,
        &[
            (
                "front end memory (RssAnon slope)",
                side(
                    plain.frontend_anon_per_connection,
                    tls.frontend_anon_per_connection,
                    "B",
                ),
            ),
            (
                "generator memory (RssAnon, last step)",
                side(
                    plain.generator_anon_per_step.last().copied(),
                    tls.generator_anon_per_step.last().copied(),
                    "B",
                ),
            ),
            (
                "front end CPU to open + sign in",
                side(
                    plain.frontend_cpu_us_per_connection,
                    tls.frontend_cpu_us_per_connection,
                    "µs",
                ),
            ),
            (
                "generator CPU to open + sign in",
                side(
                    plain.generator_cpu_us_per_connection,
                    tls.generator_cpu_us_per_connection,
                    "µs",
                ),
            ),
            (
                "open + sign in, p50",
                side(us(plain.open_p50_us), us(tls.open_p50_us), "µs"),
            ),
            (
                "TLS handshake, p50 / p99",
                format!(
                    "{} / {} µs",
                    tls.tls_p50_us.map_or("-".into(), |v| v.to_string()),
                    tls.tls_p99_us.map_or("-".into(), |v| v.to_string())
                ),
            ),
        ],
    );
}

fn idle_table(out: &mut String, idle: &IdleFigures) {
    let _ = writeln!(
        out,
        "\nIdle signed-in WebSocket connections (front end and chat server: separate processes)"
    );
    let mut rows: Vec<(&str, Vec<String>)> = vec![
        ("connections", Vec::new()),
        ("front end VmRSS", Vec::new()),
        ("front end RssAnon", Vec::new()),
        ("chat server VmRSS", Vec::new()),
        ("generator RssAnon", Vec::new()),
        ("sessions: front end / chat", Vec::new()),
    ];
    for s in &idle.steps {
        rows[0].1.push(s.connections.to_string());
        rows[1].1.push(format!("{:.1} MiB", mib(s.frontend.vm_rss)));
        rows[2].1.push(format!("{:.1} MiB", mib(s.frontend.anon)));
        rows[3].1.push(format!("{:.1} MiB", mib(s.chat.vm_rss)));
        rows[4].1.push(format!("{:.1} MiB", mib(s.generator.anon)));
        let n = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
        rows[5].1.push(format!(
            "{} / {}",
            n(s.frontend_sessions),
            n(s.chat_sessions)
        ));
    }
    columns(out, &rows);
    let steps: Vec<String> = idle
        .frontend_anon_per_step
        .iter()
        .map(|b| format!("{b:.0}"))
        .collect();
    pairs(
        out,
        &[
            (
                "front end, per idle connection: user-space (RssAnon slope)",
                format!(
                    "{} (each step: {} B)",
                    bytes(idle.frontend_anon_per_connection),
                    steps.join(" / ")
                ),
            ),
            (
                "front end, per idle connection: VmRSS slope",
                bytes(idle.frontend_rss_per_connection),
            ),
            (
                "chat server, per session: RssAnon / VmRSS slope",
                format!(
                    "{} / {}",
                    bytes(idle.chat_anon_per_session),
                    bytes(idle.chat_rss_per_session)
                ),
            ),
            (
                "generator, per connection: RssAnon slope",
                format!(
                    "{} (each step: {} B)",
                    bytes(idle.generator_anon_per_connection),
                    idle.generator_anon_per_step
                        .iter()
                        .map(|b| format!("{b:.0}"))
                        .collect::<Vec<_>>()
                        .join(" / ")
                ),
            ),
            (
                "CPU per connection opened and signed in: front end / generator",
                format!(
                    "{} / {} µs",
                    idle.frontend_cpu_us_per_connection
                        .map_or("-".into(), |v| format!("{v:.0}")),
                    idle.generator_cpu_us_per_connection
                        .map_or("-".into(), |v| format!("{v:.0}"))
                ),
            ),
            (
                "open + sign in, p50 / p99",
                format!(
                    "{} / {} µs",
                    idle.open_p50_us.map_or("-".into(), |v| v.to_string()),
                    idle.open_p99_us.map_or("-".into(), |v| v.to_string())
                ),
            ),
        ],
    );
}

fn forward_table(out: &mut String, f: &ForwardFigures) {
    let _ = writeln!(
        out,
        "\nForwarding: {} clients in {} rooms, {} posting {:.0} posts/s in all, {}-byte posts, {:.0} s warm-up + {:.0} s",
        f.clients, f.rooms, f.posters, f.rate, f.text_bytes, f.warmup_s, f.duration_s
    );
    let opt = |v: Option<f64>, digits: usize, unit: &str| {
        v.map_or("-".into(), |v| format!("{v:.digits$}{unit}"))
    };
    let per_sec = |n: u64| format!("{:.0}/s", n as f64 / f.duration_s);
    let errors: u64 = f.errors.values().sum();
    pairs(
        out,
        &[
            (
                "posts sent / acks read",
                format!("{} / {}", per_sec(f.posts_sent), per_sec(f.acks)),
            ),
            (
                "messages delivered to clients",
                format!("{:.0}/s", f.delivered_per_sec),
            ),
            (
                "frames forwarded to clients (front end)",
                opt(f.forwarded_per_sec, 0, "/s"),
            ),
            (
                "requests forwarded upstream",
                f.upstream.map_or("-".into(), per_sec),
            ),
            (
                "front-end CPU",
                opt(f.frontend_cpu_pct, 1, " % of one core"),
            ),
            (
                "front-end CPU per 1,000 forwarded",
                opt(f.frontend_ms_per_1000_forwarded, 2, " ms"),
            ),
            (
                "front-end CPU per 1,000 frames (up + down)",
                opt(f.frontend_ms_per_1000_frames, 2, " ms"),
            ),
            ("chat-server CPU", opt(f.chat_cpu_pct, 1, " % of one core")),
            (
                "load generator CPU",
                opt(f.generator_cpu_pct, 1, " % of one core"),
            ),
            ("error replies", errors.to_string()),
        ],
    );
    for (code, n) in &f.errors {
        let _ = writeln!(out, "    {code}: {n}");
    }
}

/// Rows of a name and one value per column, right-aligned.
fn columns(out: &mut String, rows: &[(&str, Vec<String>)]) {
    let width = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let cols = rows.first().map_or(0, |r| r.1.len());
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|(_, v)| v.get(i).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (name, values) in rows {
        let _ = write!(out, "  {name:<width$}");
        for (v, w) in values.iter().zip(&widths) {
            let _ = write!(out, "  {v:>w$}");
        }
        out.push('\n');
    }
}

/// Name: value lines, the values aligned.
fn pairs(out: &mut String, rows: &[(&str, String)]) {
    let width = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    for (name, value) in rows {
        let _ = writeln!(out, "  {name:<width$}  {value}");
    }
}

fn bytes(v: Option<f64>) -> String {
    v.map_or("-".into(), |b| format!("{b:.0} B ({:.2} KiB)", b / 1024.0))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
