//! Opening one virtual user's connection: TCP from a spread source address, TLS on
//! `wss://` targets, the WebSocket handshake with small buffers, sign-in, batch join with
//! history, and the presence subscription. Records connect (and its TLS handshake),
//! sign-in and join (or reconnect) times.

use std::time::Duration;

use chatcap_server::protocol::reply::{BjoinResult, ServerMsg};
use chatcap_server::protocol::{Message, Op, Push, Request};
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::track::Tracker;
use super::{Shared, SimUser};
use crate::metrics::{micros, Metric};
use crate::wss::{OpenError, WsUrl};

/// A virtual user's WebSocket.
pub(super) use crate::wss::Ws;

/// Send one request; false when the socket is gone.
pub(super) async fn send(ws: &mut Ws, id: u64, op: Op) -> bool {
    let text = serde_json::to_string(&Request { id, op }).unwrap_or_default();
    ws.send(WsMessage::Text(text.into())).await.is_ok()
}

/// Wait for the reply to `id` during set-up, holding pushes for later.
async fn await_reply(
    ws: &mut Ws,
    id: u64,
    held: &mut Vec<Message>,
    timeout: Duration,
) -> Result<serde_json::Value, &'static str> {
    let deadline = Instant::now() + timeout;
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err("timeout"),
            Ok(Some(Ok(WsMessage::Text(t)))) => t,
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return Err("disconnect"),
        };
        match ServerMsg::parse(msg.as_str()) {
            Ok(ServerMsg::Reply { id: got, result }) if got == id => return Ok(result),
            Ok(ServerMsg::Error { id: got, code, .. }) if got == Some(id) => {
                return Err(code.as_str())
            }
            Ok(ServerMsg::Push(Push::Chat(m))) => held.push(m),
            Ok(_) => {}
            Err(_) => return Err("unparsable_reply"),
        }
    }
}

/// Connect, sign in, batch-join. Records connect, sign_in and join (or reconnect). Returns
/// the socket and the sequence tracker primed with what the join returned.
pub(super) async fn setup(
    shared: &Shared,
    index: usize,
    user: &SimUser,
    reconnect: Option<Instant>,
) -> Result<(Ws, Tracker), &'static str> {
    let timeout = shared.plan.request_timeout;
    let t0 = Instant::now();
    let (addr, url) = shared.target(index);
    let source = super::net::source_for(addr, index, shared.spread);
    let stream = tokio::time::timeout(timeout, super::net::connect(*addr, source))
        .await
        .map_err(|_| "timeout")?
        .map_err(|_| "connect_failed")?;
    // Target URLs were checked when the run began.
    let url = WsUrl::parse(url).map_err(|_| "handshake_failed")?;
    let opened = tokio::time::timeout(
        timeout,
        crate::wss::open_on(
            &url,
            stream,
            shared.tls.as_ref(),
            crate::wss::config(1 << 20),
        ),
    )
    .await
    .map_err(|_| "timeout")?
    .map_err(|e| match e {
        OpenError::Tls(_) | OpenError::NoTrust(_) => "tls_failed",
        _ => "handshake_failed",
    })?;
    let (mut ws, tls_time) = (opened.ws, opened.tls);
    let t1 = Instant::now();
    let mut held = Vec::new();
    if !send(
        &mut ws,
        1,
        Op::SignIn {
            token: user.token.clone(),
        },
    )
    .await
    {
        return Err("disconnect");
    }
    await_reply(&mut ws, 1, &mut held, timeout).await?;
    let t2 = Instant::now();
    let rooms = Some(user.rooms.iter().map(|r| r.id).collect());
    if !send(
        &mut ws,
        2,
        Op::Bjoin {
            rooms,
            history: Some(shared.plan.history_on_join),
        },
    )
    .await
    {
        return Err("disconnect");
    }
    let joined: BjoinResult =
        serde_json::from_value(await_reply(&mut ws, 2, &mut held, timeout).await?)
            .map_err(|_| "unparsable_reply")?;
    let t3 = Instant::now();
    if shared.presence && !user.contacts.is_empty() {
        let op = Op::Subscribe {
            users: user.contacts.clone(),
        };
        if !send(&mut ws, 3, op).await {
            return Err("disconnect");
        }
        await_reply(&mut ws, 3, &mut held, timeout).await?;
    }
    let mut tracker = Tracker::default();
    for j in &joined.joined {
        tracker.joined(j.room.id, j.last_seq);
    }
    // Pushes that overtook the join reply: only those after the history returned count.
    for m in held {
        if joined
            .joined
            .iter()
            .any(|j| j.room.id == m.room && m.seq > j.last_seq)
        {
            tracker.seen(m.room, m.seq);
        }
    }
    let mut rec = shared.recorders.slot(index);
    if url.tls {
        rec.ok(Metric::TlsHandshake, micros(tls_time), micros(tls_time));
    }
    match reconnect {
        Some(intended) => rec.ok(Metric::Reconnect, micros(t3 - t0), micros(t3 - intended)),
        None => {
            rec.ok(Metric::Connect, micros(t1 - t0), micros(t1 - t0));
            rec.ok(Metric::SignIn, micros(t2 - t1), micros(t2 - t1));
            rec.ok(Metric::Join, micros(t3 - t2), micros(t3 - t2));
        }
    }
    for f in &joined.failed {
        rec.error(Metric::Join, f.code.as_str());
    }
    Ok((ws, tracker))
}
