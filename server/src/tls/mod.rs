//! TLS on every port (docs/TLS.md), with rustls and its aws-lc provider:
//! - the **client port** (`wss://`, `https://`): a certificate and key from files, or a
//!   self-signed certificate made for a single box ([`issue::self_signed_for`]);
//! - the **links**, front end ↔ chat server (5041) and chat server ↔ chat server (8011):
//!   mutual TLS, both sides presenting a certificate signed by the pool's link CA.
//!
//! # Layout
//! - [`pem`]: reading certificates, keys and CA files, naming the file in every error.
//! - [`issue`]: making certificates (a CA, certificates it signs, a self-signed one).
//! - [`stream`]: [`Stream`], a TCP connection with or without TLS.
//! - [`accept`]: the server side: [`Acceptor`] (handshake with a time limit, one clear log
//!   line per refused peer) and [`HttpListener`] (the client port for axum).
//! - [`connect`]: the client side: [`Connector`].
//! - [`trust`]: [`LinkTrust`], a process's link secret and link TLS together.
//!
//! This file builds the rustls configurations from [`TlsConfig`].

pub mod accept;
pub mod connect;
pub mod issue;
pub mod pem;
pub mod stream;
pub mod trust;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

pub use accept::{Acceptor, HttpListener};
pub use connect::Connector;
pub use stream::Stream;
pub use trust::LinkTrust;

use crate::config::TlsConfig;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// rustls refused the certificates or key (a key that does not match the
    /// certificate, an unsupported algorithm…).
    #[error("{what}: {source}")]
    Rustls {
        /// Which configuration.
        what: &'static str,
        /// Why.
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built from the link CA.
    #[error("{what}: {source}")]
    Verifier {
        /// Which configuration.
        what: &'static str,
        /// Why.
        source: rustls::server::VerifierBuilderError,
    },
    /// A CA file holds no usable certificate authority.
    #[error("{path}: no certificate authority rustls accepts: {message}")]
    Roots {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The settings are incomplete (a certificate without its key…).
    #[error("{0}")]
    Settings(String),
    /// A certificate could not be made.
    #[error("cannot make a certificate: {0}")]
    Issue(#[from] rcgen::Error),
}

impl TlsError {
    fn file(path: &Path, message: impl ToString) -> TlsError {
        TlsError::File {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }

    fn rustls(what: &'static str) -> impl FnOnce(rustls::Error) -> TlsError {
        move |source| TlsError::Rustls { what, source }
    }
}

/// The one crypto provider every configuration uses (no process-wide default needed).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A certificate chain with its key.
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Read `cert` and `key` (PEM files).
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        Ok(Identity {
            chain: pem::certs(cert)?,
            key: pem::key(key)?,
        })
    }
}

/// A server configuration presenting `identity`, asking for a client certificate signed
/// by `client_roots` when given. ALPN offers HTTP/1.1 (the client port speaks nothing
/// else; links ignore it).
fn server_config(
    identity: Identity,
    client_roots: Option<RootCertStore>,
    what: &'static str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::rustls(what))?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.into(),
                provider(),
            )
            .build()
            .map_err(|e| TlsError::Rustls {
                what,
                source: rustls::Error::General(e.to_string()),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(identity.chain, identity.key)
        .map_err(TlsError::rustls(what))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration trusting `roots`, presenting `identity` when given.
pub fn client_config(
    roots: RootCertStore,
    identity: Option<Identity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let what = "client TLS configuration";
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::rustls(what))?
        .with_root_certificates(roots);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain, id.key)
            .map_err(TlsError::rustls(what))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The client port's acceptor: `None` when it is plaintext. With `self_signed`, the
/// certificate is made (or reused) under `<data_dir>/tls/`, for `names`.
pub fn client_port(
    cfg: &TlsConfig,
    data_dir: &Path,
    names: &[String],
) -> Result<Option<Acceptor>, TlsError> {
    cfg.validate().map_err(TlsError::Settings)?;
    let identity = match (&cfg.cert, &cfg.key) {
        (Some(cert), Some(key)) => Identity::load(cert, key)?,
        _ if cfg.self_signed => {
            let files = issue::self_signed_for(&data_dir.join("tls"), names)?;
            Identity::load(&files.cert, &files.key)?
        }
        _ => return Ok(None),
    };
    let config = server_config(identity, None, "client port TLS configuration")?;
    Ok(Some(Acceptor::new(config, accept::Port::Client)))
}

/// The links' TLS: an acceptor that requires a client certificate signed by the link CA,
/// and a connector that presents this process's certificate. `None` when links are
/// plaintext.
pub struct LinkTls {
    /// For the session-link listener (5041).
    pub acceptor: Acceptor,
    /// For the pool port (8011): the same configuration, its own log lines.
    pub pool_acceptor: Acceptor,
    /// For dialling chat servers and pool peers.
    pub connector: Connector,
}

/// Build the links' TLS from `cfg` (`None`: plaintext links).
pub fn links(cfg: &TlsConfig) -> Result<Option<LinkTls>, TlsError> {
    cfg.validate().map_err(TlsError::Settings)?;
    let (Some(ca), Some(cert), Some(key)) = (&cfg.link_ca, &cfg.link_cert, &cfg.link_key) else {
        return Ok(None);
    };
    let identity = Identity::load(cert, key)?;
    let roots = pem::roots(ca)?;
    let dialling = Identity {
        chain: identity.chain.clone(),
        key: identity.key.clone_key(),
    };
    let server = server_config(identity, Some(roots.clone()), "link TLS configuration")?;
    let client = client_config(roots, Some(dialling))?;
    Ok(Some(LinkTls {
        pool_acceptor: Acceptor::new(server.clone(), accept::Port::Pool),
        acceptor: Acceptor::new(server, accept::Port::SessionLink),
        connector: Connector::new(client),
    }))
}

/// Whether `cert` is valid for the DNS name `name` (one of its subject alternative names).
/// The pool port binds the name a peer claims in `Hello` to its certificate this way.
pub fn certificate_names(cert: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(server_name) = rustls::pki_types::ServerName::try_from(name) else {
        return false;
    };
    webpki::EndEntityCert::try_from(cert)
        .is_ok_and(|c| c.verify_is_valid_for_subject_name(&server_name).is_ok())
}

/// A connector that trusts the certificate authorities in `ca` (PEM) and presents no
/// certificate: what a chat client or the load generator uses toward a `wss://` port.
pub fn trusting(ca: &Path) -> Result<Connector, TlsError> {
    Ok(Connector::new(client_config(pem::roots(ca)?, None)?))
}

#[cfg(test)]
mod tests;
