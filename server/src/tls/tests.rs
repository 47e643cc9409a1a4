//! Reading certificate files and building the TLS configurations: what works, and the
//! message of each way it does not.

use super::issue::{self, Authority, Validity};
use super::*;
use crate::config::TlsConfig;

fn issued(dir: &Path) -> (issue::Files, issue::Files) {
    let ca = Authority::new("test CA", Validity::days(1)).expect("CA");
    let ca_files = ca.own().write(dir, "ca").expect("write CA");
    let node = ca
        .issue(&["127.0.0.1".into(), "localhost".into()], Validity::days(1))
        .expect("issue")
        .write(dir, "node")
        .expect("write node");
    (ca_files, node)
}

/// Link TLS with `ca` and `node`'s certificate.
fn link_config(ca: &issue::Files, node: &issue::Files) -> TlsConfig {
    TlsConfig {
        link_ca: Some(ca.cert.clone()),
        link_cert: Some(node.cert.clone()),
        link_key: Some(node.key.clone()),
        ..Default::default()
    }
}

#[test]
fn issued_files_make_every_configuration() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca, node) = issued(dir.path());
    let cfg = TlsConfig {
        cert: Some(node.cert.clone()),
        key: Some(node.key.clone()),
        ..link_config(&ca, &node)
    };
    cfg.validate().expect("a complete set");
    assert!(client_port(&cfg, dir.path(), &[])
        .expect("client port")
        .is_some());
    assert!(links(&cfg).expect("links").is_some());
    assert!(trusting(&ca.cert).is_ok());
    let plain = TlsConfig::default();
    assert!(client_port(&plain, dir.path(), &[])
        .expect("plain")
        .is_none());
    assert!(links(&plain).expect("plain").is_none());
}

#[test]
fn the_self_signed_certificate_is_made_once_and_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = dir.path().join("tls");
    let first = issue::self_signed_for(&tls, &["10.1.2.3".into()]).expect("made");
    let pem = std::fs::read_to_string(&first.cert).expect("cert");
    let again = issue::self_signed_for(&tls, &["10.1.2.3".into()]).expect("kept");
    assert_eq!(first, again);
    assert_eq!(std::fs::read_to_string(&again.cert).expect("cert"), pem);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&first.key)
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the key is the owner's only: {mode:o}");
}

#[test]
fn bad_files_are_named_with_what_is_wrong() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca, node) = issued(dir.path());
    let missing = dir.path().join("missing.pem");
    let err = pem::certs(&missing).expect_err("missing").to_string();
    assert!(err.starts_with(&missing.display().to_string()), "{err}");
    let text = dir.path().join("text.pem");
    std::fs::write(&text, "not a certificate\n").expect("write");
    let err = pem::certs(&text).expect_err("no PEM").to_string();
    assert!(err.contains("no certificate"), "{err}");
    let err = pem::key(&node.cert)
        .expect_err("a certificate is no key")
        .to_string();
    assert!(err.contains("no private key"), "{err}");
    // A key that is not the certificate's.
    let other = Authority::new("other", Validity::days(1)).expect("CA");
    let stray = other.own().write(dir.path(), "stray").expect("write");
    let cfg = TlsConfig {
        cert: Some(node.cert.clone()),
        key: Some(stray.key.clone()),
        ..Default::default()
    };
    let err = client_port(&cfg, dir.path(), &[])
        .err()
        .expect("mismatch")
        .to_string();
    assert!(err.contains("client port TLS configuration"), "{err}");
    // A link CA file with no certificate in it.
    let cfg = TlsConfig {
        link_ca: Some(text.clone()),
        link_cert: Some(node.cert.clone()),
        link_key: Some(node.key.clone()),
        ..Default::default()
    };
    assert!(links(&cfg)
        .err()
        .expect("no CA")
        .to_string()
        .contains("text.pem"));
    assert!(trusting(&ca.key).is_err(), "a key is no CA");
}

