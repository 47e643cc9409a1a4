//! Memory per signed-in idle session inside the chat server.
//!
//! One session-protocol link (the way a front end talks to the chat server) carries every
//! session, so N sessions cost the server N sessions and not N sockets: what is measured
//! is the chat core's own state. Steps: `Hello`, read VmRSS; `Open` + `sign_in` for each
//! session, wait for every reply, let the allocator settle, read VmRSS; optionally `join`
//! every session to one room and read it again. The link is closed at the end, which ends
//! all the sessions.

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use chatcap_server::protocol::session::{codec, Frame, VERSION};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::codec::Framed;

use super::reply_head::ReplyHead;
use super::target::{rss_bytes, BenchUser, ServerProcess};

/// Requests outstanding on the link at once: below the server's in-flight limit (4,096)
/// for requests that go to a task, so nothing is refused `busy`.
const WINDOW: usize = 1024;

/// Longest a whole round (N requests and their replies) may take.
const ROUND_TIMEOUT: Duration = Duration::from_secs(180);

/// The memory figures of one backend.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryFigures {
    /// Sessions opened and signed in.
    pub sessions: usize,
    /// Server VmRSS with the link up and no session, bytes.
    pub rss_before: u64,
    /// Server VmRSS with every session signed in, bytes.
    pub rss_signed_in: u64,
    /// (signed in − before) / sessions.
    pub bytes_per_session: f64,
    /// Server VmRSS with every session also in one room, bytes.
    pub rss_joined: Option<u64>,
    /// (joined − before) / sessions.
    pub bytes_per_joined_session: Option<f64>,
}

type Link = Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>;

/// Measure per-session memory of `server` with one session per user of `users`.
pub async fn measure(
    server: &ServerProcess,
    users: &[BenchUser],
    join_room: Option<i64>,
) -> anyhow::Result<MemoryFigures> {
    let stream = TcpStream::connect(server.chat)
        .await
        .with_context(|| format!("connecting to the chat server at {}", server.chat))?;
    stream.set_nodelay(true)?;
    let mut link: Link = Framed::new(stream, codec());
    let hello = Frame::Hello {
        version: VERSION,
        name: "bench".into(),
    };
    link.send(hello.to_bytes()).await?;
    let welcome = link.next().await.and_then(|r| r.ok());
    if !welcome.is_some_and(|b| matches!(Frame::decode(b.freeze()), Ok(Frame::Welcome { .. }))) {
        bail!("the chat server did not answer Hello with Welcome");
    }
    let n = users.len();
    let rss_before = settled_rss(server.pid).await?;

    round(&mut link, users, |session, user| {
        let json = format!(
            r#"{{"id":{session},"type":"sign_in","token":"{}"}}"#,
            user.token
        );
        vec![
            Frame::Open {
                session,
                user: user.id,
            },
            Frame::Request {
                session,
                json: Bytes::from(json),
            },
        ]
    })
    .await
    .context("signing in idle sessions")?;
    let rss_signed_in = settled_rss(server.pid).await?;

    let rss_joined = match join_room {
        Some(room) => {
            round(&mut link, users, |session, _| {
                let json = format!(
                    r#"{{"id":{},"type":"join","room":{room},"history":0}}"#,
                    session + 1_000_000_000
                );
                vec![Frame::Request {
                    session,
                    json: Bytes::from(json),
                }]
            })
            .await
            .context("joining idle sessions to a room")?;
            Some(settled_rss(server.pid).await?)
        }
        None => None,
    };
    drop(link);
    let per = |after: u64| (after as f64 - rss_before as f64) / n.max(1) as f64;
    Ok(MemoryFigures {
        sessions: n,
        rss_before,
        rss_signed_in,
        bytes_per_session: per(rss_signed_in),
        rss_joined,
        bytes_per_joined_session: rss_joined.map(per),
    })
}

/// Send `frames(session, user)` for every user (session ids 1..=N), at most [`WINDOW`]
/// requests unanswered, and wait until each has its reply. Any error reply fails it.
async fn round(
    link: &mut Link,
    users: &[BenchUser],
    frames: impl Fn(u64, &BenchUser) -> Vec<Frame>,
) -> anyhow::Result<()> {
    let (mut sink, mut source) = link.split();
    let permits = Semaphore::new(WINDOW);
    let deadline = Instant::now() + ROUND_TIMEOUT;
    let writer = async {
        for (i, user) in users.iter().enumerate() {
            if permits.available_permits() == 0 {
                sink.flush().await?;
            }
            permits.acquire().await?.forget();
            for f in frames(i as u64 + 1, user) {
                sink.feed(f.to_bytes()).await?;
            }
        }
        sink.flush().await?;
        Ok::<_, anyhow::Error>(())
    };
    let reader = async {
        let mut replies = 0;
        while replies < users.len() {
            let body = match source.next().await {
                Some(Ok(b)) => b.freeze(),
                Some(Err(e)) => bail!("link read failed: {e}"),
                None => bail!("the chat server closed the link"),
            };
            match Frame::decode(body)? {
                Frame::Send { json, .. } => match serde_json::from_slice::<ReplyHead>(&json) {
                    Ok(h) if h.kind == "reply" => {
                        replies += 1;
                        permits.add_permits(1);
                    }
                    Ok(h) if h.kind == "error" => {
                        bail!("error reply: {}", String::from_utf8_lossy(&json))
                    }
                    _ => {}
                },
                Frame::Kick { session, reason } => bail!("session {session} kicked: {reason}"),
                _ => {}
            }
        }
        Ok(())
    };
    let both = async { tokio::try_join!(writer, reader) };
    match tokio::time::timeout_at(deadline, both).await {
        Ok(r) => r.map(|_| ()),
        Err(_) => bail!("no reply to every request within {ROUND_TIMEOUT:?}"),
    }
}

/// VmRSS once it stops moving (two reads 300 ms apart within 64 KiB), at most 5 s.
async fn settled_rss(pid: u32) -> anyhow::Result<u64> {
    let read = || rss_bytes(pid).context("reading the server's VmRSS");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = read()?;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = read()?;
        if now.abs_diff(last) < 64 * 1024 || Instant::now() >= deadline {
            return Ok(now);
        }
        last = now;
    }
}
