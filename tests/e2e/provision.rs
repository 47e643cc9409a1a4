//! `chatcap provision` end to end: a Lync-shaped population of 600 users is provisioned
//! (twice: the re-run must change nothing), a server is started on that database, and
//! provisioned users sign in with the tokens from the tokens file and `bjoin` exactly
//! the rooms the manifest gives them.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use chatcap::cli::{Cli, Command};
use chatcap::client::Client;
use chatcap_server::protocol::reply::BjoinResult;
use chatcap_server::protocol::{Op, RoomKind};
use chatcap_server::provision::manifest::read_tokens;
use chatcap_server::provision::{provision, Manifest, PopulationSpec};
use chatcap_server::store::{Schema, Store};
use clap::Parser;

use crate::common::{backends, fresh_pg_database, Backend, TestServer};

const USERS: u32 = 600;

async fn database_for(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite:{}", dir.join("content.db").display()),
        Backend::Postgres => fresh_pg_database().await,
    }
}

/// Provision through the real command line path (`chatcap provision …`).
async fn provision_cli(database: &str, dir: &Path) {
    let cli = Cli::try_parse_from([
        "chatcap",
        "provision",
        "--lync2013",
        &USERS.to_string(),
        "--data-dir",
        &dir.display().to_string(),
        "--database",
        database,
        "--quiet",
    ])
    .expect("flags parse");
    assert!(matches!(cli.command, Command::Provision(_)));
    chatcap::cli::run(cli).await.expect("provision succeeds");
}

#[tokio::test]
async fn provisioned_users_sign_in_and_bjoin_exactly_their_rooms() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = database_for(backend, dir.path()).await;
        provision_cli(&database, dir.path()).await;
        let first = Manifest::load(&dir.path().join("population.json")).expect("manifest");

        // Re-running is idempotent: same ids, no extra rows.
        let store = Store::open(&database, Schema::Content)
            .await
            .expect("store");
        let counts = store.directory_counts().await.expect("counts");
        provision_cli(&database, dir.path()).await;
        let again = Manifest::load(&dir.path().join("population.json")).expect("manifest");
        assert_eq!(first, again, "{backend:?}: re-run changed the population");
        assert_eq!(store.directory_counts().await.expect("counts"), counts);
        let plan = PopulationSpec::lync2013(USERS).validate().expect("plan");
        let memberships = u64::from(USERS) * 16;
        let managers = plan.total_rooms();
        let presenters = 6 * first
            .rooms
            .iter()
            .filter(|r| r.kind == RoomKind::Auditorium)
            .count() as u64;
        assert_eq!(
            counts,
            (
                i64::from(USERS) + 1,
                plan.total_rooms() as i64,
                (memberships + managers + presenters) as i64
            )
        );
        store.close().await;

        let srv = TestServer::start_with(backend, |c| c.database = Some(database.clone())).await;
        let tokens = read_tokens(&dir.path().join("tokens.csv")).expect("tokens");
        assert_eq!(tokens.len(), USERS as usize + 1);
        for row in [&tokens[0], &tokens[299], &tokens[599]] {
            let mut c = Client::connect(&srv.url()).await.expect("connect");
            c.timeout = Duration::from_secs(20);
            c.call(Op::SignIn {
                token: row.token.clone(),
            })
            .await
            .expect("sign-in reply")
            .expect("provisioned token accepted");
            let got: BjoinResult = c
                .call_as(Op::Bjoin {
                    rooms: None,
                    history: Some(1),
                })
                .await
                .expect("bjoin reply")
                .expect("bjoin accepted");
            assert!(got.failed.is_empty(), "{backend:?}: {:?}", got.failed);
            let joined: BTreeSet<i64> = got.joined.iter().map(|j| j.room.id).collect();
            let expected: BTreeSet<i64> = first.rooms_of(row.id).into_iter().collect();
            assert_eq!(joined, expected, "{backend:?}: rooms of {}", row.name);
            assert_eq!(joined.len(), 16, "12 small + 2 medium + 2 large");
            c.close().await;
        }
        srv.stop().await;
    }
}

#[tokio::test]
async fn a_bad_spec_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("bad.toml");
    std::fs::write(
        &spec,
        "[users]\ncount = 10\n[[rooms]]\nclass = \"s\"\nsize = 0\nrooms_per_user = 1\n",
    )
    .expect("write spec");
    let cli = Cli::try_parse_from([
        "chatcap",
        "provision",
        "--spec",
        &spec.display().to_string(),
        "--data-dir",
        &dir.path().display().to_string(),
    ])
    .expect("flags parse");
    let err = chatcap::cli::run(cli).await.expect_err("refused");
    assert!(err.to_string().contains("rooms[0].size"), "{err:#}");
    assert!(err
        .chain()
        .any(|c| c.downcast_ref::<chatcap::usage::UsageError>().is_some()));
    // Nothing was created.
    assert!(!dir.path().join("content.db").exists());
}

#[tokio::test]
async fn the_example_spec_provisions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string("scenarios/populations/small.toml").expect("example");
    let plan = PopulationSpec::from_toml(&text)
        .and_then(|s| s.validate())
        .expect("example spec is valid");
    let url = format!("sqlite:{}", dir.path().join("c.db").display());
    let store = Store::open(&url, Schema::Content).await.expect("store");
    let done = provision(&store, &plan, &|_| {}).await.expect("provision");
    assert_eq!(done.summary.users, 600);
    assert_eq!(done.summary.rooms(), 240 + 8 + 4);
    assert_eq!(done.summary.memberships, 600 * 16);
    store.close().await;
}
