//! Reading the processes under test from outside: memory from `/proc/<pid>/status`,
//! counters from their Prometheus `/metrics`, and the arithmetic that turns readings into
//! per-connection and per-message figures. No load is generated here.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use chatcap_server::tls::connect::upgrade;
use chatcap_server::tls::Connector;
use serde::Serialize;
use tokio::time::Instant;

/// Resident memory of a process at one moment, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rss {
    /// `VmRSS`: every resident page (binary and libraries included).
    pub vm_rss: u64,
    /// `RssAnon`: resident anonymous pages — heap, stacks, buffers: the process's own
    /// user-space data (0 when the kernel does not report it).
    pub anon: u64,
}

/// The value of a `Key:   N kB` line of `/proc/<pid>/status`, in bytes.
pub fn status_bytes(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.split(':').next() == Some(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Read `VmRSS` and `RssAnon` of `pid`.
pub fn rss(pid: u32) -> anyhow::Result<Rss> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(Rss {
        vm_rss: status_bytes(&status, "VmRSS").context("no VmRSS line")?,
        anon: status_bytes(&status, "RssAnon").unwrap_or(0),
    })
}

/// `rss(pid)` once it stops moving: two reads 300 ms apart within 64 KiB, at most 5 s.
pub async fn settled_rss(pid: u32) -> anyhow::Result<Rss> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = rss(pid)?;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = rss(pid)?;
        if now.vm_rss.abs_diff(last.vm_rss) < 64 * 1024 || Instant::now() >= deadline {
            return Ok(now);
        }
        last = now;
    }
}

/// The load average now (`/proc/loadavg`: 1, 5 and 15 minutes), as written there.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Least-squares slope of `y` against `x`; `None` with fewer than two distinct `x`.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Milliseconds of `cpu` per 1,000 of `count`; `None` when nothing was counted.
pub fn ms_per_thousand(cpu: Duration, count: u64) -> Option<f64> {
    (count > 0).then(|| cpu.as_secs_f64() * 1000.0 * 1000.0 / count as f64)
}

/// The sum of every sample of the metric `name` (all label sets) in Prometheus text;
/// 0 when it has none yet (a counter appears on its first increment).
pub fn metric_sum(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        // From +0.0: an empty `sum()` of floats is -0.0, which prints as "-0".
        .fold(0.0, |a, b| a + b)
}

/// The `/metrics` text of the process serving HTTP at `addr` (over TLS through `tls` when
/// given; `None` unless 200).
pub async fn scrape(addr: SocketAddr, tls: Option<&Connector>) -> Option<String> {
    http_get(addr, "/metrics", tls).await
}

/// A plain HTTP/1.0 GET on loopback (over TLS through `tls` when given): the body of a
/// 200 answer (no HTTP client dependency for a scrape).
pub async fn http_get(addr: SocketAddr, path: &str, tls: Option<&Connector>) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut s = upgrade(tls, tcp).await.ok()?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.take(16 << 20).read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_read_as_bytes() {
        let status =
            "Name:\tchatcap\nVmRSS:\t   20480 kB\nRssAnon:\t    8192 kB\nRssFile:\t 12288 kB\n";
        assert_eq!(status_bytes(status, "VmRSS"), Some(20480 * 1024));
        assert_eq!(status_bytes(status, "RssAnon"), Some(8192 * 1024));
        assert_eq!(status_bytes(status, "RssShmem"), None);
        assert_eq!(status_bytes(status, "Rss"), None);
    }

    #[test]
    fn own_memory_is_readable() {
        let r = rss(std::process::id()).expect("own status");
        assert!(r.vm_rss > 0 && r.anon <= r.vm_rss);
    }

    #[test]
    fn slope_is_the_least_squares_fit() {
        assert_eq!(slope(&[(0.0, 100.0), (10.0, 200.0)]), Some(10.0));
        let s = slope(&[(0.0, 0.0), (5.0, 60.0), (10.0, 100.0)]).expect("slope");
        assert!((s - 10.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 5.0)]), None);
        assert_eq!(slope(&[(3.0, 5.0), (3.0, 9.0)]), None);
    }

    #[test]
    fn cpu_per_thousand() {
        assert_eq!(
            ms_per_thousand(Duration::from_millis(500), 10_000),
            Some(50.0)
        );
        assert_eq!(ms_per_thousand(Duration::from_millis(500), 0), None);
    }

    #[test]
    fn metric_sums_cover_every_label_set_and_only_that_metric() {
        let body = "# TYPE chatcap_requests_total counter\n\
                    chatcap_requests_total{op=\"post\"} 120\n\
                    chatcap_requests_total{op=\"join\"} 30\n\
                    chatcap_requests_total_extra 7\n\
                    chatcap_frontend_forwarded_total 5000\n";
        assert_eq!(metric_sum(body, "chatcap_requests_total"), 150.0);
        assert_eq!(metric_sum(body, "chatcap_frontend_forwarded_total"), 5000.0);
        let none = metric_sum(body, "chatcap_absent_total");
        assert!(none == 0.0 && none.is_sign_positive());
    }
}
