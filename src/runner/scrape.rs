//! Scraping the server processes' Prometheus `/metrics` once a second during a run into
//! `server_metrics.csv` (`metrics::server_metrics`): every process at once, each round
//! flushed to the file, so an interrupted run keeps what was scraped.
//!
//! A scrape that fails (the process is gone, or answers late or wrongly) is skipped and
//! counted: as in Prometheus, every round also writes an `up` row per process, 1 when its
//! scrape succeeded and 0 when not. Nothing here is fatal to the run.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use chatcap_server::tls::connect::upgrade;
use chatcap_server::tls::Connector;
use futures_util::future::join_all;
use http_body_util::Empty;
use hyper::{header, Request};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::file_error::malformed;
use super::http::exchange;
use crate::metrics::prom_text::{self, Exposition, ParseError};
use crate::metrics::server_metrics::{self, Row};

/// How often every process is scraped.
const EVERY: Duration = Duration::from_secs(1);
/// Longest one scrape may take, from connecting to the last byte.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Largest `/metrics` body read.
const MAX_BODY: usize = 16 << 20;
/// The metric of the per-round row that says whether a scrape succeeded.
pub const UP: &str = "up";

/// A process to scrape.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its name in the results (as in `resources.csv`).
    pub process: String,
    /// Where it serves `/metrics`.
    pub addr: SocketAddr,
    /// `https://`: trusted through this (a single box whose client port is TLS).
    pub tls: Option<Connector>,
}

/// Why one scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// No complete answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The answer is not HTTP this reader understands.
    #[error("{0}")]
    Http(#[from] super::file_error::FileOpError),
    /// The answer was not 200.
    #[error("HTTP {0}")]
    Status(u16),
    /// The body is not Prometheus text.
    #[error("not Prometheus text: {0}")]
    Parse(#[from] ParseError),
}

/// What a scraper did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Scrapes that succeeded.
    pub scraped: u64,
    /// Scrapes that failed (skipped).
    pub failed: u64,
    /// Rows written.
    pub rows: u64,
}

/// `GET /metrics` of the process at `addr` (HTTP/1.1, `Connection: close`; over TLS
/// through `tls` when given), parsed.
pub async fn fetch(addr: SocketAddr, tls: Option<&Connector>) -> Result<Exposition, ScrapeError> {
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let stream = upgrade(tls, tcp).await?;
        let request = Request::get("/metrics")
            .header(header::HOST, addr.to_string())
            .header(header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| malformed(format!("request: {e}")))?;
        let reply = exchange(stream, request, MAX_BODY).await?;
        if reply.status != 200 {
            return Err(ScrapeError::Status(reply.status));
        }
        Ok(prom_text::parse(&String::from_utf8_lossy(&reply.body))?)
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .unwrap_or(Err(ScrapeError::Timeout(TIMEOUT)))
}

/// A running scraper.
pub struct Scraper {
    /// Stops the task when dropped (also on an early return).
    stop: DropGuard,
    task: tokio::task::JoinHandle<ScrapeCounts>,
}

impl Scraper {
    /// Create `path` and scrape `endpoints` into it once a second, `t_s` counted from
    /// `start`, until stopped.
    pub fn start(path: &Path, endpoints: Vec<Endpoint>, start: Instant) -> csv::Result<Scraper> {
        let out = csv::Writer::from_path(path)?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(scrape_every_second(out, endpoints, start, stop.clone()));
        Ok(Scraper {
            stop: stop.drop_guard(),
            task,
        })
    }

    /// Scrape once more (the figures at the end of the load), stop, and say what was done.
    pub async fn stop(self) -> ScrapeCounts {
        drop(self.stop);
        let counts = self.task.await.unwrap_or_default();
        if counts.failed > 0 {
            tracing::warn!(
                failed = counts.failed,
                scraped = counts.scraped,
                "some /metrics scrapes failed (rows `up` = 0 in {})",
                server_metrics::FILE
            );
        }
        counts
    }
}

