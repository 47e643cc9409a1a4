//! The XMPP client against real ejabberd and Prosody servers (`scripts/xmpp-throwaway`,
//! started by the test command): users and rooms provisioned through each server's own
//! administration interface; sign-in with SCRAM-SHA-1 and PLAIN, stream management,
//! joining a room with its occupants and history, posting and receiving, the room archive
//! page by page; and the clear errors of a wrong password and an unknown room.

use std::net::SocketAddr;
use std::time::Duration;

use chatcap::xmpp::admin::{Ejabberd, Prosody, Server};
use chatcap::xmpp::{Account, Mechanism, XmppClient, XmppError};

/// The XMPP servers the test command started: (name, client port, its administration).
/// A server it did not start is skipped, unless `CHATCAP_REQUIRE_XMPP` is set.
fn servers() -> Vec<(&'static str, SocketAddr, Server)> {
    let addr = |key: &str| std::env::var(key).ok().and_then(|v| v.parse().ok());
    let mut out = Vec::new();
    match (
        addr("CHATCAP_TEST_EJABBERD"),
        addr("CHATCAP_TEST_EJABBERD_API"),
    ) {
        (Some(c2s), Some(api)) => out.push((
            "ejabberd",
            c2s,
            Server::Ejabberd(Ejabberd::new(api, "chatcap.test")),
        )),
        _ => missing("ejabberd (CHATCAP_TEST_EJABBERD, CHATCAP_TEST_EJABBERD_API)"),
    }
    let config = std::env::var("CHATCAP_TEST_PROSODY_CONFIG").ok();
    match (addr("CHATCAP_TEST_PROSODY"), config) {
        (Some(c2s), Some(config)) => out.push((
            "prosody",
            c2s,
            Server::Prosody(Prosody::new(config.into(), "chatcap.test")),
        )),
        _ => missing("Prosody (CHATCAP_TEST_PROSODY, CHATCAP_TEST_PROSODY_CONFIG)"),
    }
    out
}

fn missing(what: &str) {
    assert!(
        std::env::var("CHATCAP_REQUIRE_XMPP").is_err(),
        "CHATCAP_REQUIRE_XMPP is set but {what} is not"
    );
    eprintln!("skipped: no {what} (scripts/xmpp-throwaway)");
}

/// A name no other test run used on this server.
fn unique(prefix: &str) -> String {
    format!("{prefix}{:08x}", rand::random::<u32>())
}

fn account(c2s: SocketAddr, user: &str, password: &str, mechanism: Mechanism) -> Account {
    Account {
        addr: c2s,
        domain: "chatcap.test".into(),
        user: user.into(),
        password: password.into(),
        mechanism,
    }
}

#[tokio::test]
async fn sign_in_join_post_receive_and_read_the_archive() {
    for (name, c2s, admin) in servers() {
        eprintln!("{name}");
        chat_and_archive(c2s, &admin, name).await;
    }
}

