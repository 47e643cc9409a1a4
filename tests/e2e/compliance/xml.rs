//! Reading the compliance adapter's XML files back, and the XML message each recorded
//! event must become.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chatcap_server::compliance::{self, EventKind};
use chatcap_server::store::compliance::ComplianceEvent;

/// The export files of a folder, in name (= claim time) order.
pub fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    files.retain(|p| p.extension().is_some_and(|e| e == "xml"));
    files.sort();
    files
}

/// One `Message` (or `FirstMessage`) of an export file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XmlMessage {
    pub kind: String,
    pub content: String,
    pub id: i64,
    pub user_name: String,
    pub user_id: i64,
    pub email: String,
    pub internal: String,
    pub uri: String,
    pub time: XmlTime,
}

/// A `DateTimeUTC`, `StartTimeUTC` or `EndTimeUTC`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XmlTime {
    pub since1970: i64,
    pub string: String,
    pub long: i64,
}

/// One `Conversation`.
#[derive(Debug, Clone, Default)]
pub struct XmlConversation {
    pub uri: String,
    pub name: String,
    pub first: Vec<XmlMessage>,
    pub messages: Vec<XmlMessage>,
    pub start: Option<XmlTime>,
    pub end: Option<XmlTime>,
}

/// Parse an export file with a real XML reader, checking the element nesting.
pub fn parse(path: &Path) -> Vec<XmlConversation> {
    use quick_xml::events::{BytesStart, Event};
    let text = std::fs::read_to_string(path).expect("read export");
    let mut reader = quick_xml::Reader::from_str(&text);
    let attrs = |e: &BytesStart| -> HashMap<String, String> {
        e.attributes()
            .map(|a| {
                let a = a.expect("well-formed attribute");
                let key = String::from_utf8(a.key.as_ref().to_vec()).expect("utf-8 name");
                let value = a
                    .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                    .expect("escaped value")
                    .into_owned();
                (key, value)
            })
            .collect()
    };
    let num = |m: &HashMap<String, String>, k: &str| -> i64 {
        m.get(k)
            .unwrap_or_else(|| panic!("attribute {k}"))
            .parse()
            .unwrap_or_else(|_| panic!("{k} is a number"))
    };
    let time = |m: &HashMap<String, String>| XmlTime {
        since1970: num(m, "since1970"),
        string: m["string"].clone(),
        long: num(m, "long"),
    };
    let mut out: Vec<XmlConversation> = Vec::new();
    let mut path_stack: Vec<String> = Vec::new();
    let mut msg = XmlMessage::default();
    loop {
        let ev = reader.read_event().expect("well-formed XML");
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            Event::End(_) => {
                let closed = path_stack.pop().expect("balanced");
                if closed == "Message" || closed == "FirstMessage" {
                    let conv = out.last_mut().expect("inside a conversation");
                    let list = if closed == "Message" {
                        &mut conv.messages
                    } else {
                        &mut conv.first
                    };
                    list.push(std::mem::take(&mut msg));
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let e = start.expect("an element");
        let name = String::from_utf8(e.name().as_ref().to_vec()).expect("utf-8");
        let parent = path_stack.last().cloned().unwrap_or_default();
        let a = attrs(&e);
        match (parent.as_str(), name.as_str()) {
            ("", "Conversations") | ("Conversation", "Messages") => {}
            ("Conversations", "Conversation") => out.push(XmlConversation::default()),
            ("Conversation", "Channel") => {
                let c = out.last_mut().expect("conversation");
                c.uri = a["uri"].clone();
                c.name = a["name"].clone();
            }
            ("Conversation", "FirstMessage") | ("Messages", "Message") => {
                msg = XmlMessage {
                    kind: a["type"].clone(),
                    content: a["content"].clone(),
                    id: num(&a, "id"),
                    ..Default::default()
                };
            }
            ("Message" | "FirstMessage", "Sender") => {
                msg.user_name = a["UserName"].clone();
                msg.user_id = num(&a, "id");
                msg.email = a["email"].clone();
                msg.internal = a["internal"].clone();
                msg.uri = a["uri"].clone();
            }
            ("Message" | "FirstMessage", "DateTimeUTC") => msg.time = time(&a),
            ("Conversation", "StartTimeUTC") => {
                out.last_mut().expect("conversation").start = Some(time(&a))
            }
            ("Conversation", "EndTimeUTC") => {
                out.last_mut().expect("conversation").end = Some(time(&a))
            }
            other => panic!("unexpected element {other:?} in {}", path.display()),
        }
        if !empty {
            path_stack.push(name);
        }
    }
    assert!(path_stack.is_empty(), "unbalanced elements");
    out
}

/// Check one conversation's frame: FirstMessage is its first message; start and end times
/// are its first and last messages' times.
pub fn check_frame(c: &XmlConversation) {
    assert!(!c.messages.is_empty(), "a conversation has messages");
    assert_eq!(c.first.len(), 1, "one FirstMessage");
    assert_eq!(c.first[0], c.messages[0]);
    assert_eq!(c.start.as_ref(), Some(&c.messages[0].time));
    assert_eq!(c.end.as_ref(), c.messages.last().map(|m| &m.time));
}

/// The XML message that a stored event must become.
pub fn expected_xml(e: &ComplianceEvent, user_name: &str) -> XmlMessage {
    let kind = EventKind::from_code(e.event.kind).expect("known kind");
    let at = e.event.at_us;
    XmlMessage {
        kind: kind.as_str().to_string(),
        content: e.event.content.clone(),
        id: if kind == EventKind::Chat {
            e.event.seq.expect("CHAT has a seq")
        } else {
            0
        },
        user_name: user_name.to_string(),
        user_id: e.event.user,
        email: user_name.to_string(),
        internal: "true".into(),
        uri: format!("sip:{user_name}"),
        time: XmlTime {
            since1970: at / 1000,
            string: compliance::xml::utc_string(at),
            long: at * 10 + 621_355_968_000_000_000,
        },
    }
}
