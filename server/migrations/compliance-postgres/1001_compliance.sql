-- Compliance database (PostgreSQL): one row per recorded event, until the adapter exports it.
-- kind: 0 JOIN, 1 PART, 2 CHAT, 3 BACKCHAT, 4 FILEUPLOAD, 5 FILEDOWNLOAD
CREATE TABLE compliance_events (
    id          BIGSERIAL PRIMARY KEY,
    kind        SMALLINT NOT NULL,
    room_id     BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    content     TEXT NOT NULL DEFAULT '',
    msg_seq     BIGINT,
    at_us       BIGINT NOT NULL,
    exported_by TEXT
);
CREATE INDEX compliance_pending ON compliance_events (exported_by, id);
