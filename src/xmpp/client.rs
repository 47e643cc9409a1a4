//! One XMPP client session (RFC 6120/6121) as a virtual user or a test needs it: sign in
//! (SCRAM-SHA-1 or PLAIN), bind a resource, enable stream management (XEP-0198) when the
//! server offers it, then multi-user chat (XEP-0045): join a room with history and read its
//! occupants, post, receive; and the room archive (XEP-0313 with XEP-0059 paging).
//!
//! One request at a time, as [`crate::client::Client`] does for chatcap's own protocol:
//! what arrives while waiting for an answer is queued and handed out by
//! [`XmppClient::next_message`]. Stream management is kept up on the way: the server's
//! `<r/>` is answered with the count of stanzas received, and [`XmppClient::ack`] asks the
//! server for its count (post → ack).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::scram::{self, Scram};
use super::xml::{escape, Element, Item, StreamReader};
use super::XmppError;

const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_SM: &str = "urn:xmpp:sm:3";
const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_DELAY: &str = "urn:xmpp:delay";
const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// How to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// SCRAM-SHA-1: the client derives the key (the server's iteration count).
    ScramSha1,
    /// PLAIN: the password is sent (the server derives the key).
    Plain,
}

impl Mechanism {
    fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Account {
    /// The server's client port.
    pub addr: SocketAddr,
    /// The XMPP domain (`chatcap.test`).
    pub domain: String,
    /// The user's local part (`alice`).
    pub user: String,
    /// Its password.
    pub password: String,
    /// SCRAM-SHA-1 or PLAIN.
    pub mechanism: Mechanism,
}

/// A groupchat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMessage {
    /// The room's bare JID.
    pub room: String,
    /// The sender's nickname.
    pub nick: String,
    /// The text.
    pub body: String,
    /// The message's `id` (the sender's).
    pub id: Option<String>,
    /// The archive id (`<stanza-id>`), when the room archives.
    pub stanza_id: Option<String>,
    /// When it was sent, for history (`<delay stamp>`).
    pub delayed: Option<String>,
}

/// What joining a room gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Joined {
    /// The other occupants' nicknames, as the server listed them.
    pub occupants: Vec<String>,
    /// The history sent on join, oldest first.
    pub history: Vec<GroupMessage>,
}

/// One page of a room's archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchivePage {
    /// Messages, oldest first.
    pub messages: Vec<GroupMessage>,
    /// The first message's archive id (ask `before` it for the page before).
    pub first: Option<String>,
    /// No older messages.
    pub complete: bool,
}

/// A signed-in XMPP session.
pub struct XmppClient {
    reader: StreamReader<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    /// The full JID the server bound.
    pub jid: String,
    domain: String,
    /// Stream management is on.
    pub sm: bool,
    /// Stanzas received since stream management was enabled (`h`).
    received: u32,
    /// Stanzas sent since then.
    sent: u32,
    queue: VecDeque<Element>,
    next_id: u64,
    /// How long to wait for an answer.
    pub timeout: Duration,
}

