//! The file store: the folder that keeps the bytes of files posted to rooms, shared by
//! every front end of the pool (Lync's Persistent Chat file share), so that a file uploaded
//! through one front end is downloadable through any other. Layout:
//!
//! - `<store>/<shard>/<stored>`: a committed file, `shard` being the stored name's first
//!   two hex digits (`<store>/3f/3f2a…9c.pdf`);
//! - `<store>/incoming/<file id>.part`: an upload in progress. It is written chunk by
//!   chunk as it arrives (never held whole in memory), fsynced, then renamed into place, so
//!   a reader never sees a partial file. A partial file is deleted when the upload fails,
//!   is too large, or the client goes away (on drop).
//!
//! Only [`StoredName`]s and file ids — both server-made hex — are ever joined to the
//! folder, never a name a user typed. This module does file I/O only: rights and metadata
//! are the chat server's.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::protocol::files::{is_file_id, StoredName};

/// Sub-folder of uploads in progress.
const INCOMING: &str = "incoming";

/// Why a chunk could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The upload went past its limit (the partial file is deleted).
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The file store failed.
    #[error("file store: {0}")]
    Io(#[from] io::Error),
}

/// The file store folder.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

/// A complete upload: its size and SHA-256 (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Bytes written.
    pub size: u64,
    /// SHA-256 of the bytes.
    pub sha256: String,
}

impl FileStore {
    /// The store at `root` (folders are created when first needed).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a committed file lives.
    pub fn path_of(&self, stored: &StoredName) -> PathBuf {
        self.root.join(stored.shard()).join(stored.as_str())
    }

    /// Start writing the upload `file_id` (a file id from `file_begin`), refusing to grow
    /// past `limit` bytes.
    pub async fn incoming(&self, file_id: &str, limit: u64) -> io::Result<Incoming> {
        if !is_file_id(file_id) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a file id"));
        }
        let dir = self.root.join(INCOMING);
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(format!("{file_id}.part"));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(Incoming {
            path,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
            limit,
            kept: false,
        })
    }

    /// Open a committed file for reading; its length.
    pub async fn open(&self, stored: &StoredName) -> io::Result<(tokio::fs::File, u64)> {
        let file = tokio::fs::File::open(self.path_of(stored)).await?;
        let len = file.metadata().await?.len();
        Ok((file, len))
    }

    /// Delete a committed file (one whose commit was refused).
    pub async fn remove(&self, stored: &StoredName) {
        if let Err(e) = tokio::fs::remove_file(self.path_of(stored)).await {
            tracing::warn!(error = %e, file = %stored, "could not delete a refused upload");
        }
    }
}

/// An upload being written to `incoming/`. Dropped before [`Incoming::finish`], it deletes
/// its partial file.
#[derive(Debug)]
pub struct Incoming {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    size: u64,
    limit: u64,
    kept: bool,
}

impl Incoming {
    /// Append one chunk as it arrives. Past the limit nothing more is written and the
    /// upload is over (the caller drops it, which deletes the partial file).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), WriteError> {
        let size = self.size.saturating_add(chunk.len() as u64);
        if size > self.limit {
            return Err(WriteError::TooLarge { limit: self.limit });
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("upload already finished"))?;
        file.write_all(chunk).await?;
        self.hasher.update(chunk);
        self.size = size;
        Ok(())
    }

    /// The upload is complete: make it durable and move it into place as `stored`.
    pub async fn finish(mut self, store: &FileStore, stored: &StoredName) -> io::Result<Written> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("upload already finished"))?;
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let dir = store.root.join(stored.shard());
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::rename(&self.path, store.path_of(stored)).await?;
        self.kept = true;
        // The rename itself survives a crash once its folder is synced.
        tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
            .await
            .map_err(io::Error::other)??;
        let digest = std::mem::take(&mut self.hasher).finalize();
        Ok(Written {
            size: self.size,
            sha256: hex(&digest),
        })
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.kept {
            // A plain unlink; the open handle, if any, closes on its own.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "00112233445566778899aabbccddeeff";

    #[tokio::test]
    async fn an_upload_lands_whole_with_its_digest() {
        let dir = tempfile_dir();
        let store = FileStore::new(dir.clone());
        let mut up = store.incoming(ID, 10).await.expect("incoming");
        up.write(b"hello ").await.expect("write");
        up.write(b"file").await.expect("write");
        let stored = StoredName::new(ID, "a.txt").expect("stored");
        let w = up.finish(&store, &stored).await.expect("finish");
        assert_eq!(w.size, 10);
        assert_eq!(w.sha256, hex(&Sha256::digest(b"hello file")));
        let bytes = std::fs::read(dir.join("00").join(format!("{ID}.txt"))).expect("read");
        assert_eq!(bytes, b"hello file");
        assert_eq!(
            std::fs::read_dir(dir.join(INCOMING)).expect("dir").count(),
            0
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_upload_past_its_limit_leaves_nothing() {
        let dir = tempfile_dir();
        let store = FileStore::new(dir.clone());
        let mut up = store.incoming(ID, 4).await.expect("incoming");
        up.write(b"1234").await.expect("at the limit");
        assert!(matches!(
            up.write(b"5").await,
            Err(WriteError::TooLarge { limit: 4 })
        ));
        drop(up);
        assert_eq!(
            std::fs::read_dir(dir.join(INCOMING)).expect("dir").count(),
            0
        );
        assert!(store.incoming("../../x", 4).await.is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chatcap-file-store-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
