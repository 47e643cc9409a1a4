//! Opening a pool connection (port 8011), both sides: `Hello` with the dialer's name,
//! `Challenge`/`Proof` when the pool has a link secret, then `Welcome` with the answering
//! server's name. The same exchange for chat servers and for `chatcap pool` (name `admin`).
//! With link TLS it all runs inside a mutual TLS connection: the dialler checks the
//! server's certificate against the link CA and the address dialled, the server the
//! dialler's against the link CA.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::auth::{link_proof, link_proof_ok};
use crate::protocol::pool::{PoolFrame, VERSION};
use crate::protocol::session::codec;
use crate::tls::connect::upgrade;
use crate::tls::{LinkTrust, Stream};

/// A pool connection, framed.
pub type Conn = Framed<Stream, tokio_util::codec::LengthDelimitedCodec>;

/// How long each side of the handshake may take.
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// Why a pool connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The socket failed or closed.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The other side did not answer in time.
    #[error("no answer within {} s", HANDSHAKE.as_secs())]
    Timeout,
    /// The other side broke the protocol or speaks another version.
    #[error("{0}")]
    Protocol(String),
    /// The TLS handshake failed (the server's certificate, or ours, was refused).
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    /// The link secret was missing or wrong.
    #[error("{0}")]
    Refused(String),
}

/// Read one frame, within [`HANDSHAKE`].
pub async fn next(conn: &mut Conn) -> Result<PoolFrame, HandshakeError> {
    match tokio::time::timeout(HANDSHAKE, conn.next()).await {
        Err(_) => Err(HandshakeError::Timeout),
        Ok(None) => Err(HandshakeError::Protocol("connection closed".into())),
        Ok(Some(Err(e))) => Err(HandshakeError::Io(e)),
        Ok(Some(Ok(body))) => PoolFrame::decode(BytesMut::freeze(body))
            .map_err(|e| HandshakeError::Protocol(e.to_string())),
    }
}

/// Send one frame.
pub async fn send(conn: &mut Conn, frame: &PoolFrame) -> Result<(), HandshakeError> {
    Ok(conn.send(frame.to_bytes()).await?)
}

/// Dial `addr` as `name`; returns the connection and the answering server's name.
pub async fn dial(
    addr: std::net::SocketAddr,
    name: &str,
    trust: &LinkTrust,
) -> Result<(Conn, String), HandshakeError> {
    let secret = trust.secret();
    let tcp = tokio::time::timeout(HANDSHAKE, TcpStream::connect(addr))
        .await
        .map_err(|_| HandshakeError::Timeout)??;
    let _ = tcp.set_nodelay(true);
    let stream = tokio::time::timeout(HANDSHAKE, upgrade(trust.connector(), tcp))
        .await
        .map_err(|_| HandshakeError::Timeout)?
        .map_err(HandshakeError::Tls)?;
    let mut conn = Framed::new(stream, codec());
    let hello = PoolFrame::Hello {
        version: VERSION,
        name: name.to_string(),
    };
    send(&mut conn, &hello).await?;
    // With TLS 1.3 a server that refuses our certificate says so only now, at the first
    // read: that is a TLS refusal, not a broken connection.
    let tls = trust.connector().is_some();
    let mut first = true;
    loop {
        let frame = match next(&mut conn).await {
            Err(HandshakeError::Io(e)) if tls && first => return Err(HandshakeError::Tls(e)),
            other => other?,
        };
        first = false;
        match frame {
            PoolFrame::Welcome { name } => return Ok((conn, name)),
            PoolFrame::Challenge { nonce } => {
                let Some(secret) = secret else {
                    return Err(HandshakeError::Refused(
                        "the server asks for the pool's link secret: set link_secret".into(),
                    ));
                };
                let mac = Bytes::from(link_proof(secret, &nonce, name));
                send(&mut conn, &PoolFrame::Proof { mac }).await?;
            }
            other => {
                return Err(HandshakeError::Protocol(format!(
                    "expected Welcome, got {other:?}"
                )))
            }
        }
    }
}

/// Answer a dialer as `me`; returns the dialer's name once it is welcome. With link TLS
/// the name it claims (a server's, or `admin`) must be one its certificate is valid for:
/// a certificate from the pool's CA does not let a front end, or one server, pass for
/// another.
pub async fn accept(
    conn: &mut Conn,
    me: &str,
    trust: &LinkTrust,
) -> Result<String, HandshakeError> {
    let secret = trust.secret();
    let name = match next(conn).await? {
        PoolFrame::Hello {
            version: VERSION,
            name,
        } => name,
        other => {
            return Err(HandshakeError::Protocol(format!(
                "first frame must be Hello v{VERSION}, got {other:?}"
            )))
        }
    };
    if trust.pool_acceptor().is_some() {
        let named = conn
            .get_ref()
            .peer_certificate()
            .is_some_and(|cert| crate::tls::certificate_names(cert, &name));
        if !named {
            return Err(HandshakeError::Refused(format!(
                "the TLS certificate of the peer calling itself {name:?} is not valid for that name"
            )));
        }
    }
    if let Some(secret) = secret {
        let nonce: [u8; 32] = rand::random();
        let challenge = PoolFrame::Challenge {
            nonce: Bytes::copy_from_slice(&nonce),
        };
        send(conn, &challenge).await?;
        match next(conn).await? {
            PoolFrame::Proof { mac } if link_proof_ok(secret, &nonce, &name, &mac) => {}
            _ => {
                return Err(HandshakeError::Refused(format!(
                    "{name}: no valid proof of the link secret"
                )))
            }
        }
    }
    send(
        conn,
        &PoolFrame::Welcome {
            name: me.to_string(),
        },
    )
    .await?;
    Ok(name)
}
