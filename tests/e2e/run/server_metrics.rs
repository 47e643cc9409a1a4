//! `server_metrics.csv`: the server processes' `/metrics`, scraped once a second during a
//! run, read back with the report layer's reader.

use std::collections::BTreeSet;
use std::path::Path;

use chatcap::metrics::server_metrics::Row;
use chatcap::report::server_metrics::{panels, read, series};
use chatcap_server::telemetry::catalog;

use super::{baseline, summary, u};

/// The rows of `out/server_metrics.csv` (which must exist).
pub fn rows(out: &Path) -> Vec<Row> {
    read(out)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no server_metrics.csv in {}", out.display()))
}

/// The processes that have rows.
pub fn processes(rows: &[Row]) -> BTreeSet<&str> {
    rows.iter().map(|r| r.process.as_str()).collect()
}

/// The last value of `metric` (no labels) of `process`; 0 when it has none.
pub fn last(rows: &[Row], process: &str, metric: &str) -> f64 {
    series(rows, metric)
        .into_iter()
        .filter(|s| s.process == process && s.labels.is_empty())
        .find_map(|s| s.points.last().map(|p| p.1))
        .unwrap_or(0.0)
}

#[test]
fn the_server_is_scraped_every_second_from_the_start_of_the_load() {
    let b = baseline();
    assert_eq!(b.ran.code(), Some(0), "{}", b.ran);
    let rows = rows(&b.out);
    assert_eq!(processes(&rows), BTreeSet::from(["server"]));

    // A row of every family the catalog lists (the server zeroes them at start).
    let metrics: BTreeSet<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
    for f in catalog::ALL {
        let name = match f.kind {
            catalog::Kind::Histogram => format!("{}_count", f.name),
            _ => f.name.to_string(),
        };
        assert!(metrics.contains(name.as_str()), "no {name} rows");
    }

    // Once a second from the start of the load to its end (8 s) and a last scrape after.
    let up = series(&rows, "up");
    let times: Vec<f64> = up[0].points.iter().map(|p| p.0).collect();
    assert!(up[0].points.iter().all(|p| p.1 == 1.0), "a scrape failed");
    assert!(times[0] < 0.5, "first scrape at {} s", times[0]);
    assert!(times.len() >= 9, "{times:?}");
    assert!(*times.last().expect("times") >= 8.0, "{times:?}");

    // Nothing was counted before the load; the posts it acknowledged are counted after.
    let acked = series(&rows, catalog::POSTS_ACKED.name);
    assert_eq!(acked[0].points[0].1, 0.0);
    let s = summary(&b.out);
    let client_acks = u(&s["operations"]["post_ack"]["count"]) as f64;
    let server_acks = last(&rows, "server", catalog::POSTS_ACKED.name);
    assert!(
        server_acks >= client_acks && client_acks > 0.0,
        "server acknowledged {server_acks}, the generator measured {client_acks}"
    );
    assert!(last(&rows, "server", catalog::DELIVERIES.name) > 0.0);
    assert!(
        last(
            &rows,
            "server",
            &format!("{}_count", catalog::COMMIT_SECONDS.name)
        ) > 0.0
    );

    let titles: Vec<&str> = panels(&rows).iter().map(|p| p.title).collect();
    for title in [
        "Commit batch size",
        "Commit time",
        "Sessions",
        "Posts",
        "Deliveries",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(title)),
            "no {title} panel in {titles:?}"
        );
    }

    // The database grows, and its size is recorded with the server.
    let resources = std::fs::read_to_string(b.out.join("resources.csv")).expect("resources");
    let db = resources
        .lines()
        .filter(|l| l.contains(",server,"))
        .filter_map(|l| l.rsplit(',').next()?.parse::<u64>().ok())
        .max();
    assert!(db.is_some_and(|b| b > 0), "db_bytes of server: {resources}");
}
