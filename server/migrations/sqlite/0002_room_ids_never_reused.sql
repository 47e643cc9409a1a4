-- Room ids are never reused. A deleted room's id must not come to name a new room:
-- clients resume by (room, seq) and compliance records keep room ids. Without
-- AUTOINCREMENT, SQLite hands out the largest id again after that room is deleted
-- (PostgreSQL sequences never go back). Nothing references `rooms` by foreign key, so
-- the table is rebuilt in place.
CREATE TABLE rooms_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    category_id INTEGER NOT NULL REFERENCES categories(id),
    kind        SMALLINT NOT NULL,
    privacy     SMALLINT NOT NULL,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    addin_url   TEXT,
    invitations BOOLEAN NOT NULL DEFAULT TRUE,
    last_seq    BIGINT NOT NULL DEFAULT 0
);
INSERT INTO rooms_new (id, name, description, category_id, kind, privacy, disabled, addin_url,
                       invitations, last_seq)
    SELECT id, name, description, category_id, kind, privacy, disabled, addin_url,
           invitations, last_seq
    FROM rooms;
DROP TABLE rooms;
ALTER TABLE rooms_new RENAME TO rooms;