async fn scrape_every_second(
    mut out: csv::Writer<std::fs::File>,
    endpoints: Vec<Endpoint>,
    start: Instant,
    stop: CancellationToken,
) -> ScrapeCounts {
    let mut counts = ScrapeCounts::default();
    let mut tick = tokio::time::interval_at(start, EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let last = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tick.tick() => false,
        };
        let rows = round(&endpoints, start, &mut counts).await;
        let written = rows
            .iter()
            .try_for_each(|r| out.serialize(r))
            .and_then(|()| out.flush().map_err(csv::Error::from));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write {}; scraping stops", server_metrics::FILE);
            break;
        }
        counts.rows += rows.len() as u64;
        if last {
            break;
        }
    }
    counts
}

/// Scrape every endpoint at once: their rows, and an `up` row each.
async fn round(endpoints: &[Endpoint], start: Instant, counts: &mut ScrapeCounts) -> Vec<Row> {
    // Milliseconds are plenty for a once-a-second series, and keep the file small.
    let t_s = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let scrapes = join_all(endpoints.iter().map(|e| fetch(e.addr, e.tls.as_ref()))).await;
    let mut rows = Vec::new();
    for (e, scraped) in endpoints.iter().zip(scrapes) {
        let up = match scraped {
            Ok(exposition) => {
                counts.scraped += 1;
                rows.extend(server_metrics::rows(t_s, &e.process, &exposition));
                1.0
            }
            Err(err) => {
                counts.failed += 1;
                tracing::debug!(process = %e.process, error = %err, "scrape failed");
                0.0
            }
        };
        rows.push(Row {
            t_s,
            process: e.process.clone(),
            metric: UP.to_string(),
            labels: String::new(),
            value: up,
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-shot HTTP server answering every connection with `reply`.
    async fn serve(reply: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_chunked_answer_is_read_whole() {
        let addr = serve(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
             e\r\n# TYPE x gauge\r\n4\r\n\nx 4\r\n1\r\n\n\r\n0\r\n\r\n",
        )
        .await;
        let e = fetch(addr, None).await.expect("scraped");
        assert_eq!(e.samples.len(), 1);
        assert_eq!(e.samples[0].value, 4.0);
    }

    #[tokio::test]
    async fn failures_are_typed() {
        let addr = serve("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n").await;
        assert!(matches!(
            fetch(addr, None).await,
            Err(ScrapeError::Status(503))
        ));
        let addr = serve("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nx y\n").await;
        assert!(matches!(
            fetch(addr, None).await,
            Err(ScrapeError::Parse(_))
        ));
        let gone = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = gone.local_addr().expect("addr");
        drop(gone);
        assert!(matches!(fetch(addr, None).await, Err(ScrapeError::Io(_))));
    }

    #[tokio::test]
    async fn a_gone_process_is_counted_down_and_the_rest_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(server_metrics::FILE);
        let live = serve("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nx 1.5\n").await;
        let gone = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let dead = gone.local_addr().expect("addr");
        drop(gone);
        let endpoints = vec![
            Endpoint {
                process: "server".into(),
                addr: live,
                tls: None,
            },
            Endpoint {
                process: "chat-2".into(),
                addr: dead,
                tls: None,
            },
        ];
        let scraper = Scraper::start(&path, endpoints, Instant::now()).expect("start");
        let rounds_written = || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            text.matches(",server,up,").count()
        };
        // Each round is flushed as it ends: wait for two on disk (the second at 1 s).
        let deadline = Instant::now() + Duration::from_secs(10);
        while rounds_written() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let counts = scraper.stop().await;
        let rounds = rounds_written() as u64;
        // Those two, maybe one more, and the last at stop.
        assert!(rounds >= 3, "{rounds} rounds");
        assert_eq!(
            (counts.scraped, counts.failed),
            (rounds, rounds),
            "{counts:?}"
        );
        let text = std::fs::read_to_string(&path).expect("written");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("t_s,process,metric,labels,value"));
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len() as u64, counts.rows);
        let count = |end: &str| rows.iter().filter(|r| r.ends_with(end)).count() as u64;
        assert_eq!(count(",server,x,,1.5"), rounds);
        assert_eq!(count(",server,up,,1.0"), rounds);
        assert_eq!(count(",chat-2,up,,0.0"), rounds);
    }
}