impl XmppClient {
    /// Connect, sign in, bind a resource, enable stream management when offered, and send
    /// initial presence.
    pub async fn connect(account: &Account) -> Result<XmppClient, XmppError> {
        let tcp = TcpStream::connect(account.addr)
            .await
            .map_err(XmppError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let (read, writer) = tcp.into_split();
        let mut c = XmppClient {
            reader: StreamReader::new(BufReader::with_capacity(4096, read)),
            writer,
            jid: String::new(),
            domain: account.domain.clone(),
            sm: false,
            received: 0,
            sent: 0,
            queue: VecDeque::new(),
            next_id: 1,
            timeout: Duration::from_secs(10),
        };
        let features = c.open_stream().await?;
        c.authenticate(account, &features).await?;
        c.reader.restart();
        let features = c.open_stream().await?;
        c.bind(&features).await?;
        if features.child_ns("sm", NS_SM).is_some() {
            c.write(&format!("<enable xmlns='{NS_SM}'/>")).await?;
            let answer = c.expect(|e| e.ns() == Some(NS_SM)).await?;
            c.sm = answer.name == "enabled";
        }
        c.send_stanza("<presence/>").await?;
        Ok(c)
    }

    /// Send our stream header; read the server's and its features.
    async fn open_stream(&mut self) -> Result<Element, XmppError> {
        let header = format!(
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            escape(&self.domain)
        );
        self.write(&header).await?;
        match self.read().await? {
            Item::Header(_) => {}
            other => {
                return Err(XmppError::Protocol(format!(
                    "expected a stream header, got {other:?}"
                )))
            }
        }
        self.expect(|e| e.name == "features").await
    }

    async fn authenticate(
        &mut self,
        account: &Account,
        features: &Element,
    ) -> Result<(), XmppError> {
        let offered: Vec<&str> = features
            .child_ns("mechanisms", NS_SASL)
            .map(|m| m.children.iter().map(|c| c.text.as_str()).collect())
            .unwrap_or_default();
        let mechanism = account.mechanism.name();
        if !offered.contains(&mechanism) {
            return Err(XmppError::Unsupported(format!(
                "the server does not offer {mechanism} (it offers {})",
                offered.join(", ")
            )));
        }
        let mut scram = None;
        let initial = match account.mechanism {
            Mechanism::Plain => scram::plain(&account.user, &account.password),
            Mechanism::ScramSha1 => {
                let nonce = B64.encode(rand::random::<[u8; 18]>());
                let s = Scram::new(&account.user, &account.password, &nonce);
                let first = B64.encode(s.client_first());
                scram = Some(s);
                first
            }
        };
        self.write(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{initial}</auth>"
        ))
        .await?;
        loop {
            let answer = self.expect(|e| e.ns() == Some(NS_SASL)).await?;
            let data = || {
                B64.decode(answer.text.trim())
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .ok_or_else(|| {
                        XmppError::Protocol(format!("undecodable SASL data in {answer:?}"))
                    })
            };
            match (answer.name.as_str(), scram.as_mut()) {
                ("challenge", Some(s)) => {
                    let reply = B64.encode(s.client_final(&data()?)?);
                    self.write(&format!("<response xmlns='{NS_SASL}'>{reply}</response>"))
                        .await?;
                }
                ("success", Some(s)) => {
                    s.verify(&data()?)?;
                    return Ok(());
                }
                ("success", None) => return Ok(()),
                ("failure", _) => {
                    let condition = answer
                        .children
                        .iter()
                        .find(|c| c.name != "text")
                        .map_or("failure", |c| c.name.as_str());
                    return Err(XmppError::SignIn(condition.to_string()));
                }
                _ => {
                    return Err(XmppError::Protocol(format!(
                        "unexpected SASL answer {answer:?}"
                    )))
                }
            }
        }
    }

    async fn bind(&mut self, features: &Element) -> Result<(), XmppError> {
        if features.child_ns("bind", NS_BIND).is_none() {
            return Err(XmppError::Protocol(
                "the server offers no resource binding".into(),
            ));
        }
        let id = self.id();
        self.write(&format!(
            "<iq type='set' id='{id}'><bind xmlns='{NS_BIND}'><resource>chatcap</resource></bind></iq>"
        ))
        .await?;
        let answer = self.answer(&id).await?;
        self.jid = answer
            .child_ns("bind", NS_BIND)
            .and_then(|b| b.child("jid"))
            .map(|j| j.text.clone())
            .ok_or_else(|| XmppError::Protocol(format!("no JID in the bind result {answer:?}")))?;
        Ok(())
    }

    /// Join `room` (its local part, or a bare JID) on `service` as `nick`, asking for at most
    /// `history` messages: the occupants and the history, read up to the room's subject,
    /// which a server sends last (XEP-0045 §7.2.15).
    pub async fn join(
        &mut self,
        room: &str,
        nick: &str,
        history: u32,
    ) -> Result<Joined, XmppError> {
        let room = room.to_string();
        self.send_stanza(&format!(
            "<presence to='{}/{}'><x xmlns='{NS_MUC}'><history maxstanzas='{history}'/></x></presence>",
            escape(&room),
            escape(nick)
        ))
        .await?;
        let mut joined = Joined::default();
        let mut in_room = false;
        loop {
            let stanza = self.stanza().await?;
            let from = stanza.attr("from").unwrap_or_default();
            let (bare, resource) = from.split_once('/').unwrap_or((from, ""));
            if bare != room {
                self.queue.push_back(stanza);
                continue;
            }
            match stanza.name.as_str() {
                "presence" if stanza.attr("type") == Some("error") => {
                    return Err(refusal(&stanza));
                }
                "presence" => {
                    let is_self = stanza.child_ns("x", NS_MUC_USER).is_some_and(|x| {
                        x.children
                            .iter()
                            .any(|c| c.name == "status" && c.attr("code") == Some("110"))
                    });
                    if is_self {
                        in_room = true;
                    } else if !resource.is_empty() && stanza.attr("type") != Some("unavailable") {
                        joined.occupants.push(resource.to_string());
                    }
                }
                "message" if stanza.child("subject").is_some() && in_room => return Ok(joined),
                "message" if stanza.attr("type") == Some("error") => return Err(refusal(&stanza)),
                "message" if stanza.child_ns("delay", NS_DELAY).is_some() => {
                    if let Some(m) = group_message(&stanza) {
                        joined.history.push(m);
                    }
                }
                _ => self.queue.push_back(stanza),
            }
        }
    }