#[test]
fn settings_come_in_complete_sets() {
    let p = |s: &str| Some(PathBuf::from(s));
    let half = TlsConfig {
        cert: p("a.pem"),
        ..Default::default()
    };
    assert!(half
        .validate()
        .unwrap_err()
        .contains("tls.cert and tls.key"));
    let both = TlsConfig {
        cert: p("a.pem"),
        key: p("k.pem"),
        self_signed: true,
        ..Default::default()
    };
    assert!(both.validate().unwrap_err().contains("tls.self_signed"));
    let link = TlsConfig {
        link_ca: p("ca.pem"),
        link_cert: p("n.pem"),
        ..Default::default()
    };
    assert!(link.validate().unwrap_err().contains("all three"));
    let mut rel = TlsConfig {
        cert: p("certs/a.pem"),
        key: p("/abs/k.pem"),
        ..Default::default()
    };
    rel.resolve(Path::new("/etc/chatcap"));
    assert_eq!(rel.cert, p("/etc/chatcap/certs/a.pem"));
    assert_eq!(rel.key, p("/abs/k.pem"));
}

#[tokio::test]
async fn a_link_handshake_is_tls_1_3_with_post_quantum_key_exchange_and_needs_a_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca, node) = issued(dir.path());
    let link = links(&link_config(&ca, &node))
        .expect("links")
        .expect("link TLS");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = link.acceptor.clone();
    let server = tokio::spawn(async move {
        let mut accepted = Vec::new();
        for _ in 0..2 {
            let (tcp, peer) = accept::accept_tcp(&listener).await;
            accepted.push(accept::upgrade(Some(&acceptor), tcp, peer).await.is_some());
        }
        accepted
    });
    // With the pool's certificate: TLS 1.3, X25519MLKEM768.
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let stream = connect::upgrade(Some(&link.connector), tcp)
        .await
        .expect("handshake");
    let Stream::Tls(tls) = &stream else {
        panic!("plaintext")
    };
    let (_, conn) = tls.get_ref();
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let group = conn
        .negotiated_key_exchange_group()
        .expect("a group")
        .name();
    assert_eq!(group, rustls::NamedGroup::X25519MLKEM768);
    // Without a certificate: the client side finishes (TLS 1.3), the server refuses.
    let bare = client_config(pem::roots(&ca.cert).expect("roots"), None).expect("config");
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _refused = Connector::new(bare).connect_ip(addr.ip(), tcp).await;
    assert_eq!(server.await.expect("server"), vec![true, false]);
    drop(stream);
}

#[tokio::test]
async fn the_client_port_speaks_tls_1_3_with_post_quantum_key_exchange_to_a_trusting_client() {
    let dir = tempfile::tempdir().expect("dir");
    let cfg = TlsConfig {
        self_signed: true,
        ..Default::default()
    };
    let acceptor = client_port(&cfg, dir.path(), &[])
        .expect("config")
        .expect("TLS");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, peer) = accept::accept_tcp(&listener).await;
        acceptor.accept(tcp, peer).await.is_some()
    });
    let trust = trusting(&dir.path().join("tls/self-signed.pem")).expect("trust");
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let stream = trust.connect("127.0.0.1", tcp).await.expect("handshake");
    let Stream::Tls(tls) = &stream else {
        panic!("plaintext")
    };
    let conn = tls.get_ref().1;
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(
        conn.negotiated_key_exchange_group()
            .expect("a group")
            .name(),
        rustls::NamedGroup::X25519MLKEM768
    );
    assert!(server.await.expect("server"));
}

#[test]
fn a_kept_self_signed_certificate_is_made_anew_for_a_new_name() {
    let dir = tempfile::tempdir().expect("dir");
    let tls = dir.path().join("tls");
    let first = issue::self_signed_for(&tls, &[]).expect("made");
    let pem = std::fs::read_to_string(&first.cert).expect("cert");
    issue::self_signed_for(&tls, &["10.9.8.7".into()]).expect("made anew");
    let renewed = std::fs::read_to_string(&first.cert).expect("cert");
    assert_ne!(renewed, pem, "a certificate without the new name was kept");
    let cert = pem::certs(&first.cert).expect("certs").remove(0);
    assert!(certificate_names(&cert, "localhost"));
    assert!(!certificate_names(&cert, "chat1"));
    // Kept now that it names everything asked.
    issue::self_signed_for(&tls, &["10.9.8.7".into()]).expect("kept");
    assert_eq!(std::fs::read_to_string(&first.cert).expect("cert"), renewed);
    assert!(!tls.join("self-signed.lock").exists());
}
