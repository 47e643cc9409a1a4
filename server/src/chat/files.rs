//! Files posted to rooms, on the chat server's side: the rights, the metadata, and the
//! message that announces a file in its room. The bytes never come here: the front end's
//! file web service streams them to the file store and calls these operations through a
//! `Service` session (docs/FILES.md).
//!
//! - `file_begin`: the user may post in the room (as for `post`: readable, presenters only
//!   in an auditorium) and the room's category has file upload on; hands out a file id.
//! - `file_commit`: the same checks again (rights may have changed during the upload),
//!   then the metadata row, then a chat message announcing the file, numbered and
//!   delivered like any post; replies once that message is committed. FILEUPLOAD.
//! - `file_info`: the user may read the room, and the file is one of the room's. Recorded
//!   as FILEDOWNLOAD: the front end asks it just before it sends the bytes.
//! - `file_list`: the room's files, for anyone who may read the room.
//!
//! The first three come only from the file web service (a `Service` session): a WebSocket
//! client cannot announce a file it did not upload, nor record a download it never made.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{rights, Hub, PostTag, SessionKey};
use crate::compliance::event::EventKind;
use crate::model::{now_us, User};
use crate::protocol::files::{
    announcement, check_file_name, is_sha256_hex, FileBegun, Files, StoredFile, StoredName,
    ANNOUNCEMENT_PREFIX,
};
use crate::protocol::reply::reply_json;
use crate::protocol::{ErrorCode, Message, Op, Request, WireError};
use crate::store::commit::Entry;
use crate::store::files::{size_of, FileRow};
use crate::store::StoreError;
use crate::telemetry::catalog;

/// Most files `file_list` returns.
const MAX_LIST: u32 = 1000;

fn storage(e: StoreError) -> WireError {
    match e {
        StoreError::Conflict(_) => WireError::new(
            ErrorCode::Conflict,
            "this file is committed already; start a new upload",
        ),
        other => {
            tracing::error!(error = %other, "storage failure");
            WireError::new(
                ErrorCode::Internal,
                "storage unavailable; nothing was changed",
            )
        }
    }
}

fn invalid(message: impl Into<String>) -> WireError {
    WireError::new(ErrorCode::InvalidArgument, message)
}

fn file_not_found(room: i64, file: &str) -> WireError {
    WireError::new(
        ErrorCode::FileNotFound,
        format!("room {room} has no file {file:?}"),
    )
}

/// A new file id: 128 random bits from the thread's cryptographic generator, in hex, so
/// that nobody can guess the name of an upload in progress.
fn new_file_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn stored_file(row: &FileRow, seq: Option<i64>) -> Result<StoredFile, WireError> {
    Ok(StoredFile {
        room: row.room,
        file: row.stored.clone(),
        name: row.name.clone(),
        size: size_of(row).map_err(storage)?,
        sha256: row.sha256.clone(),
        uploader: row.uploader,
        uploaded_at_us: row.uploaded_at_us,
        seq,
    })
}

impl Hub {
    /// `file_begin`, `file_commit`, `file_info`, `file_list`.
    pub(super) async fn files_op(
        self: &Arc<Self>,
        key: SessionKey,
        user: &User,
        req: &Request,
    ) -> Result<String, WireError> {
        let id = req.id;
        match &req.op {
            Op::FileBegin { room } => {
                self.web_service_only(key)?;
                self.may_upload(user, *room)?;
                self.refuse_if_busy()?;
                let begun = FileBegun {
                    file_id: new_file_id(),
                };
                Ok(reply_json(id, &begun))
            }
            Op::FileCommit {
                room,
                file,
                name,
                size,
                sha256,
            } => {
                self.web_service_only(key)?;
                let stored = commit_args(file, name, *size, sha256)?;
                self.may_upload(user, *room)?;
                self.refuse_if_busy()?;
                self.loaded_room(*room).await?;
                let row = FileRow {
                    stored: stored.to_string(),
                    room: *room,
                    name: name.clone(),
                    size: i64::try_from(*size).map_err(|_| invalid("size out of range"))?,
                    sha256: sha256.clone(),
                    uploader: user.id,
                    uploaded_at_us: now_us(),
                };
                self.store.insert_file(&row).await.map_err(storage)?;
                // Rights may have changed while the row was written: checked again. The
                // reply waits for the announcement's commit and delivery, like a post's ack.
                let announced = match self
                    .may_upload(user, *room)
                    .and_then(|persist| self.announce(user, &row, persist))
                {
                    Ok(numbered) => numbered.await.unwrap_or_else(|_| Err(shutting_down())),
                    Err(e) => Err(e),
                };
                let seq = match announced {
                    Ok(seq) => seq,
                    Err(e) => {
                        if let Err(d) = self.store.delete_file(&row.stored).await {
                            tracing::error!(error = %d, file = %row.stored, "refused file kept");
                        }
                        return Err(e);
                    }
                };
                self.comply(EventKind::FileUpload, *room, user.id, &row.stored, None);
                metrics::counter!(catalog::FILES_UPLOADED.name).increment(1);
                metrics::counter!(catalog::FILE_BYTES_UPLOADED.name).increment(*size);
                Ok(reply_json(id, &stored_file(&row, Some(seq))?))
            }
            Op::FileInfo { room, file } => {
                self.web_service_only(key)?;
                rights::readable(&self.dir(), user, *room)?;
                let stored = StoredName::parse(file).ok_or_else(|| file_not_found(*room, file))?;
                let row = self
                    .store
                    .file(*room, stored.as_str())
                    .await
                    .map_err(storage)?
                    .ok_or_else(|| file_not_found(*room, file))?;
                self.comply(EventKind::FileDownload, *room, user.id, &row.stored, None);
                metrics::counter!(catalog::FILES_DOWNLOADED.name).increment(1);
                Ok(reply_json(id, &stored_file(&row, None)?))
            }
            Op::FileList { room, limit } => {
                rights::readable(&self.dir(), user, *room)?;
                let limit = limit.unwrap_or(100).clamp(1, MAX_LIST);
                let rows = self.store.files_of(*room, limit).await.map_err(storage)?;
                let files = rows
                    .iter()
                    .map(|r| stored_file(r, None))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(reply_json(id, &Files { files }))
            }
            other => Err(WireError::new(
                ErrorCode::Internal,
                format!("{} is not a file operation", other.name()),
            )),
        }
    }

