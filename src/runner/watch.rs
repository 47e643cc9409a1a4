//! What a run watches on the server side while the load runs: a resource probe per
//! server process we started (the database size recorded with the process that owns
//! it), the PostgreSQL size sampler when the database is PostgreSQL, and the `/metrics`
//! scraper writing `server_metrics.csv`. One place, so a run in one process and a run
//! split over shards watch the same things.

use std::path::Path;

use tokio::time::Instant;

use super::db_size::{self, PgSize};
use super::scrape::{Endpoint, ScrapeCounts, Scraper};
use super::target::{Target, TargetDatabase};
use crate::metrics::resources::{DbSize, ProcessProbe};
use crate::metrics::server_metrics;

/// The server side of a run, watched.
pub struct ServerWatch {
    probes: Vec<ProcessProbe>,
    endpoints: Vec<Endpoint>,
    pg: Option<PgSize>,
    scraper: Option<Scraper>,
}

impl ServerWatch {
    /// Ready the probes of `target`'s processes and the database size sampler.
    pub async fn new(target: &Target) -> ServerWatch {
        let (owner, db, pg) = match target.database() {
            Some((owner, TargetDatabase::Folder(dir))) => {
                (Some(owner), Some(DbSize::Folder(dir)), None)
            }
            Some((owner, TargetDatabase::Url(url))) => {
                let (db, pg) = db_size::measure(&url).await;
                (Some(owner), db, pg)
            }
            None => (None, None, None),
        };
        let probes = target
            .pids()
            .into_iter()
            .map(|(name, pid)| {
                let db = (owner.as_deref() == Some(name.as_str()))
                    .then(|| db.clone())
                    .flatten();
                ProcessProbe::new(&name, pid, db)
            })
            .collect();
        ServerWatch {
            probes,
            endpoints: target.metrics_endpoints(),
            pg,
            scraper: None,
        }
    }

    /// The resource probes of the server processes (for the loop that samples them).
    pub fn take_probes(&mut self) -> Vec<ProcessProbe> {
        std::mem::take(&mut self.probes)
    }

    /// Start scraping into `out/server_metrics.csv`, `t_s` counted from `start` (the
    /// start of the load). No file when there is nothing to scrape; a file that cannot
    /// be created is a warning, not a failed run.
    pub fn start_scraping(&mut self, out: &Path, start: Instant) {
        if self.endpoints.is_empty() {
            return;
        }
        let path = out.join(server_metrics::FILE);
        match Scraper::start(&path, self.endpoints.clone(), start) {
            Ok(s) => self.scraper = Some(s),
            Err(e) => tracing::warn!(error = %e, "cannot write {}", path.display()),
        }
    }

    /// Stop scraping (after one last scrape) and sampling.
    pub async fn stop(self) -> ScrapeCounts {
        let counts = match self.scraper {
            Some(s) => s.stop().await,
            None => ScrapeCounts::default(),
        };
        if let Some(pg) = self.pg {
            pg.stop().await;
        }
        counts
    }
}
