//! Files posted to rooms: the naming rules and the metadata that the file operations of the
//! chat protocol carry (`file_begin`, `file_commit`, `file_info`, `file_list`), shared by
//! the front end's file web service and the chat server (docs/FILES.md).
//!
//! A file's bytes are kept under a **stored name** the server makes up: 32 lowercase hex
//! digits (128 random bits) and, when the uploader's name has a usable one, a sanitised
//! extension (`3f2a…9c.pdf`). The uploader's name is metadata only and never becomes part
//! of a path, so a name like `../../etc/passwd` cannot reach outside the file store; such
//! names are refused anyway ([`check_file_name`]). Like everything here, this module only
//! describes values: no I/O.

use serde::{Deserialize, Serialize};

/// Longest file name accepted, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 255;

/// Longest extension kept in a stored name.
pub const MAX_EXTENSION: usize = 16;

/// Digits of a file id (128 bits in lowercase hex).
pub const FILE_ID_DIGITS: usize = 32;

/// The `client_msg_id` prefix of the message that announces a file in its room: the
/// message of file `<stored>` has `client_msg_id` `file:<stored>`.
pub const ANNOUNCEMENT_PREFIX: &str = "file:";

/// Why a file name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty or only white space.
    #[error("the file name is empty")]
    Empty,
    /// Above [`MAX_NAME_BYTES`].
    #[error("the file name is longer than {MAX_NAME_BYTES} bytes")]
    TooLong,
    /// Contains `/` or `\`: a name, not a path.
    #[error("the file name must not contain '/' or '\\'")]
    Separator,
    /// Contains `..`.
    #[error("the file name must not contain '..'")]
    DotDot,
    /// Contains NUL or another control character.
    #[error("the file name must not contain control characters")]
    Control,
}

/// Check a file name as given by an uploader: 1–255 bytes, not blank, no path separator,
/// no `..`, no control character (NUL, newline, …).
pub fn check_file_name(name: &str) -> Result<(), NameError> {
    if name.trim().is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong);
    }
    if name.contains(['/', '\\']) {
        return Err(NameError::Separator);
    }
    if name.contains("..") {
        return Err(NameError::DotDot);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    Ok(())
}

/// The extension kept from a file name: what follows the last `.`, lowercased, when it is
/// 1–16 ASCII letters or digits; otherwise none (`"a.tar.gz"` → `gz`, `"a.b c"` → none).
pub fn extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    let ok = !ext.is_empty()
        && ext.len() <= MAX_EXTENSION
        && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| ext.to_ascii_lowercase())
}

