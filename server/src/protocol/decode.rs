//! Reading a client's request off the wire: the one [`decode`] that front ends and chat
//! servers share, the part of a request readable when the rest is not ([`RequestHead`],
//! for the error reply's id), the operation names ([`KNOWN_TYPES`]) and the NUL check.

use serde::Deserialize;

use super::client::Request;
use super::{ErrorCode, WireError};

/// The part of a request that can be read even when the rest is malformed, so that the
/// error reply can carry the request id and say what is wrong with the `type`.
#[derive(Debug, Deserialize)]
pub struct RequestHead {
    id: Option<serde_json::Value>,
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
}

impl RequestHead {
    /// The head of a JSON object; `None` when the text is not one.
    pub fn read(json: &[u8]) -> Option<Self> {
        serde_json::from_slice(json).ok()
    }

    /// The request id, when it is an integer that fits in 64 unsigned bits.
    pub fn id(&self) -> Option<u64> {
        self.id.as_ref().and_then(serde_json::Value::as_u64)
    }

    /// What is wrong with the `type`, if anything: missing or not a string
    /// (`bad_request`), or a string the server does not know (`unknown_type`).
    fn type_error(&self) -> Option<WireError> {
        match &self.kind {
            Some(serde_json::Value::String(kind)) if KNOWN_TYPES.contains(&kind.as_str()) => None,
            Some(serde_json::Value::String(kind)) => Some(WireError::new(
                ErrorCode::UnknownType,
                format!("unknown request type {kind:?}"),
            )),
            None => Some(WireError::new(
                ErrorCode::BadRequest,
                "malformed request: missing field `type`",
            )),
            Some(other) => Some(WireError::new(
                ErrorCode::BadRequest,
                format!(
                    "malformed request: `type` must be a string naming the operation, not {other}"
                ),
            )),
        }
    }
}

/// Decode one client request; front ends and chat servers decode through this one
/// function. On failure, the error reply and the request id whenever the id can be read.
///
/// The head is read first because serde alone is too lax about the tag: it takes an
/// integer `type` as the position of an operation (`"type":3` would be `bjoin`). Reading
/// the head costs a second pass over a short text.
pub fn decode(json: &[u8]) -> Result<Request, (Option<u64>, WireError)> {
    let head = RequestHead::read(json);
    let id = head.as_ref().and_then(RequestHead::id);
    if let Some(e) = head.as_ref().and_then(RequestHead::type_error) {
        return Err((id, e));
    }
    serde_json::from_slice(json).map_err(|e| {
        let e = WireError::new(ErrorCode::BadRequest, format!("malformed request: {e}"));
        (id, e)
    })
}

/// Every `type` value the server understands.
pub const KNOWN_TYPES: &[&str] = &[
    "sign_in",
    "ping",
    "join",
    "bjoin",
    "part",
    "post",
    "history",
    "search",
    "participants",
    "list_rooms",
    "room_info",
    "set_presence",
    "subscribe",
    "create_category",
    "update_category",
    "create_room",
    "update_room",
    "set_role",
    "delete_room",
    "clear_history",
    "remove_message",
    "invitations",
    "dismiss_invitation",
    "follow",
    "unfollow",
    "followed",
    "mark_read",
    "file_begin",
    "file_commit",
    "file_info",
    "file_list",
    "list_categories",
    "room_roles",
    "find_users",
];

