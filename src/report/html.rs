//! `report.html`: one self-contained page (inline SVG and CSS, no script, nothing fetched)
//! with the headline figures, the SLO verdicts, every chart and the detail tables.

use std::fmt::Write as _;

use super::model::Summary;
use super::plot::{self, Chart};
use super::render::{mib, ms, slo_value};

/// Text made safe for HTML and XML (control characters XML cannot carry become `?`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 cannot carry at all (nor HTML show).
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:900px;color:#222;padding:0 1em}\
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}\
.sub{color:#555;margin-top:0}.cards{display:flex;flex-wrap:wrap;gap:.6em}\
.card{border:1px solid #ddd;border-radius:6px;padding:.5em .9em;min-width:8em}\
.card b{display:block;font-size:1.3em}.card span{color:#555;font-size:.85em}\
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}\
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}th:first-child,td:first-child{text-align:left}\
th{background:#f4f4f4}.pass{color:#0a6e31;font-weight:600}.fail{color:#b00020;font-weight:700}\
figure{margin:1.2em 0}figcaption{color:#555;font-size:.85em}svg{max-width:100%;height:auto}\
.text td,.text th{text-align:left}.note{background:#fff6d6;border:1px solid #e5cf7a;padding:.5em .8em;border-radius:6px}";

/// A page: title, subtitle, then the body's HTML.
pub fn page(title: &str, subtitle: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n<p class=\"sub\">{s}</p>\n{body}</body></html>\n",
        t = escape(title),
        s = escape(subtitle),
    )
}

/// A chart as a figure with its SVG inline; `file` names the SVG's copy beside the page.
pub fn figure(chart: &Chart, svg: &str, file: Option<&str>) -> String {
    let note = if chart.has_data() {
        ""
    } else {
        "Nothing was measured for this chart in this run. "
    };
    let file = file
        .map(|f| format!("<code>{}</code>", escape(f)))
        .unwrap_or_default();
    format!(
        "<figure id=\"{id}\" class=\"plot\" aria-label=\"{t}\">{svg}<figcaption>{note}{file}</figcaption></figure>\n",
        id = escape(&chart.id),
        t = escape(&chart.title),
        svg = svg.trim_start_matches(|c| c != '<'),
    )
}

/// A table: header cells, then rows of cells (already HTML).
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for c in row {
            let _ = write!(out, "<td>{c}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

fn card(value: &str, what: &str) -> String {
    format!(
        "<div class=\"card\"><b>{}</b><span>{}</span></div>",
        escape(value),
        escape(what)
    )
}

/// The SLO table with verdicts.
pub fn slo_table(s: &Summary) -> String {
    if s.slo.is_empty() {
        return "<p>The scenario sets no objectives.</p>\n".into();
    }
    let rows: Vec<Vec<String>> = s
        .slo
        .iter()
        .map(|r| {
            vec![
                format!("<code>{}</code>", escape(&r.text)),
                escape(&slo_value(r)),
                if r.pass {
                    "<span class=\"pass\">pass</span>".into()
                } else {
                    "<span class=\"fail\">FAIL</span>".into()
                },
            ]
        })
        .collect();
    table(&["objective", "measured", "verdict"], &rows)
}

/// The report of one run: `charts` with their SVG, in order.
pub fn report(s: &Summary, charts: &[(Chart, String)]) -> String {
    let mut b = String::new();
    let passed = s.slo.iter().filter(|r| r.pass).count();
    let d = &s.delivery;
    b.push_str("<div class=\"cards\">");
    for (v, w) in [
        (
            format!("{passed} / {}", s.slo.len()),
            "objectives met".to_string(),
        ),
        (
            s.users.peak.to_string(),
            format!("peak connections (asked {})", s.users.target_peak),
        ),
        (
            format!("{:.0} s", s.duration_s),
            format!("of load, {}", s.ending),
        ),
        (d.received.to_string(), "deliveries".into()),
        (
            format!("{} / {}", d.lost, d.duplicated),
            "lost / duplicated".into(),
        ),
        (format!("{:.4}%", s.error_rate * 100.0), "error rate".into()),
    ] {
        b.push_str(&card(&v, &w));
    }
    b.push_str("</div>\n");
    if s.ending != "completed" {
        let _ = writeln!(
            b,
            "<p class=\"note\">The run ended <b>{}</b>: the figures cover what was measured until then.</p>",
            escape(&s.ending)
        );
    }
    if let Some(p) = &s.profile {
        b.push_str(&profile(p));
    }
    b.push_str("<h2>Objectives</h2>\n");
    b.push_str(&slo_table(s));
    b.push_str("<h2>Charts</h2>\n");
    for (c, svg) in charts {
        b.push_str(&figure(c, svg, Some(&format!("plots/{}.svg", c.id))));
    }
    b.push_str("<h2>Operations (whole run)</h2>\n");
    let rows: Vec<Vec<String>> = s
        .operations
        .iter()
        .map(|(name, o)| {
            vec![
                escape(name),
                o.count.to_string(),
                format!("{:.1}", o.rate_per_s),
                (o.errors + o.timeouts).to_string(),
                ms(o.response.p50_us),
                ms(o.response.p99_us),
                ms(o.response.max_us),
                ms(o.service.p99_us),
            ]
        })
        .collect();
    b.push_str(&table(
        &[
            "operation",
            "count",
            "rate/s",
            "errors",
            "p50 ms",
            "p99 ms",
            "max ms",
            "service p99 ms",
        ],
        &rows,
    ));
    if let Some(r) = &s.reconciliation {
        let _ = writeln!(
            b,
            "<p>Reconciliation: {} acknowledged posts in {} rooms checked against history: {} missing, {} duplicated.</p>",
            r.acked_checked, r.rooms_checked, r.missing, r.duplicated
        );
    }
    b.push_str("<h2>Processes</h2>\n");
    let rows: Vec<Vec<String>> = s
        .resources
        .iter()
        .map(|(name, r)| {
            vec![
                escape(name),
                format!("{:.1}", r.cpu_avg_pct),
                format!("{:.1}", r.cpu_max_pct),
                mib(r.rss_max_bytes),
                r.fds_max.to_string(),
                r.threads_max.to_string(),
            ]
        })
        .collect();
    b.push_str(&table(
        &[
            "process",
            "CPU avg %",
            "CPU max %",
            "RSS max MiB",
            "fds max",
            "threads max",
        ],
        &rows,
    ));
    let m = &s.machine;
    let _ = writeln!(
        b,
        "<p class=\"sub\">Machine: {} · {} cores · {} MiB · kernel {} · open-file limit {}</p>",
        escape(&m.cpu_model),
        m.cores,
        m.memory_bytes / (1024 * 1024),
        escape(&m.kernel),
        m.fd_limit
    );
    page(
        &format!("chatcap run: {}", s.scenario),
        &format!("{} · scenario file {}", s.started_at, s.scenario_file),
        &b,
    )
}

/// The hardware profile the servers ran under: each limit and how it was applied, and a
/// plain warning for what was not.
fn profile(p: &crate::profile::ProfileRecord) -> String {
    let mut out = format!(
        "<h2>Hardware profile: {}</h2>\n<p>{}</p>\n",
        escape(&p.name),
        escape(&p.description)
    );
    if p.limits.is_empty() {
        out.push_str("<p>No limits: the servers ran on the whole machine.</p>\n");
        return out;
    }
    let rows: Vec<Vec<String>> = p
        .limits
        .iter()
        .map(|l| {
            vec![
                escape(&l.limit),
                escape(&l.asked),
                escape(l.how.label()),
                escape(l.applied.as_deref().unwrap_or("–")),
                escape(l.note.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    out.push_str(&table(
        &["limit", "asked", "applied by", "read back", "note"],
        &rows,
    ));
    let missed: Vec<&str> = p.missed().map(|l| l.limit.as_str()).collect();
    if !missed.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"note\"><b>Not applied: {}.</b> The servers ran without it; read these figures with that in mind.</p>",
            escape(&missed.join(", "))
        );
    }
    out
}

/// SVG of each chart, in order.
pub fn drawn(charts: Vec<Chart>) -> Vec<(Chart, String)> {
    charts
        .into_iter()
        .map(|c| {
            let svg = plot::svg(&c);
            (c, svg)
        })
        .collect()
}
