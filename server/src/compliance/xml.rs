//! The XML adapter: a batch of events in the layout of Lync Server 2013 Persistent Chat's
//! XmlAdapter — one `Conversation` per room (its `Channel`, `FirstMessage`, `Messages`,
//! `StartTimeUTC`, `EndTimeUTC`), each event a `Message` with its `Sender` and
//! `DateTimeUTC` (milliseconds since 1970, an ISO 8601 string with 7 decimals, and .NET
//! ticks).
//!
//! Attribute values are escaped (`& < > " '`, and tab/CR/LF as character references so a
//! reader gets them back). Characters XML 1.0 cannot carry at all (other control
//! characters) become U+FFFD.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::EventKind;
use crate::store::compliance::ComplianceEvent;

/// The names the adapter writes, by id (from the chat core's directory).
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// User sign-in names (`Sender/@UserName`, `sip:` + name as `uri`).
    pub users: HashMap<i64, String>,
    /// Room names (`Channel/@name`).
    pub rooms: HashMap<i64, String>,
}

/// .NET ticks (100 ns) from 0001-01-01 to 1970-01-01.
const UNIX_EPOCH_TICKS: i64 = 621_355_968_000_000_000;

/// The `Channel/@uri` of a room.
pub fn channel_uri(room: i64) -> String {
    format!("ma-chan://chatcap/{room}")
}

/// Render one export file.
pub fn render(events: &[ComplianceEvent], names: &Names) -> String {
    // One conversation per room, in the order rooms first appear; events keep their order.
    let mut order: Vec<i64> = Vec::new();
    let mut by_room: HashMap<i64, Vec<(EventKind, &ComplianceEvent)>> = HashMap::new();
    for e in events {
        let Some(kind) = EventKind::from_code(e.event.kind) else {
            tracing::warn!(
                id = e.id,
                kind = e.event.kind,
                "unknown compliance event kind"
            );
            continue;
        };
        by_room
            .entry(e.event.room)
            .or_insert_with(|| {
                order.push(e.event.room);
                Vec::new()
            })
            .push((kind, e));
    }
    let mut out = String::with_capacity(512 + events.len() * 400);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str(
        "<Conversations xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n",
    );
    for room in order {
        let Some(list) = by_room.get(&room) else {
            continue;
        };
        let (Some(first), Some(last)) = (list.first(), list.last()) else {
            continue;
        };
        let name = names.rooms.get(&room).map_or("", String::as_str);
        out.push_str("  <Conversation>\n");
        let _ = writeln!(
            out,
            "    <Channel uri=\"{}\" name=\"{}\" />",
            channel_uri(room),
            escape(name)
        );
        message(&mut out, "FirstMessage", "    ", first.0, first.1, names);
        out.push_str("    <Messages>\n");
        for (kind, e) in list {
            message(&mut out, "Message", "      ", *kind, e, names);
        }
        out.push_str("    </Messages>\n");
        time(&mut out, "    ", "StartTimeUTC", first.1.event.at_us);
        time(&mut out, "    ", "EndTimeUTC", last.1.event.at_us);
        out.push_str("  </Conversation>\n");
    }
    out.push_str("</Conversations>\n");
    out
}

fn message(
    out: &mut String,
    element: &str,
    indent: &str,
    kind: EventKind,
    e: &ComplianceEvent,
    names: &Names,
) {
    // `id` is the message's number for CHAT, 0 otherwise (as the original writes it).
    let id = match kind {
        EventKind::Chat => e.event.seq.unwrap_or(0),
        _ => 0,
    };
    let content = match kind {
        EventKind::Join | EventKind::Part => "",
        _ => e.event.content.as_str(),
    };
    let _ = writeln!(
        out,
        "{indent}<{element} type=\"{}\" content=\"{}\" id=\"{id}\">",
        kind.as_str(),
        escape(content)
    );
    let user = e.event.user;
    let name = names.users.get(&user).map_or("", String::as_str);
    let email = if name.contains('@') { name } else { "" };
    let uri = if name.is_empty() {
        String::new()
    } else {
        format!("sip:{name}")
    };
    let _ = writeln!(
        out,
        "{indent}  <Sender UserName=\"{}\" id=\"{user}\" email=\"{}\" internal=\"true\" uri=\"{}\" />",
        escape(name),
        escape(email),
        escape(&uri)
    );
    let inner = format!("{indent}  ");
    time(out, &inner, "DateTimeUTC", e.event.at_us);
    let _ = writeln!(out, "{indent}</{element}>");
}

fn time(out: &mut String, indent: &str, element: &str, at_us: i64) {
    let _ = writeln!(
        out,
        "{indent}<{element} since1970=\"{}\" string=\"{}\" long=\"{}\" />",
        at_us.div_euclid(1000),
        utc_string(at_us),
        ticks(at_us)
    );
}

/// Escape a string for an attribute value in double quotes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// .NET ticks (100 ns since 0001-01-01 UTC): the `long` attribute.
pub fn ticks(at_us: i64) -> i64 {
    at_us.saturating_mul(10).saturating_add(UNIX_EPOCH_TICKS)
}

/// `2008-06-04T20:15:40.9535480Z`: the `string` attribute (7 decimals, like .NET's "o").
pub fn utc_string(at_us: i64) -> String {
    let (y, mo, d, h, mi, s, us) = crate::model::civil(at_us);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}0Z")
}

/// `20080604T201540953Z`: a UTC time for file names (sorts as it reads).
pub fn file_stamp(at_us: i64) -> String {
    let (y, mo, d, h, mi, s, us) = crate::model::civil(at_us);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}{:03}Z", us / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_match_the_original_sample() {
        // DateTimeUTC since1970="1212610540953" string="2008-06-04T20:15:40.9535482Z"
        // long="633482073409535482" (the original keeps 100 ns; we keep 1 µs).
        let us = 1_212_610_540_953_548;
        assert_eq!(utc_string(us), "2008-06-04T20:15:40.9535480Z");
        assert_eq!(ticks(us), 633_482_073_409_535_480);
        assert_eq!(us / 1000, 1_212_610_540_953);
        assert_eq!(file_stamp(us), "20080604T201540953Z");
        assert_eq!(utc_string(0), "1970-01-01T00:00:00.0000000Z");
        // A leap day and the end of a year.
        assert_eq!(
            utc_string(951_782_400_000_000),
            "2000-02-29T00:00:00.0000000Z"
        );
        assert_eq!(
            utc_string(1_704_067_199_999_999),
            "2023-12-31T23:59:59.9999990Z"
        );
    }

    #[test]
    fn attribute_values_are_escaped() {
        assert_eq!(
            escape("a<b>&\"c\"'d'\te\nf\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;&#9;e&#10;f\u{FFFD}"
        );
    }
}
