//! How the ends of a link (front end ↔ chat server on 5041, chat server ↔ chat server and
//! `chatcap pool` on 8011) know each other: the link secret (`Challenge`/`Proof` inside
//! the protocol) and mutual TLS under it, each optional and both at once allowed.

use std::sync::Arc;

use super::{links, Acceptor, Connector, LinkTls, TlsError};
use crate::config::{ServeConfig, TlsConfig};

/// A process's link secret and link TLS.
#[derive(Clone, Default)]
pub struct LinkTrust {
    secret: Option<Arc<[u8]>>,
    tls: Option<Arc<LinkTls>>,
}

impl LinkTrust {
    /// From a process's settings (`link_secret`, `tls.link_*`).
    pub fn from_config(cfg: &ServeConfig) -> Result<LinkTrust, TlsError> {
        LinkTrust::new(cfg.link_secret.as_deref(), &cfg.tls)
    }

    /// With `secret` (when given) and the link TLS of `tls` (when set).
    pub fn new(secret: Option<&str>, tls: &TlsConfig) -> Result<LinkTrust, TlsError> {
        Ok(LinkTrust {
            secret: secret.map(|s| Arc::<[u8]>::from(s.as_bytes())),
            tls: links(tls)?.map(Arc::new),
        })
    }

    /// The link secret, when there is one.
    pub fn secret(&self) -> Option<&[u8]> {
        self.secret.as_deref()
    }

    /// Links are TLS: the server side of the session link (5041).
    pub fn acceptor(&self) -> Option<&Acceptor> {
        self.tls.as_ref().map(|t| &t.acceptor)
    }

    /// Links are TLS: the server side of the pool port (8011).
    pub fn pool_acceptor(&self) -> Option<&Acceptor> {
        self.tls.as_ref().map(|t| &t.pool_acceptor)
    }

    /// Links are TLS: the dialling side.
    pub fn connector(&self) -> Option<&Connector> {
        self.tls.as_ref().map(|t| &t.connector)
    }
}
