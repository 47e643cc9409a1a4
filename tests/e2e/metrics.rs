//! `/metrics` of freshly started server processes, before any load: every family the
//! catalog lists for the process's role is there with its `# HELP` and `# TYPE`, every
//! series (each value of a label) at zero — but the gauges that say what the process is
//! (`chatcap_accepting`, and the single box's link to its own front end).

use std::net::SocketAddr;

use chatcap::metrics::prom_text::{self, MetricType};
use chatcap_server::telemetry::catalog::{self, Kind};

use crate::common::procs::{any_port, http_get, Data};
use crate::common::Backend;

/// What a process emitting the chat server's (`chat`) and/or the front end's (`front`)
/// families shows at `addr`, checked family by family.
async fn every_family_at_zero(addr: SocketAddr, chat: bool, front: bool) {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    let text = prom_text::parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let listed: Vec<&str> = catalog::emitted_by(chat, front).map(|f| f.name).collect();
    for f in catalog::emitted_by(chat, front) {
        let info = text
            .families
            .get(f.name)
            .unwrap_or_else(|| panic!("no # HELP/# TYPE for {}:\n{body}", f.name));
        assert_eq!(info.help.as_deref(), Some(f.help), "{}", f.name);
        let kind = match f.kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Histogram => MetricType::Summary,
        };
        assert_eq!(info.kind, Some(kind), "{}", f.name);
        let names = match f.kind {
            Kind::Histogram => vec![
                f.name.to_string(),
                format!("{}_sum", f.name),
                format!("{}_count", f.name),
            ],
            _ => vec![f.name.to_string()],
        };
        let samples: Vec<_> = text
            .samples
            .iter()
            .filter(|s| names.contains(&s.name))
            .collect();
        let (key, values) = f.label.values();
        for value in &values {
            assert!(
                samples
                    .iter()
                    .any(|s| s.labels == [(key.to_string(), value.to_string())]),
                "{}{{{key}=\"{value}\"}} missing",
                f.name
            );
        }
        assert!(!samples.is_empty(), "{} has no sample", f.name);
        let expected = match f.name {
            n if n == catalog::ACCEPTING.name => 1.0,
            n if n == catalog::LINKS.name && front => 1.0,
            _ => 0.0,
        };
        for s in samples {
            assert_eq!(s.value, expected, "{} {:?}", s.name, s.labels);
        }
    }
    for name in text.families.keys() {
        assert!(
            listed.contains(&name.as_str()),
            "{name} is not in the catalog for this role"
        );
    }
}

#[tokio::test]
async fn a_fresh_server_shows_every_family_of_its_role_at_zero() {
    let data = Data::new(Backend::Sqlite).await;
    let single = data
        .serve(
            "single",
            &["--listen", "127.0.0.1:0", "--chat-listen", "127.0.0.1:0"],
        )
        .await;
    every_family_at_zero(single.ready.http, true, true).await;

    let pair = Data::new(Backend::Sqlite).await;
    let chat = pair.chat_server("chat", any_port()).await;
    every_family_at_zero(chat.ready.http, true, false).await;
    let link = chat.ready.chat.expect("chat link");
    let front = pair.front_end("fe", any_port(), &[link]).await;
    every_family_at_zero(front.ready.http, false, true).await;

    for process in [front, chat, single] {
        process.terminate(std::time::Duration::from_secs(20)).await;
    }
}