    /// Refuse a request that does not come from the file web service.
    fn web_service_only(&self, key: SessionKey) -> Result<(), WireError> {
        let service = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .is_some_and(|s| s.service);
        if service {
            return Ok(());
        }
        Err(WireError::new(
            ErrorCode::Forbidden,
            "files are uploaded and downloaded through the file web service \
             (/api/rooms/{room}/files), not over the chat connection",
        ))
    }

    /// `user` may post a file in `room`: may post there, and the category has file upload
    /// on. Returns whether the category keeps history (the announcement is stored).
    fn may_upload(&self, user: &User, room: i64) -> Result<bool, WireError> {
        let dir = self.dir();
        let r = rights::readable(&dir, user, room)?;
        rights::may_post(&dir, user, r)?;
        let cat = dir.categories.get(&r.category);
        if let Some(c) = cat.filter(|c| !c.file_upload) {
            return Err(WireError::new(
                ErrorCode::Forbidden,
                format!("file upload is switched off in category {:?}", c.name),
            ));
        }
        Ok(cat.is_none_or(|c| c.history))
    }

    /// Refuse `busy` when posts or compliance events are backed up, as `post` does.
    fn refuse_if_busy(&self) -> Result<(), WireError> {
        if self.committer().depth() >= self.config.max_pending_posts {
            metrics::counter!(catalog::BUSY.name).increment(1);
            return Err(WireError::new(
                ErrorCode::Busy,
                "server too busy; retry later",
            ));
        }
        self.refuse_if_compliance_backlogged()
    }

    /// Queue the message announcing `row` for commit; the receiver gets its number once
    /// it is committed and delivered (or why it was not).
    fn announce(
        &self,
        user: &User,
        row: &FileRow,
        persist: bool,
    ) -> Result<oneshot::Receiver<Result<i64, WireError>>, WireError> {
        let size = size_of(row).map_err(storage)?;
        let (done, numbered) = oneshot::channel();
        let entry = Entry {
            msg: Message {
                room: row.room,
                seq: 0,
                author: user.id,
                text: announcement(row.room, &row.stored, &row.name, size),
                client_msg_id: format!("{ANNOUNCEMENT_PREFIX}{}", row.stored),
                posted_at_us: now_us(),
                sent_at_us: None,
                removed: false,
            },
            persist,
            // A file's announcement has a client id of its own: no retry to look for.
            seen_up_to: i64::MAX,
            in_flight_retry: false,
            tag: PostTag::Internal(done),
        };
        self.committer().push(entry).map_err(|_| shutting_down())?;
        Ok(numbered)
    }
}

fn shutting_down() -> WireError {
    WireError::new(ErrorCode::Internal, "the server is shutting down")
}

/// Check `file_commit`'s arguments; the stored name they name.
fn commit_args(file: &str, name: &str, size: u64, sha256: &str) -> Result<StoredName, WireError> {
    check_file_name(name).map_err(|e| invalid(e.to_string()))?;
    let stored = StoredName::parse(file)
        .ok_or_else(|| invalid("file must be the id from file_begin and the name's extension"))?;
    // The extension follows from the name: a stored name cannot be chosen freely.
    if StoredName::new(&file[..crate::protocol::files::FILE_ID_DIGITS], name).as_ref()
        != Some(&stored)
    {
        return Err(invalid(format!(
            "file {file:?} does not match the extension of {name:?}"
        )));
    }
    if !is_sha256_hex(sha256) {
        return Err(invalid("sha256 must be 64 lowercase hex digits"));
    }
    if i64::try_from(size).is_err() {
        return Err(invalid("size out of range"));
    }
    Ok(stored)
}