fn is_lower_hex(s: &str, digits: usize) -> bool {
    s.len() == digits
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A file id as handed out by `file_begin`: 32 lowercase hex digits.
pub fn is_file_id(s: &str) -> bool {
    is_lower_hex(s, FILE_ID_DIGITS)
}

/// A SHA-256 digest in lowercase hex (64 digits).
pub fn is_sha256_hex(s: &str) -> bool {
    is_lower_hex(s, 64)
}

/// The name a file is kept under on the file store: `<32 hex>` or `<32 hex>.<ext>`, where
/// `ext` is 1–16 lowercase ASCII letters or digits. Only values of this shape exist, so a
/// `StoredName` is always safe to join to a folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredName(String);

impl StoredName {
    /// The stored name of a file with id `id` uploaded as `original`; `None` when `id` is
    /// not a file id.
    pub fn new(id: &str, original: &str) -> Option<StoredName> {
        if !is_file_id(id) {
            return None;
        }
        Some(StoredName(match extension(original) {
            Some(ext) => format!("{id}.{ext}"),
            None => id.to_string(),
        }))
    }

    /// Read a stored name (from a URL or a request); `None` unless it has the shape above.
    pub fn parse(s: &str) -> Option<StoredName> {
        let (id, ext) = match s.split_once('.') {
            Some((id, ext)) => (id, Some(ext)),
            None => (s, None),
        };
        let ext_ok = ext.is_none_or(|e| {
            !e.is_empty()
                && e.len() <= MAX_EXTENSION
                && e.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        });
        (is_file_id(id) && ext_ok).then(|| StoredName(s.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The sub-folder of the file store that holds it: its first two hex digits (256
    /// folders, so that no folder grows to millions of entries).
    pub fn shard(&self) -> &str {
        &self.0[..2]
    }
}

impl std::fmt::Display for StoredName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a file is downloaded from, on any front end.
pub fn download_path(room: i64, stored: &str) -> String {
    format!("/api/rooms/{room}/files/{stored}")
}

/// The text of the message that announces a file in its room:
/// `[file] <name> (<size> bytes) /api/rooms/<room>/files/<stored>` — readable as it is,
/// and the download path is always the last word.
pub fn announcement(room: i64, stored: &str, name: &str, size: u64) -> String {
    format!(
        "[file] {name} ({size} bytes) {}",
        download_path(room, stored)
    )
}

/// Result of `file_begin`: the id to store the upload under.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileBegun {
    /// 32 lowercase hex digits; the stored name is this id and the name's extension.
    pub file_id: String,
}

/// A file of a room, as `file_commit`, `file_info` and `file_list` return it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredFile {
    /// Room id.
    pub room: i64,
    /// The stored name (`<32 hex>.<ext>`): the file's id in URLs and in compliance records.
    pub file: String,
    /// The name the uploader gave.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    /// Who uploaded it.
    pub uploader: i64,
    /// When the upload was committed (µs since the epoch).
    pub uploaded_at_us: i64,
    /// Sequence number of the message announcing it (`file_commit` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
}

/// Result of `file_list`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Files {
    /// Newest first.
    pub files: Vec<StoredFile>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn path_like_and_control_names_are_refused() {
        for (name, err) in [
            ("", NameError::Empty),
            ("   ", NameError::Empty),
            ("../etc/passwd", NameError::Separator),
            ("a/b", NameError::Separator),
            ("a\\b", NameError::Separator),
            ("..", NameError::DotDot),
            ("x..txt", NameError::DotDot),
            ("a\0b", NameError::Control),
            ("a\nb", NameError::Control),
        ] {
            assert_eq!(check_file_name(name), Err(err), "{name:?}");
        }
        assert_eq!(check_file_name(&"x".repeat(256)), Err(NameError::TooLong));
        assert!(check_file_name("Quarterly report (final).PDF").is_ok());
        assert!(check_file_name("отчёт.txt").is_ok());
    }

    #[test]
    fn stored_names_keep_only_a_clean_extension() {
        let s = StoredName::new(ID, "Report.PDF").expect("id");
        assert_eq!(s.as_str(), format!("{ID}.pdf"));
        assert_eq!(s.shard(), "01");
        assert_eq!(
            StoredName::new(ID, "a.tar.gz").expect("id").as_str(),
            format!("{ID}.gz")
        );
        assert_eq!(StoredName::new(ID, "noext").expect("id").as_str(), ID);
        assert_eq!(StoredName::new(ID, "a.b c").expect("id").as_str(), ID);
        assert_eq!(StoredName::new(ID, "a.é").expect("id").as_str(), ID);
        assert!(StoredName::new("../x", "a.txt").is_none());
    }

    #[test]
    fn only_well_formed_stored_names_parse() {
        assert!(StoredName::parse(ID).is_some());
        assert!(StoredName::parse(&format!("{ID}.pdf")).is_some());
        for bad in [
            "",
            "..",
            "../../etc/passwd",
            &format!("{ID}."),
            &format!("{ID}.PDF"),
            &format!("{ID}.a.b"),
            &format!("{ID}/x"),
            &ID.to_uppercase(),
            &ID[1..],
        ] {
            assert!(StoredName::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_announcement_ends_with_the_download_path() {
        let text = announcement(7, ID, "a b.txt", 12);
        assert_eq!(
            text,
            format!("[file] a b.txt (12 bytes) /api/rooms/7/files/{ID}")
        );
    }
}
