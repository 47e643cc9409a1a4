-- A multiple-server pool's active places (docs/POOL.md, "Leases"). Each row is one place
-- for an active chat server; the server named in `holder` keeps it by renewing its lease
-- before `expires_us` (the database's clock, µs since the epoch). A standby takes a place
-- whose lease has ended. `pool set-active` rewrites the rows.
CREATE TABLE pool_slots (
    slot       SMALLINT PRIMARY KEY,
    holder     TEXT,
    expires_us BIGINT NOT NULL DEFAULT 0
);
-- Servers drained by `pool drain`: they take no place until `pool undrain` or
-- `pool set-active` names them.
CREATE TABLE pool_servers (
    name    TEXT PRIMARY KEY,
    drained BOOLEAN NOT NULL DEFAULT FALSE
);
