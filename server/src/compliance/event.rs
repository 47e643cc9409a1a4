//! The compliance events the chat core records: their kinds (the original's
//! `Message/@type`) and the content of a BACKCHAT. A leaf: the chat core records through it
//! without depending on the compliance service above it.

/// What happened, as the original's compliance `Message/@type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A session entered a room.
    Join,
    /// A session left a room (part, disconnect, removal).
    Part,
    /// A message was posted (and acknowledged).
    Chat,
    /// History was viewed (join with history, `history`).
    Backchat,
    /// A file was uploaded to a room.
    FileUpload,
    /// A file was downloaded from a room.
    FileDownload,
}

impl EventKind {
    /// Every kind, in code order.
    pub const ALL: [EventKind; 6] = [
        EventKind::Join,
        EventKind::Part,
        EventKind::Chat,
        EventKind::Backchat,
        EventKind::FileUpload,
        EventKind::FileDownload,
    ];

    /// The code stored in the database (`compliance_events.kind`).
    pub fn code(self) -> i16 {
        match self {
            EventKind::Join => 0,
            EventKind::Part => 1,
            EventKind::Chat => 2,
            EventKind::Backchat => 3,
            EventKind::FileUpload => 4,
            EventKind::FileDownload => 5,
        }
    }

    /// The kind of a stored code (`None` for a code this build does not know).
    pub fn from_code(code: i16) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The XML `type` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Join => "JOIN",
            EventKind::Part => "PART",
            EventKind::Chat => "CHAT",
            EventKind::Backchat => "BACKCHAT",
            EventKind::FileUpload => "FILEUPLOAD",
            EventKind::FileDownload => "FILEDOWNLOAD",
        }
    }
}

/// The content of a BACKCHAT event: the sequence numbers viewed, `first-last`.
pub fn viewed_range(first_seq: i64, last_seq: i64) -> String {
    format!("{first_seq}-{last_seq}")
}
