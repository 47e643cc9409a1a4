//! The client side of TLS: [`Connector`] runs the handshake toward a server, checking its
//! certificate against the roots it was made with and the address or name dialled.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Stream;

/// Runs client-side handshakes with one configuration.
#[derive(Clone)]
pub struct Connector {
    inner: TlsConnector,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl Connector {
    /// A connector with `config`.
    pub fn new(config: Arc<ClientConfig>) -> Connector {
        Connector {
            inner: TlsConnector::from(config),
        }
    }

    /// Run the handshake on `tcp` toward `host` (a DNS name or an IP address, which the
    /// server's certificate must name).
    pub async fn connect(&self, host: &str, tcp: TcpStream) -> std::io::Result<Stream> {
        let name = server_name(host)?;
        let tls = self.inner.connect(name, tcp).await?;
        Ok(Stream::Tls(Box::new(tls.into())))
    }

    /// [`Connector::connect`] toward an IP address.
    pub async fn connect_ip(&self, ip: IpAddr, tcp: TcpStream) -> std::io::Result<Stream> {
        let tls = self
            .inner
            .connect(ServerName::IpAddress(ip.into()), tcp)
            .await?;
        Ok(Stream::Tls(Box::new(tls.into())))
    }
}

/// `host` as a TLS server name (brackets around an IPv6 address are dropped).
pub fn server_name(host: &str) -> std::io::Result<ServerName<'static>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{host:?} is not a valid TLS server name: {e}"),
        )
    })
}

/// Connect through `tls` when given, plaintext otherwise, toward the IP address the TCP
/// stream reached.
pub async fn upgrade(tls: Option<&Connector>, tcp: TcpStream) -> std::io::Result<Stream> {
    match tls {
        None => Ok(Stream::Plain(tcp)),
        Some(connector) => {
            let ip = tcp.peer_addr()?.ip();
            connector.connect_ip(ip, tcp).await
        }
    }
}
