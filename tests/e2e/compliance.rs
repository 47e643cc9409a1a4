//! The compliance service: a scripted session records exactly the expected events (also in
//! a room whose category keeps no history), the XML adapter writes them in the original
//! layout, a second export writes nothing, racing exporters never export an event twice, an
//! abandoned export is finished under its own name, the one-shot CLI exports what a stopped
//! server recorded (including the PARTs of its shutdown), and compliance off records nothing.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use chatcap::cli::Cli;
use chatcap_server::compliance::{self, export_once, EventKind, ExportOptions};
use chatcap_server::protocol::{CategorySpec, Op, Privacy, RoomKind};
use chatcap_server::store::compliance::{ComplianceEvent, NewComplianceEvent};
use chatcap_server::store::{Schema, Store};
use clap::Parser;

use crate::common::{
    backends, category, join, ok, ok_as, open_category, post, post_burst, room, Cast, TestServer,
};

/// Compliance on, with exports every `secs`.
async fn compliant(backend: crate::common::Backend, secs: u64) -> Cast {
    let srv = TestServer::start_with(backend, |cfg| {
        cfg.compliance.enabled = true;
        cfg.compliance.run_interval_secs = secs;
    })
    .await;
    Cast::with(srv).await
}

async fn compliance_store(srv: &TestServer) -> Store {
    Store::open(&srv.config.compliance_url(), Schema::Compliance)
        .await
        .expect("compliance database")
}

