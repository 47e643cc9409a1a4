//! Administration over the pool port (8011), both sides: what `chatcap pool` asks a chat
//! server (`status`, `drain`, `undrain`, `set-active`) and how the server answers.
//! Answers are JSON: a status object, or `{"error": "…"}` for a request refused.

use std::net::SocketAddr;

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::handshake::{self, Conn, HandshakeError};
use super::Pool;
use crate::protocol::pool::{AdminRequest, PoolFrame, ADMIN};
use crate::tls::LinkTrust;

/// Why an administration request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The server could not be reached or refused the connection.
    #[error("{addr}: {source}")]
    Connect {
        /// The server's pool address.
        addr: SocketAddr,
        /// Why.
        source: HandshakeError,
    },
    /// The server refused the request.
    #[error("{server}: {message}")]
    Refused {
        /// The answering server.
        server: String,
        /// Its reason.
        message: String,
    },
}

/// Ask the chat server at `addr` (its pool port) one thing; its JSON answer.
pub async fn request(
    addr: SocketAddr,
    trust: &LinkTrust,
    req: &AdminRequest,
) -> Result<Value, AdminError> {
    let connect = |source| AdminError::Connect { addr, source };
    let (mut conn, server) = handshake::dial(addr, ADMIN, trust).await.map_err(connect)?;
    handshake::send(&mut conn, &PoolFrame::Admin(req.clone()))
        .await
        .map_err(connect)?;
    match handshake::next(&mut conn).await.map_err(connect)? {
        PoolFrame::AdminReply(v) => match v.get("error").and_then(Value::as_str) {
            Some(message) => Err(AdminError::Refused {
                server,
                message: message.to_string(),
            }),
            None => Ok(v),
        },
        other => Err(connect(HandshakeError::Protocol(format!(
            "expected an answer, got {other:?}"
        )))),
    }
}

/// Answer an administration connection's requests until it closes.
pub(super) async fn serve(pool: &Pool, mut conn: Conn) {
    while let Some(Ok(body)) = conn.next().await {
        let answer = match PoolFrame::decode(body.freeze()) {
            Ok(PoolFrame::Admin(req)) => answer(pool, req).await,
            Ok(other) => {
                json!({"error": format!("expected an administration request, got {other:?}")})
            }
            Err(e) => json!({"error": e.to_string()}),
        };
        if handshake::send(&mut conn, &PoolFrame::AdminReply(answer))
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn answer(pool: &Pool, req: AdminRequest) -> Value {
    let refused = |e: &dyn std::fmt::Display| json!({"error": e.to_string()});
    match req {
        AdminRequest::Status => {}
        AdminRequest::Drain | AdminRequest::Undrain => {
            let drained = req == AdminRequest::Drain;
            if let Err(e) = pool.set_drained(drained).await {
                return refused(&e);
            }
        }
        AdminRequest::SetActive { servers } => {
            if let Err(e) = check_active(pool, &servers) {
                return refused(&e);
            }
            let grace = i64::try_from(super::lease::GRACE.as_micros()).unwrap_or(i64::MAX);
            if let Err(e) = pool.leases.pool_set_active(&servers, grace).await {
                return refused(&e);
            }
        }
    }
    status(pool).await
}

/// A set-active list must name 1–4 distinct servers of this pool.
fn check_active(pool: &Pool, servers: &[String]) -> Result<(), String> {
    if servers.is_empty() || servers.len() > crate::topology::MAX_ACTIVE {
        return Err(format!(
            "set-active takes 1 to {} servers, not {}",
            crate::topology::MAX_ACTIVE,
            servers.len()
        ));
    }
    for (i, s) in servers.iter().enumerate() {
        if !pool.members().any(|m| m == s) {
            let known: Vec<&str> = pool.members().collect();
            return Err(format!(
                "{s:?} is not a chat server of this pool ({})",
                known.join(", ")
            ));
        }
        if servers[..i].contains(s) {
            return Err(format!("{s:?} is named twice"));
        }
    }
    Ok(())
}

/// This server's state, and the pool's places as the database has them.
async fn status(pool: &Pool) -> Value {
    let lease = pool.lease();
    let (accepting, evacuating) = pool.hub.serving();
    let slots = match pool.leases.pool_slots().await {
        Ok(slots) => json!(slots),
        Err(e) => json!({"error": e.to_string()}),
    };
    json!({
        "server": pool.name(),
        "pool": pool.settings.pool,
        "slot": lease.slot,
        "active": lease.active(),
        "drained": lease.drained,
        "cut_off": lease.cut_off,
        "accepting": accepting,
        "evacuating": evacuating,
        "lease_age_ms": lease.renewed.map(|r| r.elapsed().as_millis() as u64),
        "sessions": pool.hub.session_count(),
        "front_end_links": pool.hub.link_count(),
        "rooms_live": pool.hub.rooms_live(),
        "peers": pool.connected(),
        "slots": slots,
    })
}
