//! Renderings of the summary: a Markdown report (also printed as the console table) and
//! CSV files of timeline and resource rows.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::model::{SloResult, Summary};

/// Microseconds as milliseconds with two decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// The summary as Markdown: headline, operations table, correctness, resources, SLOs.
pub fn markdown(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# chatcap run: {}\n", s.scenario);
    let _ = writeln!(
        out,
        "{} · {:.0} s of load · {} · peak {} connections (target {}) of {} users · {} disconnects\n",
        s.started_at, s.duration_s, s.ending, s.users.peak, s.users.target_peak, s.users.population, s.users.disconnects
    );
    if let Some(p) = &s.profile {
        let _ = writeln!(out, "{}", p.markdown());
    }
    let _ = writeln!(out, "Latency in ms; response time is measured from the intended start, service time from the send.\n");
    let _ = writeln!(out, "| operation | count | rate/s | errors | timeouts | p50 | p90 | p99 | p99.9 | max | service p99 |");
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (name, o) in &s.operations {
        let _ = writeln!(
            out,
            "| {name} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} |",
            o.count,
            o.rate_per_s,
            o.errors,
            o.timeouts,
            ms(o.response.p50_us),
            ms(o.response.p90_us),
            ms(o.response.p99_us),
            ms(o.response.p999_us),
            ms(o.response.max_us),
            ms(o.service.p99_us)
        );
    }
    let d = &s.delivery;
    let _ = writeln!(
        out,
        "\nDeliveries: {} received, {} lost, {} duplicated, {} out of order. Error rate {:.4}%.",
        d.received,
        d.lost,
        d.duplicated,
        d.out_of_order,
        s.error_rate * 100.0
    );
    if let Some(r) = &s.reconciliation {
        let _ = writeln!(
            out,
            "Reconciliation: {} acknowledged posts in {} rooms checked against history: {} missing, {} duplicated{}.",
            r.acked_checked,
            r.rooms_checked,
            r.missing,
            r.duplicated,
            if r.unreadable_rooms > 0 { format!(", {} rooms unreadable", r.unreadable_rooms) } else { String::new() }
        );
    }
    if !s.errors.is_empty() {
        let list: Vec<String> = s.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "Errors by kind: {}.", list.join(", "));
    }
    if !s.resources.is_empty() {
        let _ = writeln!(out, "\n| process | CPU avg % | CPU max % | RSS max MiB | fds max | threads max | database MiB |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        for (name, r) in &s.resources {
            let _ = writeln!(
                out,
                "| {name} | {:.1} | {:.1} | {} | {} | {} | {} |",
                r.cpu_avg_pct,
                r.cpu_max_pct,
                mib(r.rss_max_bytes),
                r.fds_max,
                r.threads_max,
                mib(r.db_bytes)
            );
        }
    }
    if let Some(w) = &s.slo_window {
        let _ = writeln!(
            out,
            "\nLatency over the last phase (from {:.0} s; latency SLOs are judged on it):\n",
            w.from_s
        );
        let _ = writeln!(
            out,
            "| operation | count | p50 | p90 | p99 | p99.9 | max | service p99 |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for (name, o) in &w.operations {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} | {} |",
                o.count,
                ms(o.response.p50_us),
                ms(o.response.p90_us),
                ms(o.response.p99_us),
                ms(o.response.p999_us),
                ms(o.response.max_us),
                ms(o.service.p99_us)
            );
        }
    }
    if !s.slo.is_empty() {
        let _ = writeln!(out, "\n| SLO | measured | verdict |");
        let _ = writeln!(out, "|---|---:|---|");
        for r in &s.slo {
            let v = slo_value(r);
            let _ = writeln!(
                out,
                "| `{}` | {v} | {} |",
                r.text,
                if r.pass { "pass" } else { "**FAIL**" }
            );
        }
    }
    let m = &s.machine;
    let _ = writeln!(
        out,
        "\nMachine: {} · {} cores · {} MiB · kernel {} · fd limit {}",
        m.cpu_model,
        m.cores,
        m.memory_bytes / (1024 * 1024),
        m.kernel,
        m.fd_limit
    );
    out
}

/// An objective's measured value in its unit.
pub fn slo_value(r: &SloResult) -> String {
    match r.value {
        None => "not measured".to_string(),
        Some(v) if r.unit == "us" => format!("{:.2} ms", v / 1000.0),
        Some(v) if r.unit == "fraction" => format!("{:.4}%", v * 100.0),
        Some(v) => format!("{v}"),
    }
}

/// The operations table as CSV (latency in µs).
pub fn operations_csv(s: &Summary) -> String {
    let mut out = String::from(
        "operation,count,rate_per_s,errors,timeouts,p50_us,p90_us,p99_us,p999_us,max_us,service_p99_us\n",
    );
    for (name, o) in &s.operations {
        let r = &o.response;
        let _ = writeln!(
            out,
            "{name},{},{:.3},{},{},{},{},{},{},{},{}",
            o.count,
            o.rate_per_s,
            o.errors,
            o.timeouts,
            r.p50_us,
            r.p90_us,
            r.p99_us,
            r.p999_us,
            r.max_us,
            o.service.p99_us
        );
    }
    out
}

/// Write rows as CSV with a header.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(std::io::Error::other)?;
    for row in rows {
        w.serialize(row).map_err(std::io::Error::other)?;
    }
    w.flush()
}

/// A table for a terminal: the header, then the rows, each column padded to its widest
/// cell (left-aligned), trailing blanks trimmed.
pub fn text_table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let head: Vec<String> = head.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for r in std::iter::once(&head).chain(rows) {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