/// Poll the compliance database until `done` holds (deadline 20 s).
async fn wait_events(
    store: &Store,
    what: &str,
    done: impl Fn(&[ComplianceEvent]) -> bool,
) -> Vec<ComplianceEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = store.compliance_events().await.expect("read events");
        if done(&events) {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; events: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

mod xml;
use xml::*;

type Expected = (EventKind, i64, i64, &'static str, Option<i64>);

fn shape(events: &[ComplianceEvent]) -> Vec<(EventKind, i64, i64, String, Option<i64>)> {
    events
        .iter()
        .map(|e| {
            let kind = EventKind::from_code(e.event.kind).expect("known kind");
            (
                kind,
                e.event.room,
                e.event.user,
                e.event.content.clone(),
                e.event.seq,
            )
        })
        .collect()
}

fn owned(expected: &[Expected]) -> Vec<(EventKind, i64, i64, String, Option<i64>)> {
    expected
        .iter()
        .map(|(k, r, u, c, s)| (*k, *r, *u, c.to_string(), *s))
        .collect()
}

#[tokio::test]
async fn scripted_session_is_recorded_and_exported_exactly_once() {
    use EventKind::*;
    for backend in backends() {
        let mut cast = compliant(backend, 1).await;
        let (alice, bob) = (cast.alice, cast.bob);
        let lobby = cast.room("lobby", Privacy::Open, &[]).await;
        let spec = CategorySpec {
            history: false,
            ..open_category("off the record")
        };
        let quiet_cat = category(&mut cast.a, spec).await;
        let quiet = room(
            &mut cast.a,
            quiet_cat,
            "quiet",
            Privacy::Open,
            RoomKind::Normal,
        )
        .await;
        let mut a = cast.srv.client(alice).await;
        let mut b = cast.srv.client(bob).await;
        let text = "<b>fish & \"chips\"</b>\n\t'n' more";

        join(&mut a, lobby).await;
        post(&mut a, lobby, text, "a1").await;
        let joined = join(&mut b, lobby).await;
        assert_eq!(joined.messages.len(), 1, "bob's join shows alice's post");
        post(&mut b, lobby, "hi", "b1").await;
        let seen: chatcap_server::protocol::reply::Messages = ok_as(
            &mut b,
            Op::History {
                room: lobby,
                after_seq: None,
                limit: None,
            },
        )
        .await;
        assert_eq!(seen.messages.len(), 2);
        ok(&mut b, Op::Part { room: lobby }).await;
        join(&mut a, quiet).await;
        post(&mut a, quiet, "not kept", "a2").await;
        // Nothing is stored in a room without history, so nothing is viewed: no BACKCHAT.
        let kept: chatcap_server::protocol::reply::Messages = ok_as(
            &mut a,
            Op::History {
                room: quiet,
                after_seq: None,
                limit: None,
            },
        )
        .await;
        assert!(kept.messages.is_empty(), "the quiet room keeps no history");
        a.close().await; // ends the session: PART of both rooms

        let expected: Vec<Expected> = vec![
            (Join, lobby, alice, "", None),
            (Chat, lobby, alice, text, Some(1)),
            (Join, lobby, bob, "", None),
            (Backchat, lobby, bob, "1-1", None),
            (Chat, lobby, bob, "hi", Some(2)),
            (Backchat, lobby, bob, "1-2", None),
            (Part, lobby, bob, "", None),
            (Join, quiet, alice, "", None),
            (Chat, quiet, alice, "not kept", Some(1)),
            (Part, lobby, alice, "", None),
            (Part, quiet, alice, "", None),
        ];
        let store = compliance_store(&cast.srv).await;
        // The exporter runs every second on its own: wait until every event is in a file.
        let events = wait_events(&store, "every event exported", |ev| {
            ev.len() >= expected.len() && ev.iter().all(|e| e.exported)
        })
        .await;
        assert_eq!(shape(&events), owned(&expected), "{backend:?}");

        // The files hold each event once, per room in recording order, as the original
        // adapter lays them out.
        let out_dir = cast.srv.dir.path().join("compliance");
        let files = xml_files(&out_dir);
        assert!(!files.is_empty(), "an export file was written");
        let mut by_room: HashMap<String, Vec<XmlMessage>> = HashMap::new();
        let mut names: HashMap<String, String> = HashMap::new();
        for f in &files {
            let convs = parse(f);
            assert!(!convs.is_empty(), "no empty file: {}", f.display());
            for c in convs {
                check_frame(&c);
                names.insert(c.uri.clone(), c.name.clone());
                by_room.entry(c.uri).or_default().extend(c.messages);
            }
        }
        let uri = |r: i64| format!("ma-chan://chatcap/{r}");
        assert_eq!(names[&uri(lobby)], "lobby");
        assert_eq!(names[&uri(quiet)], "quiet");
        assert_eq!(by_room.len(), 2);
        let user_name = |u: i64| if u == alice { "alice@t" } else { "bob@t" };
        for r in [lobby, quiet] {
            let want: Vec<XmlMessage> = events
                .iter()
                .filter(|e| e.event.room == r)
                .map(|e| expected_xml(e, user_name(e.event.user)))
                .collect();
            assert_eq!(by_room[&uri(r)], want, "room {r} on {backend:?}");
        }

        // A second run finds nothing: no file, no event claimed again.
        let hub = cast.srv.running.hub().expect("chat server").clone();
        let opts = ExportOptions::new(out_dir.clone());
        let again = export_once(&store, &hub.store, Some(&hub), &opts)
            .await
            .expect("second export");
        assert_eq!(again.events, 0);
        assert!(again.files.is_empty());
        assert_eq!(xml_files(&out_dir), files, "no new file");
        assert_eq!(store.compliance_events().await.expect("events"), events);

        b.close().await;
        store.close().await;
        cast.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_exporters_never_export_an_event_twice() {
    const POSTS: usize = 150;
    for backend in backends() {
        let mut cast = compliant(backend, 3600).await;
        let lobby = cast.room("lobby", Privacy::Open, &[]).await;
        let mut a = cast.srv.client(cast.alice).await;
        join(&mut a, lobby).await;
        let ids: Vec<String> = (0..POSTS).map(|i| format!("m{i}")).collect();
        let acks = post_burst(&mut a, lobby, &ids).await;
        assert!(acks.iter().all(|r| r.is_ok()), "every post acknowledged");
        let hub = cast.srv.running.hub().expect("chat server").clone();
        compliance::flush(&hub).await;
        let total = POSTS + 1;
        let store = compliance_store(&cast.srv).await;
        assert_eq!(
            store.compliance_events().await.expect("events").len(),
            total
        );

        // Four exporters, each with its own connections, small files, one folder.
        let out = tempfile::tempdir().expect("out dir");
        let url = cast.srv.config.compliance_url();
        let runs = (0..4).map(|_| {
            let (url, out, content) = (url.clone(), out.path().to_path_buf(), hub.store.clone());
            tokio::spawn(async move {
                let mine = Store::open(&url, Schema::Compliance).await.expect("open");
                let mut opts = ExportOptions::new(out);
                opts.max_per_file = 9;
                let r = export_once(&mine, &content, None, &opts)
                    .await
                    .expect("export");
                mine.close().await;
                r
            })
        });
        let reports: Vec<_> = futures_util::future::join_all(runs)
            .await
            .into_iter()
            .map(|r| r.expect("exporter task"))
            .collect();
        let exported: u64 = reports.iter().map(|r| r.events).sum();
        assert_eq!(
            exported, total as u64,
            "{backend:?}: every event exported once"
        );
        let files = xml_files(out.path());
        let reported: BTreeSet<PathBuf> = reports.iter().flat_map(|r| r.files.clone()).collect();
        assert_eq!(files.iter().cloned().collect::<BTreeSet<_>>(), reported);

        let mut seqs: Vec<i64> = Vec::new();
        let mut messages = 0;
        for f in &files {
            for c in parse(f) {
                check_frame(&c);
                messages += c.messages.len();
                seqs.extend(c.messages.iter().filter(|m| m.kind == "CHAT").map(|m| m.id));
            }
        }
        assert_eq!(messages, total, "no event in two files");
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=POSTS as i64).collect::<Vec<_>>());
        let events = store.compliance_events().await.expect("events");
        assert!(events.iter().all(|e| e.exported));
        let batches: BTreeSet<&str> = events
            .iter()
            .filter_map(|e| e.exported_by.as_deref())
            .collect();
        assert_eq!(batches.len(), files.len(), "one file per claimed batch");

        a.close().await;
        store.close().await;
        cast.stop().await;
    }
}

#[tokio::test]
async fn an_abandoned_export_is_rewritten_under_its_own_name() {
    for backend in backends() {
        let mut cast = compliant(backend, 3600).await;
        let lobby = cast.room("lobby", Privacy::Open, &[]).await;
        let mut a = cast.srv.client(cast.alice).await;
        join(&mut a, lobby).await;
        post(&mut a, lobby, "one", "c1").await;
        post(&mut a, lobby, "two", "c2").await;
        let hub = cast.srv.running.hub().expect("chat server").clone();
        compliance::flush(&hub).await;
        let store = compliance_store(&cast.srv).await;
        // An exporter claimed everything long ago and died before writing its file.
        let token = "20000101T000000000Z-gone-000001";
        let claimed = store
            .claim_compliance(token, "gone", 1000, 1_000_000)
            .await
            .expect("claim");
        assert_eq!(claimed, 3);
        let out = tempfile::tempdir().expect("out dir");
        let opts = ExportOptions::new(out.path().to_path_buf());
        let report = export_once(&store, &hub.store, Some(&hub), &opts)
            .await
            .expect("export");
        assert_eq!(report.events, 3);
        assert_eq!(report.files, vec![out.path().join(format!("{token}.xml"))]);
        let convs = parse(&report.files[0]);
        assert_eq!(convs.len(), 1);
        let kinds: Vec<&str> = convs[0].messages.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["JOIN", "CHAT", "CHAT"]);
        let again = export_once(&store, &hub.store, Some(&hub), &opts)
            .await
            .expect("second export");
        assert_eq!(again.events, 0, "a finished batch is not rewritten");
        a.close().await;
        store.close().await;
        cast.stop().await;
    }
}

#[tokio::test]
async fn one_shot_cli_exports_what_a_stopped_server_recorded() {
    for backend in backends() {
        let mut cast = compliant(backend, 3600).await;
        let lobby = cast.room("lobby", Privacy::Open, &[]).await;
        let mut a = cast.srv.client(cast.alice).await;
        join(&mut a, lobby).await;
        post(&mut a, lobby, "before the stop", "s1").await;
        // alice is still in the room when the server stops: her PART is recorded while it
        // shuts down, and flushed before the databases close.
        let admin_client = cast.a;
        admin_client.close().await;
        let (config, dir) = cast.srv.stop().await;
        drop(a);

        let mut argv = vec![
            "chatcap".to_string(),
            "compliance".into(),
            "export".into(),
            "--data-dir".into(),
            config.data_dir.display().to_string(),
        ];
        if let Some(db) = &config.database {
            argv.extend(["--database".to_string(), db.clone()]);
        }
        let cli = Cli::try_parse_from(&argv).expect("flags parse");
        chatcap::cli::run(cli).await.expect("export succeeds");
        let out_dir = config.data_dir.join("compliance");
        let files = xml_files(&out_dir);
        assert_eq!(files.len(), 1, "{backend:?}");
        let convs = parse(&files[0]);
        assert_eq!(convs.len(), 1);
        let got: Vec<(String, String, String)> = convs[0]
            .messages
            .iter()
            .map(|m| (m.kind.clone(), m.content.clone(), m.user_name.clone()))
            .collect();
        let alice = |k: &str, c: &str| (k.to_string(), c.to_string(), "alice@t".to_string());
        assert_eq!(
            got,
            [
                alice("JOIN", ""),
                alice("CHAT", "before the stop"),
                alice("PART", "")
            ]
        );
        assert_eq!(
            convs[0].name, "lobby",
            "names come from the content database"
        );

        let cli = Cli::try_parse_from(&argv).expect("flags parse");
        chatcap::cli::run(cli)
            .await
            .expect("second export succeeds");
        assert_eq!(xml_files(&out_dir), files, "nothing new");
        drop(dir);
    }
}

#[tokio::test]
async fn compliance_off_records_nothing() {
    for backend in backends() {
        let mut cast = Cast::new(backend).await;
        let lobby = cast.room("lobby", Privacy::Open, &[]).await;
        let mut a = cast.srv.client(cast.alice).await;
        join(&mut a, lobby).await;
        post(&mut a, lobby, "unrecorded", "u1").await;
        ok(
            &mut a,
            Op::History {
                room: lobby,
                after_seq: None,
                limit: None,
            },
        )
        .await;
        ok(&mut a, Op::Part { room: lobby }).await;
        a.close().await;
        let store = compliance_store(&cast.srv).await;
        let data_dir = cast.srv.dir.path().to_path_buf();
        cast.stop().await;
        assert_eq!(store.compliance_events().await.expect("events"), vec![]);
        assert!(!data_dir.join("compliance").exists(), "no output folder");
        store.close().await;
    }
}

/// The store API round-trips events as recorded (kinds, optional seq, content).
#[tokio::test]
async fn stored_events_round_trip() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let store = compliance_store(&srv).await;
        let events: Vec<NewComplianceEvent> = EventKind::ALL
            .into_iter()
            .enumerate()
            .map(|(i, k)| NewComplianceEvent {
                kind: k.code(),
                room: 7,
                user: 3,
                content: format!("c{i}"),
                seq: (k == EventKind::Chat).then_some(9),
                at_us: 1_000 + i as i64,
            })
            .collect();
        store.insert_compliance(&events).await.expect("insert");
        let back = store.compliance_events().await.expect("read");
        let got: Vec<NewComplianceEvent> = back.iter().map(|e| e.event.clone()).collect();
        assert_eq!(got, events);
        assert!(back.iter().all(|e| e.exported_by.is_none() && !e.exported));
        store.close().await;
        srv.stop().await;
    }
}
