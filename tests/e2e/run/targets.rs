//! `chatcap run` stopped with Ctrl-C, driving a running server by address, embedded
//! targets with front ends or over TLS, and a pool from a topology file.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    chatcap, finish, poll, run_args, scenario_text, server_pid, signal, sockets, start, summary, u,
    write_scenario, USERS,
};

#[test]
fn ctrl_c_stops_the_run_and_still_writes_what_was_measured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = write_scenario(dir.path(), "");
    let out = dir.path().join("out");
    let log = dir.path().join("interrupted");
    let child = start(run_args(&scenario, &out, &[]), dir.path(), &log);
    let run_pid = child.id();
    // Interrupt once every user is connected: the server then holds all their sockets.
    let server = poll(Duration::from_secs(30), "the embedded server", || {
        server_pid(&out)
    });
    poll(Duration::from_secs(30), "all users connected", || {
        (sockets(server) as u64 > USERS).then_some(())
    });
    signal(run_pid, "-INT");
    let ran = finish(child, &log);
    assert!(ran.status.success(), "{ran}");
    let s = summary(&out);
    assert_eq!(s["ending"], "interrupted", "{ran}");
    assert!(
        s["duration_s"].as_f64().expect("duration") < 8.0,
        "stopped before the end of the load shape"
    );
    assert!(
        u(&s["operations"]["sign_in"]["count"]) > 0,
        "what was measured is kept"
    );
    assert!(out.join("timeline.csv").exists() && out.join("histograms.hlog").exists());
    let scraped = super::server_metrics::rows(&out);
    assert!(
        scraped
            .iter()
            .any(|r| r.metric == "chatcap_sessions" && r.value > 0.0),
        "the scrapes made before Ctrl-C are kept"
    );
    assert!(
        server_pid(&out).is_none(),
        "the embedded server was stopped too"
    );
}