/// True when a JSON request carries a NUL character in any string (`\u0000`): no text of
/// the protocol may hold one (PostgreSQL refuses it in `TEXT`, and it is never meant). The
/// raw scan is cheap; the exact check runs only when the escape appears.
pub fn has_nul(json: &[u8]) -> bool {
    let escape = json
        .windows(6)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && w[2..].eq_ignore_ascii_case(b"0000"));
    if !escape {
        return false;
    }
    fn walk(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(a) => a.iter().any(walk),
            serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || walk(v)),
            _ => false,
        }
    }
    serde_json::from_slice::<serde_json::Value>(json).is_ok_and(|v| walk(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Op;

    #[test]
    fn a_type_that_is_not_a_string_is_refused_and_the_id_echoed() {
        use crate::protocol::ErrorCode;
        let refused = |json: &str| match decode(json.as_bytes()) {
            Ok(r) => panic!("{json} decoded as {r:?}"),
            Err(e) => e,
        };
        // serde alone would take 3 as the fourth operation (`bjoin`) and 0 as `sign_in`.
        for json in [
            r#"{"id":62,"type":3}"#,
            r#"{"id":62,"type":0,"token":"t"}"#,
            r#"{"id":62,"type":null}"#,
            r#"{"id":62,"type":["post"]}"#,
            r#"{"id":62,"type":{"post":1}}"#,
            r#"{"id":62,"type":true}"#,
            r#"{"id":62}"#,
        ] {
            let (id, e) = refused(json);
            assert_eq!((id, e.code), (Some(62), ErrorCode::BadRequest), "{json}");
            assert!(e.message.contains("type"), "{json}: {}", e.message);
        }
        let (id, e) = refused(r#"{"id":9,"type":"fly"}"#);
        assert_eq!((id, e.code), (Some(9), ErrorCode::UnknownType));
        // A known type with bad fields, and ids that cannot be read.
        let (id, e) = refused(r#"{"id":5,"type":"join","room":"x"}"#);
        assert_eq!((id, e.code), (Some(5), ErrorCode::BadRequest));
        for json in [
            r#"{"id":-1,"type":"ping"}"#,
            r#"{"id":"7","type":"ping"}"#,
            "[1]",
            "{",
        ] {
            let (id, e) = refused(json);
            assert_eq!((id, e.code), (None, ErrorCode::BadRequest), "{json}");
        }
        assert_eq!(
            decode(br#"{"id":1,"type":"ping"}"#).expect("ping"),
            Request {
                id: 1,
                op: Op::Ping
            }
        );
    }

    #[test]
    fn optional_fields_take_null_and_fields_with_only_a_default_do_not() {
        // docs/PROTOCOL.md, "Absent and null".
        let history = br#"{"id":1,"type":"history","room":4,"after_seq":null,"limit":null}"#;
        assert!(decode(history).is_ok());
        for field in ["description", "kind", "privacy", "invitations"] {
            let json = format!(
                r#"{{"id":2,"type":"create_room","name":"r","category":1,"{field}":null}}"#
            );
            let (id, e) = decode(json.as_bytes()).expect_err(field);
            assert_eq!(
                (id, e.code),
                (Some(2), crate::protocol::ErrorCode::BadRequest)
            );
        }
    }

    #[test]
    fn nul_characters_are_found_only_where_they_are() {
        assert!(has_nul(br#"{"id":1,"type":"post","text":"a\u0000b"}"#));
        assert!(has_nul(br#"{"id":1,"type":"search","text":"\u0000"}"#));
        assert!(!has_nul(br#"{"id":1,"type":"post","text":"plain"}"#));
        // A backslash followed by the letters u0000 is text, not a NUL.
        assert!(!has_nul(br#"{"id":1,"type":"post","text":"C:\\u0000"}"#));
    }

    #[test]
    fn known_types_cover_every_op_name() {
        let ops = [
            Op::Ping,
            Op::Part { room: 1 },
            Op::DeleteRoom { room: 1 },
            Op::Invitations,
            Op::DismissInvitation { room: 1 },
            Op::Follow { room: 1 },
            Op::Unfollow { room: 1 },
            Op::Followed,
            Op::MarkRead { room: 1, seq: 1 },
            Op::ListCategories,
            Op::RoomRoles { room: 1 },
            Op::FindUsers {
                query: String::new(),
                limit: None,
            },
        ];
        for op in ops {
            assert!(KNOWN_TYPES.contains(&op.name()));
        }
    }
}
