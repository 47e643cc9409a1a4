-- Files posted to rooms (the file upload/download web service, docs/FILES.md).
-- The bytes live on the file store (a folder shared by the front ends) under `stored`, a
-- server-generated name (32 hex digits and a sanitised extension); `name` is the name the
-- uploader gave, kept as metadata only. No foreign key to `rooms`, as in the SQLite
-- schema: every read joins `rooms`, so the files of a deleted room are never served.
CREATE TABLE files (
    stored         TEXT PRIMARY KEY,
    room_id        BIGINT NOT NULL,
    name           TEXT NOT NULL,
    size           BIGINT NOT NULL,
    sha256         TEXT NOT NULL,
    uploader_id    BIGINT NOT NULL,
    uploaded_at_us BIGINT NOT NULL
);
CREATE INDEX files_by_room ON files (room_id, uploaded_at_us);