    /// Post `body` to `room` (a bare JID); the message's id.
    pub async fn say(&mut self, room: &str, body: &str) -> Result<String, XmppError> {
        let id = self.id();
        self.send_stanza(&format!(
            "<message type='groupchat' to='{}' id='{id}'><body>{}</body></message>",
            escape(room),
            escape(body)
        ))
        .await?;
        Ok(id)
    }

    /// The next groupchat message with a body (queued first).
    pub async fn next_message(&mut self) -> Result<GroupMessage, XmppError> {
        while let Some(stanza) = self.queue.pop_front() {
            if let Some(m) = live_message(&stanza) {
                return Ok(m);
            }
        }
        loop {
            let stanza = self.stanza().await?;
            if stanza.attr("type") == Some("error") && stanza.name == "message" {
                return Err(refusal(&stanza));
            }
            if let Some(m) = live_message(&stanza) {
                return Ok(m);
            }
        }
    }

    /// One page of `room`'s archive: at most `max` messages before the archive id `before`
    /// (the newest when `None`).
    pub async fn archive(
        &mut self,
        room: &str,
        max: u32,
        before: Option<&str>,
    ) -> Result<ArchivePage, XmppError> {
        let id = self.id();
        let before = match before {
            Some(b) => format!("<before>{}</before>", escape(b)),
            None => "<before/>".into(),
        };
        self.send_stanza(&format!(
            "<iq type='set' to='{}' id='{id}'><query xmlns='{NS_MAM}' queryid='{id}'><set xmlns='{NS_RSM}'><max>{max}</max>{before}</set></query></iq>",
            escape(room)
        ))
        .await?;
        let mut page = ArchivePage::default();
        loop {
            let stanza = self.stanza().await?;
            let result = stanza
                .child_ns("result", NS_MAM)
                .filter(|r| r.attr("queryid") == Some(id.as_str()));
            if let Some(result) = result {
                let forwarded = result.child_ns("forwarded", NS_FORWARD);
                let inner = forwarded.and_then(|f| f.child("message"));
                if let Some(mut m) = inner.and_then(group_message) {
                    m.stanza_id = result.attr("id").map(String::from);
                    m.delayed = forwarded
                        .and_then(|f| f.child_ns("delay", NS_DELAY))
                        .and_then(|d| d.attr("stamp"))
                        .map(String::from);
                    page.messages.push(m);
                }
                continue;
            }
            if stanza.name == "iq" && stanza.attr("id") == Some(id.as_str()) {
                if stanza.attr("type") == Some("error") {
                    return Err(refusal(&stanza));
                }
                let fin = stanza.child_ns("fin", NS_MAM);
                page.complete = fin.and_then(|f| f.attr("complete")) == Some("true");
                page.first = fin
                    .and_then(|f| f.child_ns("set", NS_RSM))
                    .and_then(|s| s.child("first"))
                    .map(|f| f.text.clone());
                return Ok(page);
            }
            self.queue.push_back(stanza);
        }
    }

    /// Ask the server how many of our stanzas it has handled (XEP-0198 `<r/>`), and wait
    /// for the answer: (handled, sent).
    pub async fn ack(&mut self) -> Result<(u32, u32), XmppError> {
        if !self.sm {
            return Err(XmppError::Unsupported(
                "stream management is not enabled".into(),
            ));
        }
        self.write(&format!("<r xmlns='{NS_SM}'/>")).await?;
        let a = self.expect(|e| e.is("a", NS_SM)).await?;
        let handled = a.attr("h").and_then(|h| h.parse().ok()).unwrap_or(0);
        Ok((handled, self.sent))
    }

    /// Close the stream politely.
    pub async fn close(mut self) {
        let _ = self.write("</stream:stream>").await;
        let _ = self.writer.shutdown().await;
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("c{}", self.next_id)
    }

