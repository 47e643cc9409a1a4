//! Files posted to rooms: the `files` table (metadata; the bytes are on the file store).
//!
//! Storage only: who may upload or download is decided by the chat core (`chat::files`).
//! Every read joins `rooms`, so the files of a deleted room are never returned.

use super::{conflict_as, on_pool, Result, Store, StoreError};

/// One file as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// The stored name on the file store (unique).
    pub stored: String,
    /// The room.
    pub room: i64,
    /// The uploader's file name.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Who uploaded it.
    pub uploader: i64,
    /// When (µs since the epoch).
    pub uploaded_at_us: i64,
}

type FileTuple = (String, i64, String, i64, String, i64, i64);

const COLUMNS: &str = "f.stored, f.room_id, f.name, f.size, f.sha256, f.uploader_id, \
     f.uploaded_at_us FROM files f JOIN rooms r ON r.id = f.room_id";

fn row_from(t: FileTuple) -> FileRow {
    FileRow {
        stored: t.0,
        room: t.1,
        name: t.2,
        size: t.3,
        sha256: t.4,
        uploader: t.5,
        uploaded_at_us: t.6,
    }
}

impl Store {
    /// Record a file; [`StoreError::Conflict`] when its stored name is taken.
    pub async fn insert_file(&self, f: &FileRow) -> Result<()> {
        let sql = "INSERT INTO files \
                   (stored, room_id, name, size, sha256, uploader_id, uploaded_at_us) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, write, p => sqlx::query(sql)
            .bind(&f.stored).bind(f.room).bind(&f.name).bind(f.size).bind(&f.sha256)
            .bind(f.uploader).bind(f.uploaded_at_us)
            .execute(p).await.map_err(conflict_as("file"))?.rows_affected());
        Ok(())
    }

    /// Forget a file (an upload whose announcement could not be queued).
    pub async fn delete_file(&self, stored: &str) -> Result<()> {
        let sql = "DELETE FROM files WHERE stored = $1";
        on_pool!(self, write, p => sqlx::query(sql).bind(stored).execute(p).await?.rows_affected());
        Ok(())
    }

    /// The file `stored` of `room`, if there is one.
    pub async fn file(&self, room: i64, stored: &str) -> Result<Option<FileRow>> {
        let sql = format!("SELECT {COLUMNS} WHERE f.room_id = $1 AND f.stored = $2");
        let row: Option<FileTuple> = on_pool!(self, read, p => sqlx::query_as(&sql)
            .bind(room).bind(stored).fetch_optional(p).await?);
        Ok(row.map(row_from))
    }

    /// The files of a room, newest first, at most `limit`.
    pub async fn files_of(&self, room: i64, limit: u32) -> Result<Vec<FileRow>> {
        let sql = format!(
            "SELECT {COLUMNS} WHERE f.room_id = $1 \
             ORDER BY f.uploaded_at_us DESC, f.stored DESC LIMIT $2"
        );
        let rows: Vec<FileTuple> = on_pool!(self, read, p => sqlx::query_as(&sql)
            .bind(room).bind(i64::from(limit)).fetch_all(p).await?);
        Ok(rows.into_iter().map(row_from).collect())
    }
}

/// A stored size that is not a byte count (negative) is corrupt.
pub fn size_of(row: &FileRow) -> Result<u64> {
    u64::try_from(row.size)
        .map_err(|_| StoreError::Corrupt(format!("file {} has size {}", row.stored, row.size)))
}