async fn chat_and_archive(c2s: SocketAddr, admin: &Server, server: &str) {
    let (alice, bob, name) = (unique("alice"), unique("bob"), unique("room"));
    admin
        .register(&alice, "alice-pw")
        .await
        .expect("register alice");
    admin.register(&bob, "bob-pw").await.expect("register bob");
    admin
        .create_room(&name, true)
        .await
        .expect("create the room");
    for user in [&alice, &bob] {
        admin
            .set_affiliation(&name, user, "member")
            .await
            .expect("membership");
    }
    let room = admin.room_jid(&name);

    let mut a = XmppClient::connect(&account(c2s, &alice, "alice-pw", Mechanism::ScramSha1))
        .await
        .expect("alice signs in with SCRAM-SHA-1");
    assert!(
        a.jid.starts_with(&format!("{alice}@chatcap.test/")),
        "{}",
        a.jid
    );
    assert!(a.sm, "{server} offers stream management");
    let joined = a.join(&room, "alice", 5).await.expect("alice joins");
    assert_eq!(joined.occupants, Vec::<String>::new());
    assert!(joined.history.is_empty());
    for text in ["first <post> & more", "second"] {
        let id = a.say(&room, text).await.expect("say");
        let echo = a.next_message().await.expect("the room echoes the post");
        assert_eq!(
            (echo.body.as_str(), echo.id.as_deref()),
            (text, Some(id.as_str()))
        );
        assert!(echo.stanza_id.is_some(), "the room archives: {echo:?}");
    }
    let (handled, sent) = a.ack().await.expect("stream management ack");
    assert_eq!(handled, sent, "the server handled every stanza alice sent");

    let mut b = XmppClient::connect(&account(c2s, &bob, "bob-pw", Mechanism::Plain))
        .await
        .expect("bob signs in with PLAIN");
    let joined = b.join(&room, "bob", 5).await.expect("bob joins");
    assert_eq!(joined.occupants, vec!["alice".to_string()]);
    let history: Vec<&str> = joined.history.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(history, ["first <post> & more", "second"]);
    assert!(joined
        .history
        .iter()
        .all(|m| m.delayed.is_some() && m.nick == "alice"));

    let id = a.say(&room, "live").await.expect("say");
    let got = b.next_message().await.expect("bob receives");
    assert_eq!(
        (got.body.as_str(), got.nick.as_str(), got.id.as_deref()),
        ("live", "alice", Some(id.as_str()))
    );

    // The archive, newest page first, then the page before it.
    let all = b.archive(&room, 10, None).await.expect("archive");
    let bodies: Vec<&str> = all.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["first <post> & more", "second", "live"]);
    assert!(all.complete);
    let newest = b.archive(&room, 1, None).await.expect("one page");
    assert_eq!(newest.messages.len(), 1);
    assert_eq!(newest.messages[0].body, "live");
    assert!(!newest.complete);
    let before = b
        .archive(&room, 1, newest.first.as_deref())
        .await
        .expect("the page before");
    assert_eq!(before.messages[0].body, "second");
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_room_are_clear_errors() {
    for (name, c2s, admin) in servers() {
        eprintln!("{name}");
        refusals(c2s, &admin).await;
    }
}

async fn refusals(c2s: SocketAddr, admin: &Server) {
    let carol = unique("carol");
    admin.register(&carol, "carol-pw").await.expect("register");
    for mechanism in [Mechanism::ScramSha1, Mechanism::Plain] {
        let wrong = XmppClient::connect(&account(c2s, &carol, "wrong", mechanism)).await;
        match wrong {
            Err(e @ XmppError::SignIn(_)) => {
                assert_eq!(e.to_string(), "sign-in refused: not-authorized")
            }
            Err(e) => panic!("{mechanism:?}: expected a refused sign-in, got {e}"),
            Ok(_) => panic!("{mechanism:?}: a wrong password signed in"),
        }
    }
    let mut c = XmppClient::connect(&account(c2s, &carol, "carol-pw", Mechanism::ScramSha1))
        .await
        .expect("sign in");
    c.timeout = Duration::from_secs(10);
    // Only the administrator may create rooms on this server: joining one that does not
    // exist is refused, and says why.
    let room = admin.room_jid(&unique("nowhere"));
    match c.join(&room, "carol", 5).await {
        Err(XmppError::Refused { condition, text }) => {
            assert!(
                !condition.is_empty() && condition != "undefined-condition",
                "{condition}"
            );
            eprintln!("unknown room refused: {condition} ({text})");
        }
        other => panic!("joining an unknown room: {other:?}"),
    }
    // Registering the same user twice is refused by the administration, with its message.
    let again = admin.register(&carol, "x").await;
    assert!(
        matches!(&again, Err(XmppError::Admin(m))
            if m.starts_with("register: ") && m.contains("already")),
        "{again:?}"
    );
    eprintln!("registered twice: {again:?}");
    c.close().await;
}