/// A running server given by address: provision with `chatcap provision`, serve it, and
/// run a scenario whose target is `addresses` with the tokens file.
#[test]
fn a_running_server_is_driven_through_its_address_and_tokens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        "seed = 3\n[users]\ncount = 40\nadmins = 1\n[categories]\ncount = 1\n\
         [[rooms]]\nclass = \"small\"\nsize = 10\nrooms_per_user = 2\n",
    )
    .expect("write the spec");
    let prov = chatcap(
        [
            "provision".as_ref(),
            "--spec".as_ref(),
            spec.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--quiet".as_ref(),
        ],
        dir.path(),
        &dir.path().join("provision"),
    );
    assert!(prov.status.success(), "{prov}");
    let port = crate::common::free_port();
    let chat = crate::common::free_port();
    let serve_log = dir.path().join("serve");
    let mut server = start(
        [
            "serve".as_ref(),
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--listen".as_ref(),
            format!("127.0.0.1:{port}").as_ref(),
            "--chat-listen".as_ref(),
            format!("127.0.0.1:{chat}").as_ref(),
        ] as [&OsStr; 7],
        dir.path(),
        &serve_log,
    );
    poll(Duration::from_secs(30), "the server to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    });
    let scenario = dir.path().join("addresses.toml");
    let text = scenario_text("\"delivery.lost\" = \"== 0\"")
        .replace("users = 50", "users = 40")
        .replace("to = 50", "to = 40")
        .replace(
            "[population]",
            &format!(
                "[target]\nkind = \"addresses\"\nurls = [\"ws://127.0.0.1:{port}/ws\"]\ntokens = \"{}\"\n\n[population]",
                data.join("tokens.csv").display()
            ),
        );
    std::fs::write(&scenario, text).expect("write the scenario");
    let out = dir.path().join("out");
    let ran = chatcap(
        run_args(&scenario, &out, &[]),
        dir.path(),
        &dir.path().join("run"),
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(ran.status.success(), "{ran}");
    let s = summary(&out);
    assert_eq!(u(&s["users"]["peak"]), 40, "{ran}");
    assert!(u(&s["operations"]["post_ack"]["count"]) > 0);
    assert_eq!(
        u(&s["operations"]["join"]["count"]),
        40,
        "every user batch-joined its rooms"
    );
    assert_eq!(
        u(&s["reconciliation"]["missing"]),
        0,
        "reconciled with the manifest's administrator"
    );
    assert!(u(&s["reconciliation"]["acked_checked"]) > 0);
}

/// Run the test scenario (with `head` before it, `slo` as its objectives) against an
/// embedded target with `target` in its `[target]` table; it must pass. The folder
/// (kept while the result lives) and the results folder.
fn run_embedded(head: &str, target: &str, slo: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("scenario.toml");
    let text = format!(
        "{head}{}\n[target]\nkind = \"embedded\"\n{target}\n",
        scenario_text(slo)
    );
    std::fs::write(&scenario, text).expect("write the scenario");
    let out = dir.path().join("out");
    let ran = chatcap(
        run_args(&scenario, &out, &[]),
        dir.path(),
        &dir.path().join("log"),
    );
    assert_eq!(ran.code(), Some(0), "{ran}");
    (dir, out)
}

/// An embedded target with separate front ends: a chat server process and two front-end
/// processes sharing the client port; every user signs in, nothing is lost, and each
/// process is measured on its own. Latency objectives are judged over the last phase.
#[test]
fn an_embedded_chat_server_with_two_front_ends_runs_clean() {
    // Latency objectives judged over the hold only (the ramp lasts 2 s).
    let (_dir, out) = run_embedded(
        "slo_window = \"last_phase\"\n",
        "front_ends = 2",
        "\"delivery.lost\" = \"== 0\"\n\"post_ack.p99\" = \"< 60s\"",
    );
    let s = summary(&out);
    assert_eq!(u(&s["operations"]["sign_in"]["count"]), USERS);
    assert_eq!(u(&s["delivery"]["lost"]), 0);
    assert!(u(&s["delivery"]["received"]) > 0);
    assert_eq!(u(&s["reconciliation"]["missing"]), 0);
    let window = &s["slo_window"];
    assert_eq!(window["from_s"].as_f64(), Some(2.0), "{window}");
    let (in_window, in_run) = (
        u(&window["operations"]["post_ack"]["count"]),
        u(&s["operations"]["post_ack"]["count"]),
    );
    assert!(
        in_window > 0 && in_window < in_run,
        "{in_window} of {in_run}"
    );
    let p99 = s["slo"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["text"].as_str() == Some("post_ack.p99 < 60s"))
        })
        .expect("the post_ack SLO")["value"]
        .as_f64();
    assert_eq!(
        p99,
        window["operations"]["post_ack"]["response"]["p99_us"].as_f64()
    );
    for process in ["server", "frontend-1", "frontend-2", "generator"] {
        assert!(
            s["resources"][process].is_object(),
            "resources.{process} in {}",
            s["resources"]
        );
        assert!(out.join(format!("{process}.log")).exists() || process == "generator");
    }
    // Front ends share the client port, so only the chat server is scraped.
    let scraped = super::server_metrics::rows(&out);
    assert_eq!(
        super::server_metrics::processes(&scraped),
        std::collections::BTreeSet::from(["server"])
    );
}

/// `tls = true`: the single box serves `wss://` with a certificate made for the run; every
/// virtual user connects over TLS (its handshake recorded as `tls_handshake`), the
/// server's `/metrics` is scraped over `https://`, and reconciliation reads over TLS.
#[test]
fn an_embedded_single_box_over_tls_runs_clean_and_records_the_handshakes() {
    let (_dir, out) = run_embedded("", "tls = true", "\"delivery.lost\" = \"== 0\"");
    let s = summary(&out);
    let ops = &s["operations"];
    assert_eq!(u(&ops["connect"]["count"]), USERS, "{ops}");
    assert_eq!(u(&ops["tls_handshake"]["count"]), USERS, "{ops}");
    let (tls, connect) = (
        ops["tls_handshake"]["service"]["p50_us"].as_f64(),
        ops["connect"]["service"]["p50_us"].as_f64(),
    );
    assert!(
        tls > Some(0.0) && tls <= connect,
        "TLS {tls:?} within connect {connect:?}"
    );
    assert_eq!(u(&s["delivery"]["lost"]), 0);
    assert!(u(&s["delivery"]["received"]) > 0);
    assert_eq!(u(&s["reconciliation"]["missing"]), 0);
    assert!(u(&s["reconciliation"]["rooms_checked"]) > 0);
    let scraped = super::server_metrics::rows(&out);
    assert_eq!(
        super::server_metrics::processes(&scraped),
        std::collections::BTreeSet::from(["server"])
    );
    assert!(
        super::server_metrics::last(&scraped, "server", "chatcap_posts_acked_total") > 0.0,
        "/metrics read over https"
    );
    let log = std::fs::read_to_string(out.join("server.log")).expect("server log");
    assert!(log.contains("clients wss://"), "{log}");
}