    async fn write(&mut self, text: &str) -> Result<(), XmppError> {
        self.writer
            .write_all(text.as_bytes())
            .await
            .map_err(XmppError::Io)
    }

    /// Write a stanza (counted for stream management).
    async fn send_stanza(&mut self, text: &str) -> Result<(), XmppError> {
        self.write(text).await?;
        if self.sm {
            self.sent = self.sent.wrapping_add(1);
        }
        Ok(())
    }

    async fn read(&mut self) -> Result<Item, XmppError> {
        tokio::time::timeout(self.timeout, self.reader.next())
            .await
            .map_err(|_| XmppError::Timeout)?
            .map_err(XmppError::Xml)
    }

    /// The next stanza or nonza, answering the server's ack requests on the way.
    async fn element(&mut self) -> Result<Element, XmppError> {
        loop {
            match self.read().await? {
                Item::Stanza(e) if e.is("r", NS_SM) => {
                    let h = self.received;
                    self.write(&format!("<a xmlns='{NS_SM}' h='{h}'/>")).await?;
                }
                Item::Stanza(e) if e.name == "error" => {
                    let condition = e.children.first().map_or("error", |c| c.name.as_str());
                    return Err(XmppError::StreamError(condition.to_string()));
                }
                Item::Stanza(e) => {
                    if self.sm && matches!(e.name.as_str(), "message" | "presence" | "iq") {
                        self.received = self.received.wrapping_add(1);
                    }
                    return Ok(e);
                }
                Item::Closed => return Err(XmppError::Closed),
                Item::Header(_) => {
                    return Err(XmppError::Protocol("a second stream header".into()))
                }
            }
        }
    }

    /// The next stanza (`message`, `presence`, `iq`), nonzas other than acks refused.
    async fn stanza(&mut self) -> Result<Element, XmppError> {
        loop {
            let e = self.element().await?;
            if matches!(e.name.as_str(), "message" | "presence" | "iq") {
                return Ok(e);
            }
            if e.is("a", NS_SM) {
                continue;
            }
            return Err(XmppError::Protocol(format!("unexpected <{}>", e.name)));
        }
    }

    /// The next element matching `want`; stanzas before it are queued.
    async fn expect(&mut self, want: impl Fn(&Element) -> bool) -> Result<Element, XmppError> {
        loop {
            let e = self.element().await?;
            if want(&e) {
                return Ok(e);
            }
            self.queue.push_back(e);
        }
    }

    /// The result of the iq `id`; an error result is a refusal.
    async fn answer(&mut self, id: &str) -> Result<Element, XmppError> {
        let e = self
            .expect(|e| e.name == "iq" && e.attr("id") == Some(id))
            .await?;
        match e.attr("type") {
            Some("result") => Ok(e),
            _ => Err(refusal(&e)),
        }
    }
}

/// The defined condition and text of an error stanza.
fn refusal(stanza: &Element) -> XmppError {
    let error = stanza.child("error");
    let condition = error
        .and_then(|e| {
            e.children
                .iter()
                .find(|c| c.ns() == Some(NS_STANZAS) && c.name != "text")
        })
        .map_or("undefined-condition", |c| c.name.as_str());
    let text = error
        .and_then(|e| e.child("text"))
        .map(|t| t.text.clone())
        .unwrap_or_default();
    XmppError::Refused {
        condition: condition.to_string(),
        text,
    }
}

/// A groupchat message with a body.
fn group_message(stanza: &Element) -> Option<GroupMessage> {
    if stanza.name != "message" || stanza.attr("type") != Some("groupchat") {
        return None;
    }
    let from = stanza.attr("from")?;
    let (room, nick) = from.split_once('/').unwrap_or((from, ""));
    Some(GroupMessage {
        room: room.to_string(),
        nick: nick.to_string(),
        body: stanza.child("body")?.text.clone(),
        id: stanza.attr("id").map(String::from),
        stanza_id: stanza
            .children
            .iter()
            .find(|c| c.name == "stanza-id")
            .and_then(|s| s.attr("id"))
            .map(String::from),
        delayed: stanza
            .child_ns("delay", NS_DELAY)
            .and_then(|d| d.attr("stamp"))
            .map(String::from),
    })
}

/// A groupchat message sent now (not history).
fn live_message(stanza: &Element) -> Option<GroupMessage> {
    group_message(stanza).filter(|m| m.delayed.is_none())
}
