-- Export batches of the compliance adapter. An exporter first claims a batch (this row, and
-- compliance_events.exported_by = token, in one transaction), then writes the file
-- <token>.xml, then sets done_at_us. A batch whose claim is old and not done was abandoned
-- (its exporter died between claim and file): the next exporter rewrites it under the same
-- file name, so an event is never lost and never lands in two files.
CREATE TABLE compliance_exports (
    token         TEXT PRIMARY KEY,
    server        TEXT NOT NULL,
    claimed_at_us BIGINT NOT NULL,
    events        BIGINT NOT NULL,
    done_at_us    BIGINT,
    file          TEXT
);
CREATE INDEX compliance_exports_open ON compliance_exports (done_at_us, claimed_at_us);