/// A pool from a topology file: the run provisions the population into the pool's
/// database, starts 2 chat servers and 2 front ends, spreads users over the front ends,
/// samples every process, and stops the pool at the end.
#[tokio::test]
async fn a_pool_from_a_topology_file_is_started_driven_and_stopped() {
    if !crate::common::pool::pool_tests_run() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let database = crate::common::fresh_pg_database().await;
    let topology = crate::common::pool::topology_text("run-pool", 2, 0, 2).replace(
        "content = \"throwaway\"",
        &format!("content = \"{database}\""),
    );
    std::fs::write(dir.path().join("pool.toml"), topology).expect("write the topology");
    let scenario = dir.path().join("scenario.toml");
    let text = format!(
        "{}\n[target]\nkind = \"topology\"\npath = \"pool.toml\"\n",
        scenario_text("\"delivery.lost\" = \"== 0\"")
    );
    std::fs::write(&scenario, text).expect("write the scenario");
    let out = dir.path().join("out");
    let (cwd, log, o) = (
        dir.path().to_path_buf(),
        dir.path().join("run"),
        out.clone(),
    );
    let ran =
        tokio::task::spawn_blocking(move || chatcap(run_args(&scenario, &o, &[]), &cwd, &log))
            .await
            .expect("the run");
    assert!(ran.status.success(), "{ran}");
    let s = summary(&out);
    assert_eq!(s["ending"], "completed", "{ran}");
    assert_eq!(u(&s["delivery"]["lost"]), 0);
    assert!(
        u(&s["operations"]["post_ack"]["count"]) > 0,
        "posts were acknowledged"
    );
    let resources = std::fs::read_to_string(out.join("resources.csv")).expect("resources");
    for process in ["generator", "chat1", "chat2", "fe1", "fe2"] {
        assert!(
            resources.contains(&format!(",{process},")),
            "no {process} in resources.csv"
        );
    }
    // Every process of the pool is scraped; the chat servers acknowledged the posts.
    let scraped = super::server_metrics::rows(&out);
    assert_eq!(
        super::server_metrics::processes(&scraped),
        std::collections::BTreeSet::from(["chat1", "chat2", "fe1", "fe2"])
    );
    let acked: f64 = ["chat1", "chat2"]
        .iter()
        .map(|p| super::server_metrics::last(&scraped, p, "chatcap_posts_acked_total"))
        .sum();
    assert!(acked > 0.0, "no posts acknowledged in server_metrics.csv");
    assert!(super::server_metrics::last(&scraped, "fe1", "chatcap_frontend_forwarded_total") > 0.0);
    // The PostgreSQL database's size is recorded with the first chat server.
    let db_bytes = resources
        .lines()
        .filter(|l| l.contains(",chat1,"))
        .filter_map(|l| l.rsplit(',').next()?.parse::<u64>().ok())
        .max();
    assert!(
        db_bytes.is_some_and(|b| b > 0),
        "db_bytes of chat1: {resources}"
    );
    let logs = out.join("pool");
    assert!(logs.join("chat1.log").exists() && logs.join("fe2.log").exists());
    // The pool is gone after the run: nothing answers at its addresses.
    let t =
        chatcap_server::topology::Topology::load(dir.path().join("pool.toml")).expect("topology");
    let addrs = t.front_ends.iter().map(|f| f.addr());
    for addr in addrs.chain(t.chat_servers.iter().map(|c| c.pool_addr())) {
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{addr} still answers"
        );
    }
}
